//! `quack du`: storage per common prefix from S3 Inventory reports, with lakeview's semantics,
//! as one SQL query through the same planner, invoker and reducer as `quack query` (so it fans
//! out per inventory data file).
//!
//! Semantics: keys under `prefix` (a literal, compared with `starts_with`, never `LIKE`),
//! grouped at the next `delimiter` (a key with no further delimiter is a leaf, shown by its
//! name; otherwise the segment plus the delimiter), `depth` levels down; only current versions
//! (`is_latest` true or NULL) and no delete markers (`is_delete_marker` false or NULL). With a
//! compare date: every prefix of either report, sizes 0 where absent, `diff = left - right`,
//! sorted by |diff| desc, then size_left desc, size_right desc, prefix.

use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};
use crate::inventory::{Inventory, Layout, Report, ReportFormat};
use crate::Quack;
use quack_lambda::quote::literal as quote_literal;

/// What to sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuOptions {
    pub inventory: String,
    /// The report; the newest when `None`.
    pub date: Option<String>,
    /// A second report to compare with.
    pub compare: Option<String>,
    pub prefix: String,
    pub delimiter: String,
    /// Levels below the prefix to group at (1: lakeview's).
    pub depth: usize,
    /// A further breakdown: one row per prefix and group, with a `share` column.
    pub by: Option<DuBy>,
}

/// What `--by` breaks sizes down by. Parsed from its kebab-case name ([`DuBy::from_str`]); the
/// CLI and the dashboard both parse here, so they accept and refuse the same names.
///
/// Groups (the labels are the output column's values):
/// - `storage-class`: the report's `storage_class`;
/// - `suffix`: the text from the last `.` of the key's last `/`-segment, dot included, as
///   Python's `os.path.splitext` (leading dots do not start one); NULL when there is none;
/// - `age`: `last_modified_date` against the report's date, lower bounds inclusive:
///   `< 1 day`, `1-7 days`, `7-30 days`, `30-90 days`, `90-365 days`, `> 1 year` (365 days and
///   more), `unknown` without a date;
/// - `size`: `0 B`, `< 128 KiB`, `< 1 MiB`, `< 16 MiB`, `< 128 MiB`, `< 1 GiB`, `>= 1 GiB`;
/// - `version`: `current`, `noncurrent` (`is_latest` false) and `delete marker`, counting every
///   row of the report (the other breakdowns count current objects only);
/// - an inventory field the report has (`is-multipart-uploaded`, `encryption-status`,
///   `intelligent-tiering-access-tier`, `replication-status`, `object-lock-mode`, and the other
///   optional fields): its value as text, NULL when empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DuBy {
    StorageClass,
    Suffix,
    Age,
    Size,
    Version,
    /// An inventory column (its snake_case name, as in AWS's Parquet reports).
    Field(&'static str),
}

/// Optional inventory fields `--by` accepts, by their report column names.
pub const INVENTORY_FIELDS: &[&str] = &[
    "is_multipart_uploaded",
    "encryption_status",
    "intelligent_tiering_access_tier",
    "replication_status",
    "object_lock_mode",
    "object_lock_legal_hold_status",
    "bucket_key_status",
    "checksum_algorithm",
    "object_access_control_list",
    "object_owner",
];

impl std::str::FromStr for DuBy {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        let snake = name.trim().to_ascii_lowercase().replace('-', "_");
        Ok(match snake.as_str() {
            "storage_class" => DuBy::StorageClass,
            "suffix" | "extension" => DuBy::Suffix,
            "age" => DuBy::Age,
            "size" => DuBy::Size,
            "version" => DuBy::Version,
            field => match INVENTORY_FIELDS.iter().find(|f| **f == field) {
                Some(field) => DuBy::Field(field),
                None => {
                    let shown: String = name.chars().take(60).collect();
                    let fields = INVENTORY_FIELDS.iter().map(|f| f.replace('_', "-")).collect::<Vec<_>>().join(", ");
                    return Err(Error::Config {
                        message: format!(
                            "--by {shown:?} is not a breakdown; use storage-class, suffix, age, size, version, or an \
                             inventory field: {fields}"
                        ),
                    });
                }
            },
        })
    }
}

