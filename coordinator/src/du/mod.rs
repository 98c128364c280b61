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
use quack_lambda::wire::Convert;

mod groups;
mod render;

pub use groups::{parse_groups, DuGroup, MAX_GROUPS};

/// What to sum, and which view of it.
///
/// Views (see [`DuOptions::view`]): per common prefix (lakeview's, the default; with `by` or
/// `groups` one row per prefix and group), the `top` largest objects, `duplicates`, or the
/// `history` over every report.
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
    /// Ad-hoc groups (S3 Storage Lens groups): one row per prefix and group an object is in
    /// (an object may be in several), with its share of all objects under the prefix.
    pub groups: Vec<DuGroup>,
    /// The largest `top` objects; with `duplicates`, the `top` groups that would save most.
    pub top: Option<usize>,
    /// Groups of objects with the same ETag and size, by the bytes a cleanup would save.
    pub duplicates: bool,
    /// Size and objects per report date and child prefix, over every report (from `since`).
    pub history: bool,
    /// With `history`: the first report date to include (a date or its start, `2024-03-02`).
    pub since: Option<String>,
}

/// Which answer a [`DuOptions`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DuView {
    /// Sizes per common prefix (and group), or their difference between two reports.
    Prefixes,
    /// The largest objects.
    Top,
    /// Duplicate groups.
    Duplicates,
    /// Sizes per report date.
    History,
}

/// The most objects or duplicate groups `--top` lists.
pub const MAX_TOP: usize = 1_000_000;

impl DuOptions {
    /// The view these options ask for.
    pub fn view(&self) -> DuView {
        if self.history {
            DuView::History
        } else if self.duplicates {
            DuView::Duplicates
        } else if self.top.is_some() {
            DuView::Top
        } else {
            DuView::Prefixes
        }
    }

    /// Refuses options that do not make one question, with the reason.
    pub fn validate(&self) -> Result<()> {
        let refuse = |message: String| Err(Error::Config { message });
        if self.delimiter.is_empty() {
            return refuse("the delimiter cannot be empty".into());
        }
        if self.depth == 0 {
            return refuse("--depth must be at least 1".into());
        }
        if let Some(top) = self.top {
            if top == 0 || top > MAX_TOP {
                return refuse(format!("--top must be from 1 to {MAX_TOP}, not {top}"));
            }
        }
        if self.by.is_some() && !self.groups.is_empty() {
            return refuse("--by and --group are two breakdowns; give one".into());
        }
        if self.since.is_some() && !self.history {
            return refuse("--since goes with --history".into());
        }
        let breakdown = if self.by.is_some() { Some("--by") } else { (!self.groups.is_empty()).then_some("--group") };
        let view = match self.view() {
            DuView::Prefixes => return Ok(()),
            DuView::Top => "--top",
            DuView::Duplicates => "--duplicates",
            DuView::History => "--history",
        };
        let conflicts = [
            (self.history && self.duplicates, "--duplicates"),
            (self.history && self.top.is_some(), "--top"),
            (self.compare.is_some(), "--compare"),
            (self.history && self.date.is_some(), "--date (it covers every report; use --since)"),
            (breakdown.is_some(), breakdown.unwrap_or_default()),
        ];
        if let Some((_, other)) = conflicts.iter().find(|(conflict, _)| *conflict) {
            return refuse(format!("{view} does not combine with {other}"));
        }
        Ok(())
    }
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
            groups: Vec::new(),
            top: None,
            duplicates: false,
            history: false,
            since: None,
        }
    }
}

/// A `du` answer (rendered by `to_json`, `to_csv` and `to_table`).
#[derive(Debug, Clone)]
pub struct DuAnswer {
    pub view: DuView,
    pub prefix: String,
    pub delimiter: String,
    /// The report answered (with `history`, the newest).
    pub date: String,
    pub compare: Option<String>,
    /// The reports read (with `history`, oldest first).
    pub dates: Vec<String>,
    pub top: Option<usize>,
    pub sql: String,
    /// Output column names (also when there are no rows).
    pub columns: Vec<String>,
    pub batches: Vec<RecordBatch>,
    pub report: crate::QueryReport,
}

