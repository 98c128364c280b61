//! A `du` answer as JSON (lakeview's `/du` shape for the per-prefix view), CSV and a table with
//! sizes in base 1024; and the history's per-report totals and growth, derived exactly (in
//! integers) from its per-date, per-prefix rows.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{DuAnswer, DuView};

/// One report's total under the prefix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryTotal {
    pub date: String,
    pub size: i64,
    pub objects: i64,
}

/// A child prefix's change from the first report read to the last.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Growth {
    pub common_prefix: Value,
    pub size_first: i64,
    pub size_last: i64,
    /// `size_last - size_first`.
    pub diff: i64,
    pub objects_first: i64,
    pub objects_last: i64,
}

impl DuAnswer {
    fn rows(&self) -> Vec<Vec<Value>> {
        crate::output::json_rows(&self.batches)
    }

    /// Rows as objects keyed by column name.
    fn records(&self, rows: &[Vec<Value>]) -> Vec<Value> {
        rows.iter().map(|row| Value::Object(self.columns.iter().cloned().zip(row.iter().cloned()).collect())).collect()
    }

    fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// With `history`: each report's total under the prefix, oldest first (0 for a report with
    /// nothing there).
    pub fn history_totals(&self) -> Vec<HistoryTotal> {
        self.totals_of(&self.rows())
    }

    fn totals_of(&self, rows: &[Vec<Value>]) -> Vec<HistoryTotal> {
        let mut totals: BTreeMap<&str, (i64, i64)> = self.dates.iter().map(|d| (d.as_str(), (0, 0))).collect();
        if let (Some(date), Some(size), Some(objects)) =
            (self.column("date"), self.column("size"), self.column("objects"))
        {
            for row in rows {
                if let Some(total) = row[date].as_str().and_then(|d| totals.get_mut(d)) {
                    total.0 = total.0.saturating_add(row[size].as_i64().unwrap_or(0));
                    total.1 = total.1.saturating_add(row[objects].as_i64().unwrap_or(0));
                }
            }
        }
        totals
            .into_iter()
            .map(|(date, (size, objects))| HistoryTotal { date: date.to_string(), size, objects })
            .collect()
    }

    /// With `history`: every child prefix's change from the first report to the last, fastest
    /// growing first (then the largest now, then by prefix).
    pub fn growth(&self) -> Vec<Growth> {
        self.growth_of(&self.rows())
    }

    fn growth_of(&self, rows: &[Vec<Value>]) -> Vec<Growth> {
        let (Some(first), Some(last)) = (self.dates.first(), self.dates.last()) else { return Vec::new() };
        let (Some(date), Some(prefix), Some(size), Some(objects)) =
            (self.column("date"), self.column("common_prefix"), self.column("size"), self.column("objects"))
        else {
            return Vec::new();
        };
        let mut by_prefix: BTreeMap<String, Growth> = BTreeMap::new();
        for row in rows {
            let day = row[date].as_str().unwrap_or_default();
            if day != first && day != last {
                continue;
            }
            let entry = by_prefix.entry(row[prefix].to_string()).or_insert_with(|| Growth {
                common_prefix: row[prefix].clone(),
                size_first: 0,
                size_last: 0,
                diff: 0,
                objects_first: 0,
                objects_last: 0,
            });
            let (bytes, count) = (row[size].as_i64().unwrap_or(0), row[objects].as_i64().unwrap_or(0));
            if day == first {
                (entry.size_first, entry.objects_first) = (bytes, count);
            }
            if day == last {
                (entry.size_last, entry.objects_last) = (bytes, count);
            }
        }
        let mut growth: Vec<Growth> = by_prefix
            .into_values()
            .map(|mut g| {
                g.diff = g.size_last.saturating_sub(g.size_first);
                g
            })
            .collect();
        growth.sort_by(|a, b| {
            b.diff
                .cmp(&a.diff)
                .then(b.size_last.cmp(&a.size_last))
                .then_with(|| text(&a.common_prefix).cmp(&text(&b.common_prefix)))
        });
        growth
    }

    /// JSON. The per-prefix view is lakeview's `/du`: `{"prefix","delimiter","date","compare",
    /// "response":[...]}`, with exact integers. The other views add `"view"` and their own keys:
    /// `top`; `duplicates` with the total `reclaimable`; `history` with `dates`, `totals` and
    /// `growth`.
    pub fn to_json(&self) -> Value {
        let rows = self.rows();
        let mut value = json!({
            "prefix": self.prefix,
            "delimiter": self.delimiter,
            "date": self.date,
            "compare": self.compare,
            "response": self.records(&rows),
        });
        match self.view {
            DuView::Prefixes => {}
            DuView::Top => {
                value["view"] = json!(self.view);
                value["top"] = json!(self.top);
            }
            DuView::Duplicates => {
                value["view"] = json!(self.view);
                value["top"] = json!(self.top);
                value["reclaimable"] = json!(self.sum_of("reclaimable", &rows));
            }
            DuView::History => {
                value["view"] = json!(self.view);
                value["dates"] = json!(self.dates);
                value["totals"] = json!(self.totals_of(&rows));
                value["growth"] = json!(self.growth_of(&rows));
            }
        }
        value
    }

    fn sum_of(&self, name: &str, rows: &[Vec<Value>]) -> i64 {
        let Some(i) = self.column(name) else { return 0 };
        rows.iter().filter_map(|r| r[i].as_i64()).fold(0i64, i64::saturating_add)
    }