impl DuBy {
    /// The output column holding the group.
    pub fn column(&self) -> &'static str {
        match self {
            DuBy::StorageClass => "storage_class",
            DuBy::Suffix => "suffix",
            DuBy::Age => "age",
            DuBy::Size => "size_range",
            DuBy::Version => "version",
            DuBy::Field(field) => field,
        }
    }
}

impl Default for DuOptions {
    fn default() -> Self {
        DuOptions {
            inventory: String::new(),
            date: None,
            compare: None,
            prefix: String::new(),
            delimiter: "/".into(),
            depth: 1,
            by: None,
        }
    }
}

/// A `du` answer.
#[derive(Debug, Clone)]
pub struct DuAnswer {
    pub prefix: String,
    pub delimiter: String,
    pub date: String,
    pub compare: Option<String>,
    pub sql: String,
    /// Output column names (also when there are no rows).
    pub columns: Vec<String>,
    pub batches: Vec<RecordBatch>,
    pub report: crate::QueryReport,
}

/// The report dates under `inventory`, newest first.
pub fn dates(quack: &Quack, inventory: &str) -> Result<Vec<String>> {
    Ok(Inventory::open(quack.lister(), inventory)?.dates)
}

/// Builds the du query for `options` (resolving the inventory and its reports).
pub fn plan_sql(quack: &Quack, options: &DuOptions) -> Result<(String, String)> {
    if options.delimiter.is_empty() {
        return Err(Error::Config { message: "the delimiter cannot be empty".into() });
    }
    if options.depth == 0 {
        return Err(Error::Config { message: "--depth must be at least 1".into() });
    }
    let inventory = Inventory::open(quack.lister(), &options.inventory)?;
    let date = options.date.clone().unwrap_or_else(|| inventory.newest().to_string());
    let left = inventory.report(quack.lister(), &date)?;
    let right = match &options.compare {
        Some(compare) => Some(inventory.report(quack.lister(), compare)?),
        None => None,
    };
    if let Some(right) = &right {
        if right.format != left.format {
            return Err(Error::Inventory {
                location: inventory.location.clone(),
                message: format!("reports {} and {} have different formats or columns", left.date, right.date),
            });
        }
    }
    let mut files = left.files.clone();
    if let Some(right) = &right {
        files.extend(right.files.iter().cloned());
    }
    // Which report a row belongs to: the hive `dt` of its path, or its file in AWS's layout.
    let by_file = matches!(inventory.layout, Layout::Aws { .. }) && right.is_some();
    let scan = Report::scan(&files, &left.format, by_file);
    let columns = match &left.format {
        ReportFormat::Csv { columns } => columns.clone(),
        ReportFormat::Parquet => quack
            .describe(&format!("SELECT * FROM read_parquet({})", quote_literal(&left.files[0])))?
            .into_iter()
            .map(|c| c.name)
            .collect(),
    };
    let has = |name: &str| columns.iter().any(|c| c == name);
    let csv = matches!(left.format, ReportFormat::Csv { .. });
    let key = if csv { "url_decode(replace(key, '+', ' '))".to_string() } else { "key".to_string() };
    let size = if csv { "CAST(size AS BIGINT)" } else { "size" };
    // A report column's value as text or as a boolean (CSV reports hold text, '' for NULL).
    let text_column = |name: &str| -> Option<String> {
        has(name).then(|| if csv { format!("nullif({name}, '')") } else { format!("CAST({name} AS VARCHAR)") })
    };
    let boolean = |name: &str| -> String {
        match (has(name), csv) {
            (false, _) => "CAST(NULL AS BOOLEAN)".into(),
            (true, true) => format!("CAST(nullif({name}, '') AS BOOLEAN)"),
            (true, false) => name.to_string(),
        }
    };
    let flag = |name: &str, keep_when_null: &str| -> String {
        if !has(name) {
            return "TRUE".into();
        }
        let value = boolean(name);
        format!("({keep_when_null}{value} OR {value} IS NULL)")
    };
    // The version breakdown counts every row; the others current objects only.
    let (latest, not_deleted) = if options.by == Some(DuBy::Version) {
        ("TRUE".to_string(), "TRUE".to_string())
    } else {
        (flag("is_latest", ""), flag("is_delete_marker", "NOT "))
    };
    let last_modified = if has("last_modified_date") {
        "try_cast(last_modified_date AS TIMESTAMP)".to_string()
    } else {
        "CAST(NULL AS TIMESTAMP)".to_string()
    };
    let storage_class = if has("storage_class") { "storage_class" } else { "CAST(NULL AS VARCHAR)" };
    let prefix = quote_literal(&options.prefix);
    let delimiter = quote_literal(&options.delimiter);
    let rest = format!("substr({key}, length({prefix}) + 1)");
    let common_prefix = if options.depth == 1 {
        format!("CASE WHEN strpos({rest}, {delimiter}) = 0 THEN {rest} ELSE split_part({rest}, {delimiter}, 1) || {delimiter} END")
    } else {
        format!(
            "CASE WHEN len(string_split({rest}, {delimiter})) <= {depth} THEN {rest} \
             ELSE array_to_string(string_split({rest}, {delimiter})[1:{depth}], {delimiter}) || {delimiter} END",
            depth = options.depth
        )
    };
    let dt = match (&right, by_file) {
        (None, _) => None,
        (Some(_), true) => {
            let list = left.files.iter().map(|f| quote_literal(f)).collect::<Vec<_>>().join(", ");
            Some(format!(
                "CASE WHEN list_contains([{list}], filename) THEN {} ELSE {} END",
                quote_literal(&left.date),
                quote_literal(&right.as_ref().expect("compare").date)
            ))
        }
        (Some(_), false) => Some("dt".to_string()),
    };
    let report_date = match &dt {
        Some(dt) => format!("try_cast(left({dt}, 10) AS TIMESTAMP)"),
        None => format!("try_cast(left({}, 10) AS TIMESTAMP)", quote_literal(&date)),
    };
    let group = match &options.by {
        None => None,
        Some(by) => Some(format!(
            "{} AS {}",
            group_expression(
                by,
                &GroupInputs {
                    key: &key,
                    size,
                    last_modified: &last_modified,
                    storage_class,
                    report_date: &report_date,
                    is_latest: &boolean("is_latest"),
                    is_delete_marker: &boolean("is_delete_marker"),
                    text_column: &text_column,
                    inventory: &inventory.location,
                }
            )?,
            by.column()
        )),
    };
    let class_column = options.by.as_ref().map(|by| format!(", {}", by.column())).unwrap_or_default();
    let inner = format!(
        "SELECT {common_prefix} AS common_prefix, {size} AS size, {last_modified} AS last_modified{group_column}{dt_column} \
         FROM {scan} \
         WHERE starts_with({key}, {prefix}) AND {latest} AND {not_deleted}",
        dt_column = dt.as_ref().map(|d| format!(", {d} AS dt")).unwrap_or_default(),
        group_column = group.map(|g| format!(", {g}")).unwrap_or_default(),
    );
    let sizes = format!(
        "SELECT common_prefix{class_column}, CAST(sum(size) AS BIGINT) AS size, count(*) AS objects, \
         max(last_modified) AS last_modified FROM ({inner}) GROUP BY ALL"
    );
    let sql = match &right {
        // A breakdown adds each group's share of the total.
        None if options.by.is_some() => format!(
            "SELECT common_prefix{class_column}, size, objects, last_modified, \
             CAST(size AS DOUBLE) / sum(size) OVER () AS share FROM ({sizes}) \
             ORDER BY size DESC, common_prefix{class_column}"
        ),
        None => format!("{sizes} ORDER BY size DESC, common_prefix{class_column}"),
        Some(right) => {
            let (l, r) = (quote_literal(&left.date), quote_literal(&right.date));
            format!(
                "SELECT common_prefix{class_column}, size_left, size_right, size_left - size_right AS diff, \
                 objects_left, objects_right FROM (\
                 SELECT common_prefix{class_column}, \
                 CAST(coalesce(sum(size) FILTER (WHERE dt = {l}), 0) AS BIGINT) AS size_left, \
                 CAST(coalesce(sum(size) FILTER (WHERE dt = {r}), 0) AS BIGINT) AS size_right, \
                 count(*) FILTER (WHERE dt = {l}) AS objects_left, count(*) FILTER (WHERE dt = {r}) AS objects_right \
                 FROM ({inner}) GROUP BY ALL) \
                 ORDER BY abs(size_left - size_right) DESC, size_left DESC, size_right DESC, common_prefix{class_column}"
            )
        }
    };
    Ok((date, sql))
}