/// The report dates under `inventory`, newest first.
pub async fn dates(quack: &Quack, inventory: &str) -> Result<Vec<String>> {
    Ok(Inventory::open(quack.lister(), inventory).await?.dates)
}

/// A planned `du`: the reports it reads and its SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuPlan {
    /// The report answered (`--date` or the newest; with `history`, the newest included).
    pub date: String,
    /// The reports read: the report, then the compared one; with `history`, oldest first.
    pub dates: Vec<String>,
    pub sql: String,
}

/// The inventory and the reports a du reads (see [`DuPlan::dates`]), all of one format.
async fn read_reports(quack: &Quack, options: &DuOptions) -> Result<(Inventory, Vec<String>, Vec<Report>)> {
    options.validate()?;
    let inventory = Inventory::open(quack.lister(), &options.inventory).await?;
    let dates = report_dates(&inventory, options)?;
    let mut reports = Vec::with_capacity(dates.len());
    for date in &dates {
        reports.push(inventory.report(quack.lister(), date).await?);
    }
    let first = &reports[0];
    if let Some(other) = reports.iter().find(|r| r.format != first.format) {
        return Err(Error::Inventory {
            location: inventory.location.clone(),
            message: format!("reports {} and {} have different formats or columns", first.date, other.date),
        });
    }
    Ok((inventory, dates, reports))
}

/// Builds the du query for `options` over `reports` (readable by DuckDB: ORC ones converted).
fn plan(
    quack: &Quack,
    options: &DuOptions,
    inventory: &Inventory,
    dates: Vec<String>,
    reports: &[Report],
) -> Result<DuPlan> {
    let first = &reports[0];
    let files: Vec<String> = reports.iter().flat_map(|r| r.files.iter().cloned()).collect();
    // Which report a row belongs to: the hive `dt` of its path, or its file in AWS's layout.
    let by_file = matches!(inventory.layout, Layout::Aws { .. }) && reports.len() > 1;
    let scan = Report::scan(&files, &first.format, by_file);
    let columns = match &first.format {
        ReportFormat::Csv { columns } => columns.clone(),
        ReportFormat::Parquet | ReportFormat::Orc => quack
            .describe(&format!("SELECT * FROM read_parquet({})", quote_literal(&first.files[0])))?
            .into_iter()
            .map(|c| c.name)
            .collect(),
    };
    let row = RowSql::new(&columns, matches!(first.format, ReportFormat::Csv { .. }), reports, by_file, options);
    let sql = match options.view() {
        DuView::Prefixes if !options.groups.is_empty() => groups_sql(&row, &scan, options),
        DuView::Prefixes => prefixes_sql(&row, &scan, options, reports, &inventory.location)?,
        DuView::Top => top_sql(&row, &scan, options),
        DuView::Duplicates => duplicates_sql(&row, &scan, options, &inventory.location)?,
        DuView::History => history_sql(&row, &scan, options),
    };
    let date = if options.history { dates.last() } else { dates.first() }.cloned().unwrap_or_default();
    Ok(DuPlan { date, dates, sql })
}

/// The report dates a du reads (see [`DuPlan::dates`]).
fn report_dates(inventory: &Inventory, options: &DuOptions) -> Result<Vec<String>> {
    if !options.history {
        let date = options.date.clone().unwrap_or_else(|| inventory.newest().to_string());
        return Ok(std::iter::once(date).chain(options.compare.clone()).collect());
    }
    let since = options.since.as_deref().unwrap_or_default();
    let well_formed = since.len() <= 16 && since.chars().all(|c| c.is_ascii_digit() || c == '-');
    if !well_formed {
        let shown: String = since.chars().take(40).collect();
        return Err(Error::Config {
            message: format!("--since {shown:?} is not a report date or its start (2024-03-04 or 2024-03-04-00-00)"),
        });
    }
    let mut dates: Vec<String> = inventory.dates.iter().filter(|d| d.as_str() >= since).cloned().collect();
    if dates.is_empty() {
        return Err(Error::Inventory {
            location: inventory.location.clone(),
            message: format!("no report on or after {since}; the newest is {}", inventory.newest()),
        });
    }
    dates.reverse();
    Ok(dates)
}

