//! `--group NAME=FILTER`: ad-hoc object groups, as S3 Storage Lens groups define them, parsed
//! from text and turned into a SQL condition over one inventory row.
//!
//! A filter is `&`-separated `field=value` pairs whose values are percent-decoded (so a key with
//! `&`, `=` or `%` can be written `%26`, `%3D`, `%25`; `+` stays a plus):
//! - `prefix=P`: the key starts with `P` (a literal, from the bucket's root); repeated, any of them;
//! - `suffix=S`: the key ends with `S` (a literal); repeated, any of them;
//! - `min-age=N` / `max-age=N`: last modified at least / less than `N` days before the report's
//!   date (`N` in days, or with a unit: `90d`, `2w`, `1y` = 365 days); an object without a last
//!   modified date matches no age condition;
//! - `min-size=N` / `max-size=N`: at least / less than `N` bytes (`N` with an optional unit: `B`,
//!   `KB`, `MB`, `GB`, `TB` in powers of 1000, `KiB`, `MiB`, `GiB`, `TiB` in powers of 1024).
//!
//! Different fields combine with AND, repeated prefixes or suffixes with OR. An empty filter
//! (`all=`) matches every object.

use crate::error::{Error, Result};
use quack_lambda::quote::literal as quote_literal;

/// At most this many groups in one `du`.
pub const MAX_GROUPS: usize = 64;

/// One named group of objects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DuGroup {
    pub name: String,
    pub prefixes: Vec<String>,
    pub suffixes: Vec<String>,
    /// Inclusive, in days.
    pub min_age_days: Option<u32>,
    /// Exclusive, in days.
    pub max_age_days: Option<u32>,
    /// Inclusive, in bytes.
    pub min_size: Option<u64>,
    /// Exclusive, in bytes.
    pub max_size: Option<u64>,
}

fn invalid(spec: &str, why: impl std::fmt::Display) -> Error {
    let shown: String = spec.chars().take(80).collect();
    Error::Config {
        message: format!(
            "--group {shown:?}: {why}; write NAME=FILTER, the filter being &-separated prefix=, suffix=, \
             min-age=, max-age=, min-size=, max-size= (for example 'old-logs=prefix=logs/&min-age=90d')"
        ),
    }
}

impl std::str::FromStr for DuGroup {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Self> {
        let (name, filter) = spec.split_once('=').ok_or_else(|| invalid(spec, "no '=' after the name"))?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(invalid(spec, "the name must be 1 to 100 printable characters"));
        }
        let mut group = DuGroup { name: name.to_string(), ..DuGroup::default() };
        for pair in filter.split('&').filter(|p| !p.is_empty()) {
            let (field, value) = pair.split_once('=').ok_or_else(|| invalid(spec, format!("{pair:?} has no '='")))?;
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| invalid(spec, format!("the value of {field} is not UTF-8 once decoded")))?
                .into_owned();
            match field.trim().to_ascii_lowercase().replace('_', "-").as_str() {
                "prefix" => group.prefixes.push(value),
                "suffix" => {
                    if value.is_empty() {
                        return Err(invalid(spec, "an empty suffix"));
                    }
                    group.suffixes.push(value)
                }
                "min-age" => set_once(&mut group.min_age_days, parse_days(&value), spec, field, bad_days, &value)?,
                "max-age" => set_once(&mut group.max_age_days, parse_days(&value), spec, field, bad_days, &value)?,
                "min-size" => set_once(&mut group.min_size, parse_bytes(&value), spec, field, bad_bytes, &value)?,
                "max-size" => set_once(&mut group.max_size, parse_bytes(&value), spec, field, bad_bytes, &value)?,
                other => {
                    let shown: String = other.chars().take(40).collect();
                    return Err(invalid(spec, format!("{shown:?} is not a filter field")));
                }
            }
        }
        if let (Some(min), Some(max)) = (group.min_age_days, group.max_age_days) {
            if min >= max {
                return Err(invalid(spec, format!("min-age {min} days is not below max-age {max} days")));
            }
        }
        if let (Some(min), Some(max)) = (group.min_size, group.max_size) {
            if min >= max {
                return Err(invalid(spec, format!("min-size {min} B is not below max-size {max} B")));
            }
        }
        Ok(group)
    }
}

/// Parses a list of groups, refusing repeated names and more than [`MAX_GROUPS`].
pub fn parse_groups<S: AsRef<str>>(specs: &[S]) -> Result<Vec<DuGroup>> {
    if specs.len() > MAX_GROUPS {
        return Err(Error::Config { message: format!("at most {MAX_GROUPS} --group filters, not {}", specs.len()) });
    }
    let mut groups: Vec<DuGroup> = Vec::with_capacity(specs.len());
    for spec in specs {
        let group: DuGroup = spec.as_ref().parse()?;
        if groups.iter().any(|g| g.name == group.name) {
            return Err(invalid(spec.as_ref(), format!("the name {:?} is given twice", group.name)));
        }
        groups.push(group);
    }
    Ok(groups)
}

/// Sets a bound given at most once: `parsed` is `None` when `value` is malformed.
fn set_once<T>(
    slot: &mut Option<T>,
    parsed: Option<T>,
    spec: &str,
    field: &str,
    malformed: fn(&str) -> String,
    value: &str,
) -> Result<()> {
    if slot.is_some() {
        return Err(invalid(spec, format!("{field} is given twice")));
    }
    *slot = Some(parsed.ok_or_else(|| invalid(spec, malformed(value)))?);
    Ok(())
}

fn bad_days(value: &str) -> String {
    format!("{:?} is not an age (days, or a number with d, w or y)", value.chars().take(40).collect::<String>())
}