/// The columns a breakdown's group is computed from, as SQL expressions over one report row.
struct GroupInputs<'a> {
    key: &'a str,
    size: &'a str,
    last_modified: &'a str,
    storage_class: &'a str,
    report_date: &'a str,
    is_latest: &'a str,
    is_delete_marker: &'a str,
    /// A report column's value as text; `None` when the report lacks the column.
    text_column: &'a dyn Fn(&str) -> Option<String>,
    /// Where the reports are, for errors.
    inventory: &'a str,
}

/// The SQL expression of `by`'s group (see [`DuBy`] for the labels).
fn group_expression(by: &DuBy, input: &GroupInputs<'_>) -> Result<String> {
    const KIB: i64 = 1024;
    Ok(match by {
        DuBy::StorageClass => input.storage_class.to_string(),
        DuBy::Suffix => {
            let name = format!("ltrim(regexp_extract({}, '[^/]*$'), '.')", input.key);
            format!("CASE WHEN strpos({name}, '.') = 0 THEN NULL ELSE '.' || regexp_extract({name}, '[^.]*$') END")
        }
        DuBy::Age => {
            let (modified, date) = (input.last_modified, input.report_date);
            let mut arms = String::new();
            for (days, label) in
                [(1, "< 1 day"), (7, "1-7 days"), (30, "7-30 days"), (90, "30-90 days"), (365, "90-365 days")]
            {
                arms.push_str(&format!(
                    " WHEN {modified} > {date} - INTERVAL {days} DAY THEN {}",
                    quote_literal(label)
                ));
            }
            format!("CASE WHEN {modified} IS NULL OR {date} IS NULL THEN 'unknown'{arms} ELSE '> 1 year' END")
        }
        DuBy::Size => {
            let size = input.size;
            let mut arms = String::new();
            for (bound, label) in [
                (128 * KIB, "< 128 KiB"),
                (KIB * KIB, "< 1 MiB"),
                (16 * KIB * KIB, "< 16 MiB"),
                (128 * KIB * KIB, "< 128 MiB"),
                (KIB * KIB * KIB, "< 1 GiB"),
            ] {
                arms.push_str(&format!(" WHEN {size} < {bound} THEN {}", quote_literal(label)));
            }
            format!("CASE WHEN {size} IS NULL THEN 'unknown' WHEN {size} = 0 THEN '0 B'{arms} ELSE '>= 1 GiB' END")
        }
        DuBy::Version => format!(
            "CASE WHEN {} THEN 'delete marker' WHEN NOT {} THEN 'noncurrent' ELSE 'current' END",
            input.is_delete_marker, input.is_latest
        ),
        DuBy::Field(field) => (input.text_column)(field).ok_or_else(|| Error::Inventory {
            location: input.inventory.to_string(),
            message: format!(
                "--by {}: the report has no {field} column (the inventory configuration does not list the field)",
                field.replace('_', "-")
            ),
        })?,
    })
}