/// SQL expressions over one report row, the same in every view. CSV reports hold text, with
/// `''` for NULL and form-encoded keys.
struct RowSql<'a> {
    columns: &'a [String],
    csv: bool,
    key: String,
    size: &'static str,
    last_modified: String,
    storage_class: &'static str,
    /// The row's report date, when the scan reads more than one report.
    dt: Option<String>,
    /// The row's report date as text: `dt`, or the one report's date.
    date: String,
    /// The report date as a timestamp (what ages are measured against).
    report_date: String,
    /// The rows the view counts: under the prefix, and (but for `--by version`) current.
    filter: String,
}

impl<'a> RowSql<'a> {
    fn new(columns: &'a [String], csv: bool, reports: &[Report], by_file: bool, options: &DuOptions) -> Self {
        let mut row = RowSql {
            columns,
            csv,
            key: if csv { "url_decode(replace(key, '+', ' '))".into() } else { "key".into() },
            size: if csv { "CAST(size AS BIGINT)" } else { "size" },
            last_modified: String::new(),
            storage_class: "CAST(NULL AS VARCHAR)",
            dt: None,
            date: String::new(),
            report_date: String::new(),
            filter: String::new(),
        };
        row.last_modified = if row.has("last_modified_date") {
            "try_cast(last_modified_date AS TIMESTAMP)".into()
        } else {
            "CAST(NULL AS TIMESTAMP)".into()
        };
        if row.has("storage_class") {
            row.storage_class = "storage_class";
        }
        row.dt = match (reports, by_file) {
            ([_], _) => None,
            (_, true) => {
                let mut arms = String::new();
                for report in reports {
                    let list = report.files.iter().map(|f| quote_literal(f)).collect::<Vec<_>>().join(", ");
                    arms.push_str(&format!(
                        " WHEN list_contains([{list}], filename) THEN {}",
                        quote_literal(&report.date)
                    ));
                }
                Some(format!("CASE{arms} END"))
            }
            (_, false) => Some("dt".into()),
        };
        row.date = row.dt.clone().unwrap_or_else(|| quote_literal(&reports[0].date));
        row.report_date = format!("try_cast(left({}, 10) AS TIMESTAMP)", row.date);
        // The version breakdown counts every row; the other views current objects only.
        let current = if options.by == Some(DuBy::Version) {
            String::new()
        } else {
            format!(" AND {} AND {}", row.flag("is_latest", ""), row.flag("is_delete_marker", "NOT "))
        };
        row.filter = format!("starts_with({}, {}){current}", row.key, quote_literal(&options.prefix));
        row
    }

    fn has(&self, name: &str) -> bool {
        self.columns.iter().any(|c| c == name)
    }

    /// A report column's value as text; `None` when the report lacks the column.
    fn text(&self, name: &str) -> Option<String> {
        self.has(name)
            .then(|| if self.csv { format!("nullif({name}, '')") } else { format!("CAST({name} AS VARCHAR)") })
    }

    /// A report column as a boolean (NULL when the report lacks it).
    fn boolean(&self, name: &str) -> String {
        match (self.has(name), self.csv) {
            (false, _) => "CAST(NULL AS BOOLEAN)".into(),
            (true, true) => format!("CAST(nullif({name}, '') AS BOOLEAN)"),
            (true, false) => name.to_string(),
        }
    }

    /// `value` (negated by `keep_when_null` = `NOT `) or NULL keeps the row; TRUE without the column.
    fn flag(&self, name: &str, keep_when_null: &str) -> String {
        if !self.has(name) {
            return "TRUE".into();
        }
        let value = self.boolean(name);
        format!("({keep_when_null}{value} OR {value} IS NULL)")
    }