fn bad_bytes(value: &str) -> String {
    format!(
        "{:?} is not a size (bytes, or a number with B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)",
        value.chars().take(40).collect::<String>()
    )
}

/// Days from `90`, `90d`, `2w` or `1y` (365 days); at most 100 years.
fn parse_days(value: &str) -> Option<u32> {
    let value = value.trim().to_ascii_lowercase();
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: u32 = number.parse().ok()?;
    let days = match unit.trim() {
        "" | "d" | "day" | "days" => number,
        "w" | "week" | "weeks" => number.checked_mul(7)?,
        "y" | "year" | "years" => number.checked_mul(365)?,
        _ => return None,
    };
    (days <= 36_500).then_some(days)
}

/// Bytes from `1048576`, `1MiB`, `1.5 GB`; whole bytes, below 2^63.
fn parse_bytes(value: &str) -> Option<u64> {
    let value = value.trim();
    let split = value.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let unit: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return None,
    };
    let bytes = match number.split_once('.') {
        None => number.parse::<u64>().ok()?.checked_mul(unit)?,
        Some((whole, fraction)) => {
            if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') || fraction.len() > 9 {
                return None;
            }
            let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
            let scale = 10u64.pow(fraction.len() as u32);
            let fraction: u64 = if fraction.is_empty() { 0 } else { fraction.parse().ok()? };
            // Exact in integers: whole * unit + fraction * unit / scale, which must be whole bytes.
            let part = (fraction as u128) * (unit as u128);
            if !part.is_multiple_of(scale as u128) {
                return None;
            }
            whole.checked_mul(unit)?.checked_add(u64::try_from(part / scale as u128).ok()?)?
        }
    };
    (bytes <= i64::MAX as u64).then_some(bytes)
}

/// The expressions a group's condition reads, over one report row.
pub struct RowColumns<'a> {
    pub key: &'a str,
    pub size: &'a str,
    pub last_modified: &'a str,
    pub report_date: &'a str,
}

impl DuGroup {
    /// The condition an object must meet to be in the group (TRUE for an empty filter).
    pub fn condition(&self, row: &RowColumns<'_>) -> String {
        // Any of the literals, tested by `function(key, literal)`.
        let any = |function: &str, literals: &[String]| {
            let tests: Vec<String> =
                literals.iter().map(|l| format!("{function}({}, {})", row.key, quote_literal(l))).collect();
            format!("({})", tests.join(" OR "))
        };
        let mut all = Vec::new();
        if !self.prefixes.is_empty() {
            all.push(any("starts_with", &self.prefixes));
        }
        if !self.suffixes.is_empty() {
            all.push(any("ends_with", &self.suffixes));
        }
        if let Some(days) = self.min_age_days {
            all.push(format!("{} <= {} - INTERVAL {days} DAY", row.last_modified, row.report_date));
        }
        if let Some(days) = self.max_age_days {
            all.push(format!("{} > {} - INTERVAL {days} DAY", row.last_modified, row.report_date));
        }
        if let Some(bytes) = self.min_size {
            all.push(format!("{} >= {bytes}", row.size));
        }
        if let Some(bytes) = self.max_size {
            all.push(format!("{} < {bytes}", row.size));
        }
        if all.is_empty() {
            "TRUE".into()
        } else {
            all.join(" AND ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_filters_with_units_and_percent_escapes() {
        let g: DuGroup = "old logs=prefix=logs/&prefix=a%26b/&suffix=.gz&min-age=90d&max-size=1.5MiB".parse().unwrap();
        assert_eq!(g.name, "old logs");
        assert_eq!(g.prefixes, ["logs/", "a&b/"]);
        assert_eq!(g.suffixes, [".gz"]);
        assert_eq!((g.min_age_days, g.max_size), (Some(90), Some(1_572_864)));
        let g: DuGroup = "x=max-age=2w&min-size=1kb&prefix=a+b".parse().unwrap();
        assert_eq!((g.max_age_days, g.min_size, g.prefixes[0].as_str()), (Some(14), Some(1000), "a+b"));
        assert_eq!("all=".parse::<DuGroup>().unwrap().condition(&row()), "TRUE");
        assert_eq!(parse_bytes("0.5KiB"), Some(512));
        assert_eq!(parse_bytes("0.3B"), None);
        assert_eq!(parse_days("1y"), Some(365));
    }

    #[test]
    fn refuses_malformed_filters() {
        for (spec, needle) in [
            ("nameonly", "no '='"),
            ("=prefix=a", "the name must be"),
            ("g=colour=red", "is not a filter field"),
            ("g=min-age=soon", "is not an age"),
            ("g=min-size=1XB", "is not a size"),
            ("g=min-size=99999999999TB", "is not a size"),
            ("g=min-age=30&max-age=7", "is not below"),
            ("g=min-size=1&min-size=2", "given twice"),
            ("g=prefix=%FF", "not UTF-8"),
            ("g=prefix", "has no '='"),
        ] {
            let error = spec.parse::<DuGroup>().unwrap_err().to_string();
            assert!(error.contains(needle), "{spec}: {error}");
        }
        assert!(parse_groups(&["a=", "a=prefix=x"]).unwrap_err().to_string().contains("given twice"));
    }

    fn row() -> RowColumns<'static> {
        RowColumns { key: "key", size: "size", last_modified: "lm", report_date: "d" }
    }

    #[test]
    fn conditions_quote_every_value() {
        let g: DuGroup = "g=prefix=it's/&suffix=.gz&suffix=.zst&min-age=7&max-size=10".parse().unwrap();
        assert_eq!(
            g.condition(&row()),
            "(starts_with(key, 'it''s/')) AND (ends_with(key, '.gz') OR ends_with(key, '.zst')) \
             AND lm <= d - INTERVAL 7 DAY AND size < 10"
        );
    }
}