/// Runs `du`.
pub async fn du(quack: &Quack, options: &DuOptions) -> Result<DuAnswer> {
    du_with_progress(quack, options, &|_| {}).await
}

/// As [`du`], reporting progress after each task.
pub async fn du_with_progress(
    quack: &Quack,
    options: &DuOptions,
    on_progress: &(dyn Fn(crate::invoke::Progress) + Send + Sync),
) -> Result<DuAnswer> {
    let (date, sql) = plan_sql(quack, options)?;
    let (batches, report) = quack.query_batches_with_progress(&sql, on_progress).await?;
    let columns = match batches.first() {
        Some(batch) => batch.schema().fields().iter().map(|f| f.name().clone()).collect(),
        None => quack.describe(&sql)?.into_iter().map(|c| c.name).collect(),
    };
    Ok(DuAnswer {
        columns,
        prefix: options.prefix.clone(),
        delimiter: options.delimiter.clone(),
        date,
        compare: options.compare.clone(),
        sql,
        batches,
        report,
    })
}

impl DuAnswer {
    fn rows(&self) -> Vec<Vec<serde_json::Value>> {
        crate::output::json_rows(&self.batches)
    }

    fn names(&self) -> Vec<String> {
        self.columns.clone()
    }

    /// lakeview's `/du` JSON: `{"prefix","delimiter","date","compare","response":[...]}`, with
    /// exact integers.
    pub fn to_json(&self) -> serde_json::Value {
        let names = self.names();
        let response: Vec<serde_json::Value> = self
            .rows()
            .into_iter()
            .map(|row| {
                let object: serde_json::Map<String, serde_json::Value> = names.iter().cloned().zip(row).collect();
                serde_json::Value::Object(object)
            })
            .collect();
        serde_json::json!({
            "prefix": self.prefix,
            "delimiter": self.delimiter,
            "date": self.date,
            "compare": self.compare,
            "response": response,
        })
    }

