//! The session's time zone when DuckDB has no ICU to tell: is it UTC? DuckDB with ICU takes the
//! zone from `TZ`, else from `/etc/localtime`; without ICU it works in UTC, which gives one
//! DuckDB's answer only when that zone is UTC ([`crate::engine::Engine::open`] decides).

use std::path::Path;

/// Names of zones that are UTC all year.
const UTC_NAMES: &[&str] = &[
    "UTC",
    "UCT",
    "GMT",
    "GMT0",
    "GMT+0",
    "GMT-0",
    "UTC0",
    "Greenwich",
    "Universal",
    "Zulu",
    "Etc/UTC",
    "Etc/UCT",
    "Etc/GMT",
    "Etc/GMT0",
    "Etc/GMT+0",
    "Etc/GMT-0",
    "Etc/Greenwich",
    "Etc/Universal",
    "Etc/Zulu",
];

/// The session's zone when it is not UTC (from `TZ`, else `/etc/localtime`); `None` when it
/// is UTC or unset (the C library's default is UTC).
pub fn local_zone_other_than_utc() -> Option<String> {
    let tz = std::env::var("TZ").ok();
    let localtime = Path::new("/etc/localtime");
    let link = std::fs::read_link(localtime).ok().map(|p| p.to_string_lossy().into_owned());
    let footer = || std::fs::read(localtime).ok().map(|bytes| tzif_footer(&bytes));
    other_than_utc(tz.as_deref(), link.as_deref(), footer)
}

/// As [`local_zone_other_than_utc`], over `TZ` (or a zone given otherwise), the target of the
/// `/etc/localtime` link, and the POSIX rule that ends `/etc/localtime`'s contents.
pub fn other_than_utc(tz: Option<&str>, link: Option<&str>, footer: impl FnOnce() -> Option<String>) -> Option<String> {
    if let Some(tz) = tz {
        let name = tz.strip_prefix(':').unwrap_or(tz).trim();
        let name = name.rsplit_once("zoneinfo/").map_or(name, |(_, zone)| zone);
        return (!name.is_empty() && !UTC_NAMES.contains(&name)).then(|| name.to_string());
    }
    if let Some(link) = link {
        let name = link.rsplit_once("zoneinfo/").map_or(link, |(_, zone)| zone);
        return (!UTC_NAMES.contains(&name)).then(|| name.to_string());
    }
    match footer() {
        Some(rule) if !["UTC0", "GMT0", "<UTC>0", "<GMT>0", ""].contains(&rule.as_str()) => {
            Some(format!("{rule} (/etc/localtime)"))
        }
        _ => None,
    }
}

/// The POSIX TZ rule on the last line of a TZif file (`UTC0`, `CET-1CEST,M3.5.0,M10.5.0/3`).
fn tzif_footer(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.trim_end_matches('\n').rsplit('\n').next().unwrap_or("").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tz_decides_first_then_the_link_then_the_file() {
        let none = || None;
        assert_eq!(other_than_utc(Some("UTC"), Some("/usr/share/zoneinfo/Europe/Berlin"), none), None);
        assert_eq!(other_than_utc(Some(":Etc/UTC"), None, none), None);
        assert_eq!(other_than_utc(Some(""), None, none), None);
        assert_eq!(other_than_utc(Some("Asia/Kolkata"), None, none).as_deref(), Some("Asia/Kolkata"));
        assert_eq!(
            other_than_utc(Some("/usr/share/zoneinfo/America/St_Johns"), None, none).as_deref(),
            Some("America/St_Johns")
        );
        assert_eq!(other_than_utc(None, Some("/usr/share/zoneinfo/Etc/UTC"), none), None);
        assert_eq!(
            other_than_utc(None, Some("../usr/share/zoneinfo/Europe/Berlin"), none).as_deref(),
            Some("Europe/Berlin")
        );
        assert_eq!(other_than_utc(None, None, || Some("UTC0".into())), None);
        assert!(other_than_utc(None, None, || Some("CET-1CEST,M3.5.0,M10.5.0/3".into())).is_some());
        assert_eq!(other_than_utc(None, None, none), None);
    }

    #[test]
    fn reads_the_rule_that_ends_a_tzif_file() {
        assert_eq!(tzif_footer(b"TZif2\0\0binary\nCET-1CEST,M3.5.0,M10.5.0/3\n"), "CET-1CEST,M3.5.0,M10.5.0/3");
        assert_eq!(tzif_footer(b"TZif2\0\nUTC0\n"), "UTC0");
    }
}