    /// The common prefix of the key under `options.prefix`, `options.depth` levels down.
    fn common_prefix(&self, options: &DuOptions) -> String {
        let prefix = quote_literal(&options.prefix);
        let delimiter = quote_literal(&options.delimiter);
        let rest = format!("substr({}, length({prefix}) + 1)", self.key);
        if options.depth == 1 {
            format!(
                "CASE WHEN strpos({rest}, {delimiter}) = 0 THEN {rest} \
                 ELSE split_part({rest}, {delimiter}, 1) || {delimiter} END"
            )
        } else {
            format!(
                "CASE WHEN len(string_split({rest}, {delimiter})) <= {depth} THEN {rest} \
                 ELSE array_to_string(string_split({rest}, {delimiter})[1:{depth}], {delimiter}) || {delimiter} END",
                depth = options.depth
            )
        }
    }
}

/// Per common prefix (and `--by` group), or two reports' difference.
fn prefixes_sql(
    row: &RowSql<'_>,
    scan: &str,
    options: &DuOptions,
    reports: &[Report],
    inventory: &str,
) -> Result<String> {
    let group = match &options.by {
        None => None,
        Some(by) => Some(format!("{} AS {}", group_expression(by, row, inventory)?, by.column())),
    };
    let class_column = options.by.as_ref().map(|by| format!(", {}", by.column())).unwrap_or_default();
    let inner = format!(
        "SELECT {common_prefix} AS common_prefix, {size} AS size, {last_modified} AS last_modified{group_column}{dt_column} \
         FROM {scan} WHERE {filter}",
        common_prefix = row.common_prefix(options),
        size = row.size,
        last_modified = row.last_modified,
        filter = row.filter,
        dt_column = row.dt.as_ref().map(|d| format!(", {d} AS dt")).unwrap_or_default(),
        group_column = group.map(|g| format!(", {g}")).unwrap_or_default(),
    );
    let sizes = format!(
        "SELECT common_prefix{class_column}, CAST(sum(size) AS BIGINT) AS size, count(*) AS objects, \
         max(last_modified) AS last_modified FROM ({inner}) GROUP BY ALL"
    );
    Ok(match reports {
        // A breakdown adds each group's share of the total.
        [_] if options.by.is_some() => format!(
            "SELECT common_prefix{class_column}, size, objects, last_modified, \
             CAST(size AS DOUBLE) / nullif(sum(size) OVER (), 0) AS share FROM ({sizes}) \
             ORDER BY size DESC, common_prefix{class_column}"
        ),
        [_] => format!("{sizes} ORDER BY size DESC, common_prefix{class_column}"),
        [left, right, ..] => {
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
        [] => unreachable!("a du reads at least one report"),
    })
}

/// Per common prefix and `--group`: an object counts in every group whose filter it meets; the
/// share is of every current object under the prefix, in a group or not.
fn groups_sql(row: &RowSql<'_>, scan: &str, options: &DuOptions) -> String {
    let inputs = groups::RowColumns {
        key: &row.key,
        size: row.size,
        last_modified: &row.last_modified,
        report_date: &row.report_date,
    };
    let (mut flags, mut sums, mut names, mut sizes, mut objects, mut modified) =
        (String::new(), String::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, group) in options.groups.iter().enumerate() {
        flags.push_str(&format!(", ({}) AS g{i}", group.condition(&inputs)));
        sums.push_str(&format!(
            ", CAST(coalesce(sum(size) FILTER (WHERE g{i}), 0) AS BIGINT) AS s{i}, \
             count(*) FILTER (WHERE g{i}) AS o{i}, max(last_modified) FILTER (WHERE g{i}) AS m{i}"
        ));
        names.push(quote_literal(&group.name));
        sizes.push(format!("s{i}"));
        objects.push(format!("o{i}"));
        modified.push(format!("m{i}"));
    }
    let inner = format!(
        "SELECT {common_prefix} AS common_prefix, {size} AS size, {last_modified} AS last_modified{flags} \
         FROM {scan} WHERE {filter}",
        common_prefix = row.common_prefix(options),
        size = row.size,
        last_modified = row.last_modified,
        filter = row.filter,
    );
    let per_prefix =
        format!("SELECT common_prefix, CAST(sum(size) AS BIGINT) AS total{sums} FROM ({inner}) GROUP BY common_prefix");
    let unpivoted = format!(
        "SELECT common_prefix, unnest([{names}]) AS \"group\", unnest([{sizes}]) AS size, \
         unnest([{objects}]) AS objects, unnest([{modified}]) AS last_modified, sum(total) OVER () AS whole \
         FROM ({per_prefix})",
        names = names.join(", "),
        sizes = sizes.join(", "),
        objects = objects.join(", "),
        modified = modified.join(", "),
    );
    format!(
        "SELECT common_prefix, \"group\", size, objects, last_modified, CAST(size AS DOUBLE) / nullif(whole, 0) AS share \
         FROM ({unpivoted}) WHERE objects > 0 ORDER BY size DESC, common_prefix, \"group\""
    )
}

/// The largest objects under the prefix (current ones), ties by key.
fn top_sql(row: &RowSql<'_>, scan: &str, options: &DuOptions) -> String {
    format!(
        "SELECT key, size, last_modified, storage_class FROM (\
         SELECT {key} AS key, {size} AS size, {last_modified} AS last_modified, {storage_class} AS storage_class \
         FROM {scan} WHERE {filter}) ORDER BY size DESC, key LIMIT {top}",
        key = row.key,
        size = row.size,
        last_modified = row.last_modified,
        storage_class = row.storage_class,
        filter = row.filter,
        top = options.top.unwrap_or(MAX_TOP),
    )
}

/// Groups of current objects under the prefix with the same ETag and size (a multipart ETag
/// carries its part count, so equal ETags have equal part counts), by the bytes that deleting
/// all but one copy would save.
fn duplicates_sql(row: &RowSql<'_>, scan: &str, options: &DuOptions, inventory: &str) -> Result<String> {
    let e_tag = row.text("e_tag").ok_or_else(|| Error::Inventory {
        location: inventory.to_string(),
        message: "--duplicates: the report has no e_tag column (the inventory configuration does not list ETag)".into(),
    })?;
    let rows = format!(
        "SELECT {key} AS key, {size} AS size, {e_tag} AS e_tag FROM {scan} \
         WHERE {filter} AND {e_tag} IS NOT NULL AND {size} IS NOT NULL",
        key = row.key,
        size = row.size,
        filter = row.filter,
    );
    // One grouping block, so that a second stage can shuffle it on (e_tag, size) and keep only
    // the groups of copies (HAVING) where each group is whole: nearly every ETag is unique.
    let limit = options.top.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    Ok(format!(
        "SELECT e_tag, size, try_cast(regexp_extract(e_tag, '-([0-9]+)$', 1) AS INTEGER) AS parts, \
         count(*) AS copies, CAST(size * (count(*) - 1) AS BIGINT) AS reclaimable, min(key) AS first_key, \
         max(key) AS last_key FROM ({rows}) GROUP BY e_tag, size HAVING count(*) > 1 \
         ORDER BY reclaimable DESC, size DESC, e_tag{limit}"
    ))
}

/// Size and objects per report date and common prefix, over every report read.
fn history_sql(row: &RowSql<'_>, scan: &str, options: &DuOptions) -> String {
    format!(
        "SELECT \"date\", common_prefix, CAST(sum(size) AS BIGINT) AS size, count(*) AS objects FROM (\
         SELECT {date} AS \"date\", {common_prefix} AS common_prefix, {size} AS size FROM {scan} WHERE {filter}) \
         GROUP BY ALL ORDER BY \"date\", size DESC, common_prefix",
        date = row.date,
        common_prefix = row.common_prefix(options),
        size = row.size,
        filter = row.filter,
    )
}

/// The SQL expression of `by`'s group (see [`DuBy`] for the labels).
fn group_expression(by: &DuBy, row: &RowSql<'_>, inventory: &str) -> Result<String> {
    const KIB: i64 = 1024;
    Ok(match by {
        DuBy::StorageClass => row.storage_class.to_string(),
        DuBy::Suffix => {
            let name = format!("ltrim(regexp_extract({}, '[^/]*$'), '.')", row.key);
            format!("CASE WHEN strpos({name}, '.') = 0 THEN NULL ELSE '.' || regexp_extract({name}, '[^.]*$') END")
        }
        DuBy::Age => {
            let (modified, date) = (&row.last_modified, &row.report_date);
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
            let size = row.size;
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
            row.boolean("is_delete_marker"),
            row.boolean("is_latest")
        ),
        DuBy::Field(field) => row.text(field).ok_or_else(|| Error::Inventory {
            location: inventory.to_string(),
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
    let (inventory, dates, mut reports) = read_reports(quack, options).await?;
    // ORC reports: the workers convert their data files into Parquet first.
    let converted = match reports[0].format {
        ReportFormat::Orc => {
            let files: Vec<String> = reports.iter().flat_map(|r| r.files.iter().cloned()).collect();
            let converted = quack.convert(&files, Convert::Orc, on_progress).await?;
            let mut copies = converted.files.iter();
            for report in &mut reports {
                report.files = copies.by_ref().take(report.files.len()).cloned().collect();
            }
            Some(converted)
        }
        _ => None,
    };
    let answered = async {
        let planned = plan(quack, options, &inventory, dates, &reports)?;
        let (batches, report) = quack.query_batches_with_progress(&planned.sql, on_progress).await?;
        let columns = match batches.first() {
            Some(batch) => batch.schema().fields().iter().map(|f| f.name().clone()).collect(),
            None => quack.describe(&planned.sql)?.into_iter().map(|c| c.name).collect(),
        };
        Ok::<_, Error>((planned, batches, report, columns))
    }
    .await;
    if let Some(converted) = converted {
        converted.finish().await;
    }
    let (DuPlan { date, dates, sql }, batches, report, columns) = answered?;
    Ok(DuAnswer {
        view: options.view(),
        columns,
        prefix: options.prefix.clone(),
        delimiter: options.delimiter.clone(),
        date,
        compare: options.compare.clone(),
        dates,
        top: options.top,
        sql,
        batches,
        report,
    })
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
    fn views_are_chosen_and_conflicting_options_refused() {
        let base = DuOptions { inventory: "inv".into(), ..Default::default() };
        assert_eq!(base.view(), DuView::Prefixes);
        assert!(base.validate().is_ok());
        let top = DuOptions { top: Some(5), ..base.clone() };
        assert_eq!(top.view(), DuView::Top);
        let duplicates = DuOptions { duplicates: true, top: Some(5), ..base.clone() };
        assert_eq!((duplicates.view(), duplicates.validate().is_ok()), (DuView::Duplicates, true));
        let history = DuOptions { history: true, since: Some("2024-03-02".into()), ..base.clone() };
        assert_eq!((history.view(), history.validate().is_ok()), (DuView::History, true));
        let group: DuGroup = "g=".parse().unwrap();
        for (options, needle) in [
            (DuOptions { top: Some(0), ..base.clone() }, "--top must be"),
            (DuOptions { compare: Some("d".into()), ..top.clone() }, "--top does not combine with --compare"),
            (DuOptions { by: Some(DuBy::Age), ..duplicates.clone() }, "--duplicates does not combine with --by"),
            (DuOptions { groups: vec![group.clone()], ..history.clone() }, "--history does not combine with --group"),
            (DuOptions { date: Some("d".into()), ..history.clone() }, "use --since"),
            (DuOptions { since: Some("2024".into()), ..base.clone() }, "--since goes with --history"),
            (DuOptions { by: Some(DuBy::Age), groups: vec![group], ..base.clone() }, "two breakdowns"),
        ] {
            let error = options.validate().unwrap_err().to_string();
            assert!(error.contains(needle), "{options:?}: {error}");
        }
    }
}
