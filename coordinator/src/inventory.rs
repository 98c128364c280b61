//! S3 Inventory reports: finding them under `--inventory`, their dates, and each report's data
//! files, format and columns, as a scan the planner can fan out.
//!
//! Layouts, local or in S3:
//! - AWS's: `<config-id>/hive/dt=YYYY-MM-DD-HH-MM/symlink.txt` lists the report's data files
//!   (`s3://.../<config-id>/data/<uuid>.parquet|.csv.gz|.orc`), and
//!   `<config-id>/YYYY-MM-DDTHH-MMZ/manifest.json` gives `fileFormat`, `fileSchema` and `files`.
//!   `--inventory` names `<config-id>/` or its `hive/` folder. In a local copy, the `s3://` URLs
//!   resolve to the same path below `<config-id>/` in the copy.
//! - A plain hive directory of Parquet files: `dt=.../*.parquet`.

use crate::error::{Error, Result};
use crate::partitions::{hive_segments, Lister};
use quack_lambda::quote::literal as quote_literal;

/// Where the reports are and how they are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// The `--inventory` location, without a trailing `/`.
    pub location: String,
    pub layout: Layout,
    /// Report dates (`2024-03-04-00-00`), newest first.
    pub dates: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// AWS's layout: `root` is the `<config-id>` folder.
    Aws { root: String },
    /// `dt=.../*.parquet` directly under the location.
    Hive,
}

/// The data format of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportFormat {
    Parquet,
    /// Gzipped CSV without a header; the columns come from the manifest's `fileSchema`.
    Csv {
        columns: Vec<String>,
    },
    /// Apache ORC, which DuckDB cannot read: the workers convert each data file into Parquet
    /// first ([`crate::convert`]), and the report is then read as Parquet.
    Orc,
}

/// One report: its files and how to read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub date: String,
    pub files: Vec<String>,
    pub format: ReportFormat,
}

fn not_found(location: &str, message: impl Into<String>) -> Error {
    Error::Inventory { location: location.to_string(), message: message.into() }
}

impl Inventory {
    /// Finds the reports under `location`.
    pub async fn open(lister: &dyn Lister, location: &str) -> Result<Inventory> {
        let location = location.trim_end_matches('/').to_string();
        if location.is_empty() {
            return Err(not_found("", "no inventory location given"));
        }
        // The `dt=` dates of the files `pattern` names, newest first.
        let dates_of = |pattern: String| async move {
            let mut dates: Vec<String> = lister
                .list(&pattern)
                .await?
                .iter()
                .filter_map(|f| hive_segments(&f.path).into_iter().rev().find(|(k, _)| k == "dt").map(|(_, v)| v))
                .collect();
            dates.sort();
            dates.dedup();
            dates.reverse();
            Ok::<_, Error>(dates)
        };
        for (root, hive) in [(location.clone(), format!("{location}/hive")), parent_of_hive(&location)] {
            if root.is_empty() {
                continue;
            }
            let dates = dates_of(format!("{hive}/dt=*/symlink.txt")).await?;
            if !dates.is_empty() {
                return Ok(Inventory { location, layout: Layout::Aws { root }, dates });
            }
        }
        let dates = dates_of(format!("{location}/dt=*/*")).await?;
        if !dates.is_empty() {
            return Ok(Inventory { location, layout: Layout::Hive, dates });
        }
        Err(not_found(
            &location,
            "no S3 Inventory report here: expected hive/dt=*/symlink.txt (AWS's layout) or dt=*/*.parquet",
        ))
    }

    /// The newest report's date.
    pub fn newest(&self) -> &str {
        &self.dates[0]
    }