    /// CSV with a header and exact integers.
    pub fn to_csv(&self) -> String {
        let mut out = self.names().join(",");
        out.push('\n');
        for row in self.rows() {
            let cells: Vec<String> = row.iter().map(|c| csv_field(&text(c))).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    /// A table with sizes in base 1024 (one decimal) and a total line.
    pub fn to_table(&self) -> String {
        let names = self.names();
        let rows = self.rows();
        let size_like = |name: &str| matches!(name, "size" | "size_left" | "size_right" | "diff");
        let mut table: Vec<Vec<String>> = vec![names.clone()];
        for row in &rows {
            table.push(
                row.iter()
                    .zip(&names)
                    .map(|(cell, name)| match (cell.as_i64(), size_like(name)) {
                        (Some(n), true) => signed_human(n),
                        _ if name == "share" => cell.as_f64().map(|f| format!("{:.1}%", f * 100.0)).unwrap_or_default(),
                        _ => text(cell),
                    })
                    .collect(),
            );
        }
        let widths: Vec<usize> =
            (0..names.len()).map(|c| table.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for (i, row) in table.iter().enumerate() {
            let line: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, text)| {
                    let pad = widths[c] - text.chars().count();
                    if c == 0 || i == 0 {
                        format!("{text}{}", " ".repeat(pad))
                    } else {
                        format!("{}{text}", " ".repeat(pad))
                    }
                })
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        let total: i64 = rows
            .iter()
            .filter_map(|r| names.iter().position(|n| n == "size" || n == "size_left").and_then(|i| r[i].as_i64()))
            .sum();
        let compare = self.compare.as_ref().map(|c| format!(" (compared with {c})")).unwrap_or_default();
        out.push_str(&format!(
            "{} prefixes under {:?} in the {} report{compare}: {}\n",
            rows.len(),
            self.prefix,
            self.date,
            crate::plan::human_bytes(total.max(0) as u64)
        ));
        out
    }
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
fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakdowns_parse_by_name_and_unknown_ones_are_refused() {
        assert_eq!("storage-class".parse::<DuBy>().unwrap(), DuBy::StorageClass);
        assert_eq!("Age".parse::<DuBy>().unwrap(), DuBy::Age);
        assert_eq!("encryption-status".parse::<DuBy>().unwrap(), DuBy::Field("encryption_status"));
        assert_eq!("size".parse::<DuBy>().unwrap().column(), "size_range");
        let error = "colour".parse::<DuBy>().unwrap_err().to_string();
        assert!(error.contains("is not a breakdown") && error.contains("object-lock-mode"), "{error}");
        assert!("key".parse::<DuBy>().is_err(), "only optional inventory fields are breakdowns");
    }

    #[test]
    fn humanizes_signed_sizes_and_quotes_csv() {
        assert_eq!(signed_human(-1536), "-1.5 KiB");
        assert_eq!(signed_human(10), "10 B");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