    /// CSV with a header and exact integers (the history's per-date, per-prefix rows).
    pub fn to_csv(&self) -> String {
        let mut out = self.columns.join(",");
        out.push('\n');
        for row in self.rows() {
            let cells: Vec<String> = row.iter().map(|c| csv_field(&text(c))).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    /// A table with sizes in base 1024 (one decimal), shares as percentages, and a summary line.
    pub fn to_table(&self) -> String {
        let rows = self.rows();
        let quoted = format!("{:?}", self.prefix);
        match self.view {
            DuView::Prefixes => {
                let total = self.sum_of(if self.column("size").is_some() { "size" } else { "size_left" }, &rows);
                let compare = self.compare.as_ref().map(|c| format!(" (compared with {c})")).unwrap_or_default();
                if self.column("group").is_some() {
                    // An object may be in several groups or none: the sizes do not add up.
                    return format!(
                        "{}{} rows of prefix and group under {quoted} in the {} report\n",
                        table(&self.columns, &rows),
                        rows.len(),
                        self.date
                    );
                }
                format!(
                    "{}{} prefixes under {quoted} in the {} report{compare}: {}\n",
                    table(&self.columns, &rows),
                    rows.len(),
                    self.date,
                    crate::plan::human_bytes(total.max(0) as u64)
                )
            }
            DuView::Top => format!(
                "{}{} largest objects under {quoted} in the {} report\n",
                table(&self.columns, &rows),
                rows.len(),
                self.date
            ),
            DuView::Duplicates => format!(
                "{}{} groups of duplicates (same ETag and size) under {quoted} in the {} report: {} reclaimable\n",
                table(&self.columns, &rows),
                rows.len(),
                self.date,
                crate::plan::human_bytes(self.sum_of("reclaimable", &rows).max(0) as u64)
            ),
            DuView::History => self.history_table(&rows, &quoted),
        }
    }

    fn history_table(&self, rows: &[Vec<Value>], quoted: &str) -> String {
        let totals = self.totals_of(rows);
        let names: Vec<String> = ["date", "size", "objects"].map(String::from).to_vec();
        let total_rows: Vec<Vec<Value>> =
            totals.iter().map(|t| vec![json!(t.date), json!(t.size), json!(t.objects)]).collect();
        let mut out = table(&names, &total_rows);
        let (first, last) =
            (self.dates.first().cloned().unwrap_or_default(), self.dates.last().cloned().unwrap_or_default());
        if self.dates.len() > 1 {
            let names: Vec<String> =
                vec!["common_prefix".into(), format!("size_{first}"), format!("size_{last}"), "diff".into()];
            let growth: Vec<Vec<Value>> = self
                .growth_of(rows)
                .into_iter()
                .map(|g| vec![g.common_prefix, json!(g.size_first), json!(g.size_last), json!(g.diff)])
                .collect();
            out.push('\n');
            out.push_str(&table(&names, &growth));
        }
        let (from, to) = (totals.first().map_or(0, |t| t.size), totals.last().map_or(0, |t| t.size));
        out.push_str(&format!(
            "{} reports under {quoted} from {first} to {last}: {} to {} ({})\n",
            self.dates.len(),
            crate::plan::human_bytes(from.max(0) as u64),
            crate::plan::human_bytes(to.max(0) as u64),
            signed_human(to.saturating_sub(from)),
        ));
        out
    }
}

/// Columns of numbers right-aligned; sizes humanized, shares as percentages.
fn table(names: &[String], rows: &[Vec<Value>]) -> String {
    let size_like = |name: &str| name == "size" || name == "diff" || name == "reclaimable" || name.starts_with("size_");
    let mut cells: Vec<Vec<String>> = vec![names.to_vec()];
    for row in rows {
        cells.push(
            row.iter()
                .zip(names)
                .map(|(cell, name)| match (cell.as_i64(), size_like(name)) {
                    (Some(n), true) => signed_human(n),
                    _ if name == "share" => cell.as_f64().map(|f| format!("{:.1}%", f * 100.0)).unwrap_or_default(),
                    _ => text(cell),
                })
                .collect(),
        );
    }
    let numeric: Vec<bool> = (0..names.len()).map(|c| rows.iter().any(|r| r[c].is_number())).collect();
    let widths: Vec<usize> =
        (0..names.len()).map(|c| cells.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for (i, row) in cells.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, text)| {
                let pad = " ".repeat(widths[c] - text.chars().count());
                if numeric[c] && i > 0 {
                    format!("{pad}{text}")
                } else {
                    format!("{text}{pad}")
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn signed_human(n: i64) -> String {
    let text = crate::plan::human_bytes(n.unsigned_abs());
    if n < 0 {
        format!("-{text}")
    } else {
        text
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A cell as CSV/table text: NULL empty, numbers and strings as they print.
fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanizes_signed_sizes_and_quotes_csv() {
        assert_eq!(signed_human(-1536), "-1.5 KiB");
        assert_eq!(signed_human(10), "10 B");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }

    #[test]
    fn tables_right_align_numbers_only() {
        let names = vec!["key".to_string(), "size".to_string()];
        let out = table(&names, &[vec![json!("a"), json!(2048)], vec![json!("bbbb"), json!(1)]]);
        assert_eq!(out, "key   size\na     2.0 KiB\nbbbb      1 B\n");
    }
}