    /// The report of `date`, or an error listing the dates there are.
    pub async fn report(&self, lister: &dyn Lister, date: &str) -> Result<Report> {
        if !self.dates.iter().any(|d| d == date) {
            return Err(not_found(
                &self.location,
                format!("no report for {date}; available (newest first): {}", self.dates.join(", ")),
            ));
        }
        match &self.layout {
            Layout::Hive => {
                let files = lister.list(&format!("{}/dt={date}/*.parquet", self.location)).await?;
                if files.is_empty() {
                    return Err(not_found(&self.location, format!("report {date} has no .parquet files")));
                }
                Ok(Report {
                    date: date.to_string(),
                    files: files.into_iter().map(|f| f.path).collect(),
                    format: ReportFormat::Parquet,
                })
            }
            Layout::Aws { root } => self.aws_report(lister, root, date).await,
        }
    }

    async fn aws_report(&self, lister: &dyn Lister, root: &str, date: &str) -> Result<Report> {
        let symlink = format!("{root}/hive/dt={date}/symlink.txt");
        let listed: Vec<String> = lister
            .read_to_string(&symlink)
            .await?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|url| self.resolve(root, url))
            .collect::<Result<_>>()?;
        let manifest_path = format!("{root}/{}/manifest.json", manifest_folder(date));
        let manifest = match lister.read_to_string(&manifest_path).await {
            Ok(text) => {
                check_manifest_checksum(lister, &manifest_path, &text).await?;
                Some(Manifest::parse(&text).map_err(|m| not_found(&manifest_path, m))?)
            }
            Err(_) => None,
        };
        // Each data file with the size its manifest gives (symlink.txt gives none).
        let expected: Vec<(String, Option<u64>)> = match &manifest {
            Some(manifest) if !manifest.files.is_empty() => manifest
                .files
                .iter()
                .map(|(key, size)| Ok((self.resolve_key(root, key)?, *size)))
                .collect::<Result<Vec<_>>>()?,
            _ => listed.into_iter().map(|file| (file, None)).collect(),
        };
        if expected.is_empty() {
            return Err(not_found(&self.location, format!("report {date} lists no data files")));
        }
        // Every data file must be there, at the manifest's size: a missing file would silently
        // undercount, and one of another size is truncated or replaced.
        let data_dir = expected[0].0.rsplit_once('/').map(|(dir, _)| dir.to_string()).unwrap_or_default();
        let present: std::collections::HashMap<String, u64> =
            lister.list(&format!("{data_dir}/*")).await?.into_iter().map(|f| (f.path, f.size)).collect();
        for (file, size) in &expected {
            match (present.get(file), size) {
                (None, _) => {
                    return Err(not_found(&self.location, format!("report {date}: data file {file} is missing")))
                }
                (Some(listed), Some(size)) if listed != size => {
                    return Err(not_found(
                        &self.location,
                        format!("report {date}: data file {file} is {listed} bytes, but {manifest_path} says {size}"),
                    ))
                }
                _ => {}
            }
        }
        let files: Vec<String> = expected.into_iter().map(|(file, _)| file).collect();
        let format_name = match &manifest {
            Some(m) => m.file_format.to_ascii_lowercase(),
            None if files[0].ends_with(".parquet") => "parquet".into(),
            None if files[0].ends_with(".orc") => "orc".into(),
            None => "csv".into(),
        };
        let format = match format_name.as_str() {
            "parquet" => ReportFormat::Parquet,
            "orc" => ReportFormat::Orc,
            "csv" => {
                let Some(schema) = manifest.as_ref().map(|m| m.file_schema.clone()) else {
                    return Err(not_found(
                        &self.location,
                        format!("report {date} is CSV but has no {manifest_path} to give its columns"),
                    ));
                };
                let columns: Vec<String> = schema.split(',').map(|c| column_name(c.trim())).collect();
                if !columns.iter().any(|c| c == "size") {
                    return Err(not_found(
                        &self.location,
                        format!("CSV report {date} has no Size column (fileSchema: {schema}); enable the Size field"),
                    ));
                }
                if !columns.iter().any(|c| c == "key") {
                    return Err(not_found(
                        &self.location,
                        format!("CSV report {date} has no Key column (fileSchema: {schema})"),
                    ));
                }
                ReportFormat::Csv { columns }
            }
            other => {
                return Err(not_found(&self.location, format!("report {date} has an unknown fileFormat {other:?}")))
            }
        };
        Ok(Report { date: date.to_string(), files, format })
    }

    /// A data file URL from symlink.txt, as this copy reads it.
    fn resolve(&self, root: &str, url: &str) -> Result<String> {
        if crate::s3::is_s3(root) {
            return Ok(url.to_string());
        }
        self.below_root(root, url)
    }

    /// A manifest `files[].key` (relative to the destination bucket) as this copy reads it.
    fn resolve_key(&self, root: &str, key: &str) -> Result<String> {
        self.below_root(root, key)
    }

    /// `path` (a URL or bucket key naming `.../<config-id>/<rest>`) as `<root>/<rest>`.
    fn below_root(&self, root: &str, path: &str) -> Result<String> {
        let config_id = root.rsplit('/').next().unwrap_or(root);
        let marker = format!("/{config_id}/");
        let padded = format!("/{path}");
        match padded.rfind(&marker) {
            Some(at) => Ok(format!("{root}/{}", &padded[at + marker.len()..])),
            None => {
                Err(not_found(&self.location, format!("cannot place {path} below {root} (no /{config_id}/ in it)")))
            }
        }
    }
}

