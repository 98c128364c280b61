//! The dashboard's one page (HTML, CSS and JS in `static/index.html`) and the charting library
//! it uses (Chart.js 4.6.1, MIT, vendored in `assets/` so the page works offline).

/// The page.
pub const INDEX: &str = include_str!("../static/index.html");

/// Chart.js, served at `/assets/chart.js`.
pub const CHART_JS: &str = include_str!("../assets/chart.umd.min.js");