/// `(root, hive dir)` when `location` is itself the `hive/` folder.
fn parent_of_hive(location: &str) -> (String, String) {
    match location.strip_suffix("/hive") {
        Some(root) => (root.to_string(), location.to_string()),
        None => (String::new(), String::new()),
    }
}

/// `2024-03-04-00-00` → `2024-03-04T00-00Z` (the manifest's folder).
fn manifest_folder(date: &str) -> String {
    match date.get(..10).zip(date.get(11..)) {
        Some((day, time)) => format!("{day}T{time}Z"),
        None => date.to_string(),
    }
}

/// `LastModifiedDate` → `last_modified_date`, `ETag` → `e_tag`, as in AWS's Parquet reports.
pub fn column_name(field: &str) -> String {
    match field {
        "ETag" => return "e_tag".into(),
        "VersionId" => return "version_id".into(),
        _ => {}
    }
    let mut out = String::new();
    for (i, c) in field.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Checks `manifest.json` (its `text`, read from `manifest_path`) against the
/// `manifest.checksum` beside it, which AWS writes with the MD5 of the manifest in hex. No
/// checksum file: nothing to check. A mismatch names the manifest.
async fn check_manifest_checksum(lister: &dyn Lister, manifest_path: &str, text: &str) -> Result<()> {
    use md5::Digest as _;
    let checksum_path = format!("{}checksum", manifest_path.trim_end_matches("json"));
    let Ok(expected) = lister.read_to_string(&checksum_path).await else { return Ok(()) };
    let expected = expected.trim().to_ascii_lowercase();
    let actual: String = md5::Md5::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    if expected != actual {
        return Err(not_found(
            manifest_path,
            format!(
                "its MD5 is {actual}, but {checksum_path} says {expected:?}: the manifest is corrupt or was replaced"
            ),
        ));
    }
    Ok(())
}

struct Manifest {
    file_format: String,
    file_schema: String,
    /// `files[]`: each `key`, with its `size` when the manifest gives one.
    files: Vec<(String, Option<u64>)>,
}

impl Manifest {
    fn parse(text: &str) -> std::result::Result<Manifest, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let field = |name: &str| value.get(name).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let files = value
            .get("files")
            .and_then(|f| f.as_array())
            .map(|files| {
                files
                    .iter()
                    .filter_map(|f| {
                        let key = f.get("key").and_then(|k| k.as_str())?;
                        Some((key.to_string(), f.get("size").and_then(|s| s.as_u64())))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Manifest { file_format: field("fileFormat"), file_schema: field("fileSchema"), files })
    }
}

impl Report {
    /// The report as a scan quack fans out per data file, with `filename` when asked (to tell
    /// two reports apart in one scan).
    pub fn scan(files: &[String], format: &ReportFormat, filename: bool) -> String {
        let list = files.iter().map(|f| quote_literal(f)).collect::<Vec<_>>().join(", ");
        let filename = if filename { ", filename = true" } else { "" };
        match format {
            // ORC files are converted into Parquet before their scan is built.
            ReportFormat::Parquet | ReportFormat::Orc => {
                format!("read_parquet([{list}], hive_partitioning = true{filename})")
            }
            ReportFormat::Csv { columns } => {
                let columns =
                    columns.iter().map(|c| format!("{}: 'VARCHAR'", quote_literal(c))).collect::<Vec<_>>().join(", ");
                format!(
                    "read_csv([{list}], hive_partitioning = true, header = false, compression = 'gzip', \
                     columns = {{{columns}}}{filename})"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_columns_like_aws_parquet_reports() {
        assert_eq!(column_name("LastModifiedDate"), "last_modified_date");
        assert_eq!(column_name("IsDeleteMarker"), "is_delete_marker");
        assert_eq!(column_name("ETag"), "e_tag");
        assert_eq!(column_name("Size"), "size");
        assert_eq!(manifest_folder("2024-03-04-00-00"), "2024-03-04T00-00Z");
    }

    /// An AWS-layout report of one CSV data file of 5 bytes under `dir/cfg`, with the
    /// manifest's `size` and, when given, a `manifest.checksum`.
    fn aws_report(dir: &std::path::Path, size: u64, checksum: Option<&str>) -> Result<Report> {
        let root = dir.join("cfg");
        std::fs::create_dir_all(root.join("hive/dt=2024-04-01-00-00")).unwrap();
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::create_dir_all(root.join("2024-04-01T00-00Z")).unwrap();
        std::fs::write(root.join("data/a.csv.gz"), b"12345").unwrap();
        std::fs::write(root.join("hive/dt=2024-04-01-00-00/symlink.txt"), "s3://dest/inv/cfg/data/a.csv.gz\n").unwrap();
        let manifest = serde_json::json!({
            "fileFormat": "CSV", "fileSchema": "Bucket, Key, Size",
            "files": [{"key": "inv/cfg/data/a.csv.gz", "size": size, "MD5checksum": "x"}],
        })
        .to_string();
        std::fs::write(root.join("2024-04-01T00-00Z/manifest.json"), &manifest).unwrap();
        let checksum_file = root.join("2024-04-01T00-00Z/manifest.checksum");
        match checksum {
            Some(checksum) => std::fs::write(&checksum_file, checksum).unwrap(),
            None => {
                let _ = std::fs::remove_file(&checksum_file);
            }
        }
        let location = root.to_string_lossy().to_string();
        let lister = crate::partitions::LocalLister;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async { Inventory::open(&lister, &location).await?.report(&lister, "2024-04-01-00-00").await })
    }

    #[test]
    fn manifest_checksums_and_data_file_sizes_are_checked() {
        use md5::Digest as _;
        let dir = tempfile::tempdir().unwrap();
        aws_report(dir.path(), 5, None).expect("no checksum file: nothing to check");
        let manifest = std::fs::read(dir.path().join("cfg/2024-04-01T00-00Z/manifest.json")).unwrap();
        let md5: String = md5::Md5::digest(&manifest).iter().map(|b| format!("{b:02X}")).collect();
        aws_report(dir.path(), 5, Some(&format!("{md5}\n"))).expect("AWS's checksum, any case, a newline after it");

        let error = aws_report(dir.path(), 5, Some("0123456789abcdef0123456789abcdef")).unwrap_err().to_string();
        assert!(error.contains("manifest.json") && error.contains("manifest.checksum"), "{error}");
        let error = aws_report(dir.path(), 6, None).unwrap_err().to_string();
        assert!(error.contains("data/a.csv.gz is 5 bytes") && error.contains("says 6"), "{error}");
    }
}
