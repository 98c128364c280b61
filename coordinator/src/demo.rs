//! The demo lake: deterministic, generated with DuckDB SQL so `quack demo` works on a fresh
//! machine with nothing downloaded.
//!
//! Layout under the chosen directory:
//! - `trips/date=YYYY-MM-DD/*.parquet`: taxi-like trips for March 2024, skewed per day;
//! - `zones.parquet`: 265 pickup zones with their borough;
//! - `inventory/dt=YYYY-MM-DD-00-00/*.parquet`: an S3-Inventory-shaped listing of a bucket that
//!   grows day by day, with versions, delete markers and storage classes;
//! - `inventory-aws/demo-bucket/daily/`: the same reports in AWS's layout, as a local copy of
//!   `s3://demo-inventory/demo-bucket/daily/`: `data/<uuid>.parquet` (two files per report),
//!   `hive/dt=.../symlink.txt` and `YYYY-MM-DDT00-00Z/manifest.json`.

use std::path::Path;

use crate::error::{Error, Result};
use quack_lambda::quote::literal as quote_literal;

/// Sizes of the generated lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoSize {
    /// Trips over the whole month.
    pub trips: u64,
    /// Objects in the first inventory report (later reports grow).
    pub objects: u64,
}

impl Default for DemoSize {
    fn default() -> Self {
        DemoSize { trips: 2_000_000, objects: 200_000 }
    }
}

/// Writes the demo lake into `dir` (replacing a previous demo lake there).
pub fn generate(dir: &Path, size: DemoSize) -> Result<()> {
    let demo_error = |message: String| Error::Demo { path: dir.display().to_string(), message };
    for sub in ["trips", "inventory", "inventory-aws", "zones.parquet"] {
        let path = dir.join(sub);
        if path.is_dir() {
            std::fs::remove_dir_all(&path).map_err(|e| demo_error(e.to_string()))?;
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| demo_error(e.to_string()))?;
    let conn = duckdb::Connection::open_in_memory().map_err(|e| demo_error(e.to_string()))?;
    let root = dir.display().to_string();
    let path = |p: &str| quote_literal(&format!("{root}/{p}"));
    let sql = format!(
        "
        CREATE TABLE zones AS
        SELECT i AS location_id,
               ['Manhattan', 'Brooklyn', 'Queens', 'Bronx', 'Staten Island', 'EWR'][1 + (i * 7) % 6] AS borough,
               'Zone ' || i AS zone
        FROM range(1, 266) t(i);
        COPY zones TO {zones} (FORMAT parquet);

        -- Day d of March gets a weight that rises through the week; trip i lands in a day by
        -- inverting the cumulative weights, so partitions have uneven sizes.
        CREATE TABLE days AS
        SELECT d, DATE '2024-03-01' + d::INTEGER AS date, 1 + (d % 7) * (d % 7) AS weight FROM range(31) t(d);
        CREATE TABLE day_bounds AS
        SELECT date, sum(weight) OVER (ORDER BY d) - weight AS lo, sum(weight) OVER (ORDER BY d) AS hi,
               sum(weight) OVER () AS total
        FROM days;
        CREATE TABLE trips AS
        WITH base AS (
            SELECT i, (i * 2654435761) % 4294967296 AS h1, (i * 40503 + 12345) % 65536 AS h2 FROM range({trips}) t(i)
        )
        SELECT
            1 + h2 % 2 AS vendor_id,
            b.date + to_microseconds(((h1 % 86400000) * 1000)::BIGINT) AS pickup_at,
            1 + (h2 % 4) AS passenger_count,
            round(0.3 + (h1 % 2500) / 100.0 * ((h2 % 3) + 1) / 3, 2) AS trip_distance,
            -- Popular zones: squaring a uniform draw skews trips toward low zone ids.
            1 + (((h1 // 7) % 1000) * ((h1 // 7) % 1000) * 265 // 1000000)::INTEGER AS pickup_location_id,
            1 + ((h1 // 11) % 265)::INTEGER AS dropoff_location_id,
            ['card', 'cash', 'card', 'card', 'dispute', 'no_charge'][1 + (h2 % 6)] AS payment_type,
            round(3 + 2.5 * (0.3 + (h1 % 2500) / 100.0 * ((h2 % 3) + 1) / 3) + (h1 % 700) / 100.0, 2) AS fare_amount,
            CASE WHEN h2 % 9 = 0 THEN NULL ELSE round((h1 % 1200) / 100.0, 2) END AS tip_amount,
            b.date AS date
        FROM base
        JOIN day_bounds b ON (base.i * 7919) % ({trips}) * b.total / {trips} >= b.lo
                         AND (base.i * 7919) % ({trips}) * b.total / {trips} < b.hi;
        COPY (SELECT * FROM trips ORDER BY date, pickup_at) TO {trips_dir}
            (FORMAT parquet, PARTITION_BY (date), OVERWRITE_OR_IGNORE, ROW_GROUP_SIZE 100000);

        -- The inventory: report k (k = 0..3) lists objects 0 .. objects * (1 + k / 4).
        CREATE TABLE reports AS SELECT k, printf('2024-03-%02d-00-00', 1 + k) AS dt FROM range(4) t(k);
        CREATE TABLE objects AS
        SELECT i,
               ['production/', 'staging/', 'logs/', 'backups/', 'ml/'][1 + (i % 5)]
                 || ['2023/', '2024/'][1 + (i // 5) % 2]
                 || lpad(((i // 10) % 12 + 1)::VARCHAR, 2, '0') || '/'
                 || 'object-' || i || ['.parquet', '.json', '.gz', ' with space.txt'][1 + (i // 3) % 4] AS key,
               1 + ((c * 2654435761) % 4294967296) % (CASE WHEN c % 5 = 3 THEN 500000000 ELSE 5000000 END) AS size,
               -- Objects over 16 MiB were multipart uploads (8 MiB parts): their ETag carries the part count.
               md5('content-' || c) || CASE WHEN size > 16777216 THEN '-' || (size // 8388608 + 1) ELSE '' END AS e_tag,
               ['STANDARD', 'STANDARD', 'STANDARD_IA', 'GLACIER'][1 + (i // 7) % 4] AS storage_class
        -- c is the content: one object in 97 is a copy of the one before (same ETag and size).
        FROM (SELECT i, CASE WHEN i % 97 = 1 THEN i - 1 ELSE i END AS c FROM range({objects} * 2) t(i));
        COPY (
            SELECT 'demo-bucket' AS bucket, o.key,
                   CASE WHEN o.i % 13 = 0 THEN 'v2' END AS version_id,
                   CASE WHEN o.i % 13 = 0 THEN true WHEN o.i % 17 = 0 THEN NULL ELSE true END AS is_latest,
                   CASE WHEN o.i % 101 = 0 AND r.k > 1 THEN true WHEN o.i % 3 = 0 THEN NULL ELSE false END AS is_delete_marker,
                   o.size::BIGINT AS size,
                   TIMESTAMP '2023-01-01' + to_seconds((o.i * 37) % 36000000) AS last_modified_date,
                   o.e_tag, o.storage_class, r.dt
            FROM reports r JOIN objects o ON o.i < {objects} * (4 + r.k) / 4
            ORDER BY r.dt, o.key
        ) TO {inventory_dir} (FORMAT parquet, PARTITION_BY (dt), OVERWRITE_OR_IGNORE);
        ",
        zones = path("zones.parquet"),
        trips = size.trips.max(1),
        objects = size.objects.max(1),
        trips_dir = path("trips"),
        inventory_dir = path("inventory"),
    );
    conn.execute_batch(&sql).map_err(|e| demo_error(e.to_string()))?;
    write_aws_inventory(&conn, dir).map_err(demo_error)
}

/// The demo inventory again in AWS's layout (see the module doc).
fn write_aws_inventory(conn: &duckdb::Connection, dir: &Path) -> std::result::Result<(), String> {
    let root = dir.join("inventory-aws/demo-bucket/daily");
    let url_root = "s3://demo-inventory/demo-bucket/daily";
    std::fs::create_dir_all(root.join("data")).map_err(|e| e.to_string())?;
    for k in 0..4u32 {
        let dt = format!("2024-03-{:02}-00-00", 1 + k);
        let mut files = Vec::new();
        for part in 0..2u32 {
            let name = format!("data/5e1f{k:04x}-{part:04x}-4a6b-9c3d-7e8f{:08x}.parquet", k * 31 + part * 7);
            let path = root.join(&name);
            conn.execute_batch(&format!(
                "COPY (SELECT * EXCLUDE (dt) FROM read_parquet({src}) WHERE hash(key) % 2 = {part} ORDER BY key) \
                 TO {dst} (FORMAT parquet)",
                src = quote_literal(&format!("{}/inventory/dt={dt}/*.parquet", dir.display())),
                dst = quote_literal(&path.display().to_string()),
            ))
            .map_err(|e| e.to_string())?;
            let size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
            files.push((name, size));
        }
        let hive = root.join(format!("hive/dt={dt}"));
        std::fs::create_dir_all(&hive).map_err(|e| e.to_string())?;
        let symlink: String = files.iter().map(|(name, _)| format!("{url_root}/{name}\n")).collect();
        std::fs::write(hive.join("symlink.txt"), symlink).map_err(|e| e.to_string())?;
        let manifest_dir = root.join(format!("2024-03-{:02}T00-00Z", 1 + k));
        std::fs::create_dir_all(&manifest_dir).map_err(|e| e.to_string())?;
        let manifest = serde_json::json!({
            "sourceBucket": "demo-bucket",
            "destinationBucket": "arn:aws:s3:::demo-inventory",
            "version": "2016-11-30",
            "creationTimestamp": format!("{}", 1_709_251_200_000u64 + u64::from(k) * 86_400_000),
            "fileFormat": "Parquet",
            "fileSchema": "message s3.inventory { required binary bucket (STRING); required binary key (STRING); \
                           optional binary version_id (STRING); optional boolean is_latest; optional boolean \
                           is_delete_marker; optional int64 size; optional int64 last_modified_date (TIMESTAMP(MILLIS,true)); \
                           optional binary e_tag (STRING); optional binary storage_class (STRING); }",
            "files": files.iter().map(|(name, size)| serde_json::json!({
                "key": format!("demo-bucket/daily/{name}"), "size": size, "MD5checksum": "",
            })).collect::<Vec<_>>(),
        });
        std::fs::write(
            manifest_dir.join("manifest.json"),
            serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The headline queries `quack demo` runs: (title, SQL) over the lake in `dir`.
pub fn headline_queries(dir: &Path) -> Vec<(&'static str, String)> {
    let root = dir.display().to_string();
    let trips = format!("read_parquet('{root}/trips/*/*.parquet', hive_partitioning = true)");
    let inventory = format!("read_parquet('{root}/inventory/*/*.parquet', hive_partitioning = true)");
    vec![
        (
            "Top pickup locations since March 1st",
            format!(
                "SELECT pickup_location_id, count(*) AS trips FROM {trips} \
                 WHERE date >= DATE '2024-03-01' GROUP BY 1 ORDER BY trips DESC, pickup_location_id LIMIT 10"
            ),
        ),
        (
            "Trips, fares and tips per day in the week of March 11 (partitions pruned)",
            format!(
                "SELECT date, count(*) AS trips, sum(fare_amount) AS fares, avg(tip_amount) AS avg_tip, \
                 stddev_samp(trip_distance) AS sd_distance FROM {trips} \
                 WHERE date BETWEEN DATE '2024-03-11' AND DATE '2024-03-17' GROUP BY date ORDER BY date"
            ),
        ),
        (
            "Trips by borough (broadcast join with the zones table)",
            format!(
                "SELECT z.borough, count(*) AS trips, round(sum(t.fare_amount) / sum(t.trip_distance), 3) AS fare_per_mile \
                 FROM {trips} t JOIN read_parquet('{root}/zones.parquet') z ON t.pickup_location_id = z.location_id \
                 GROUP BY z.borough ORDER BY trips DESC"
            ),
        ),
        (
            "Median fare by payment type (no exact partial state: rows shipped to the reduce)",
            format!("SELECT payment_type, median(fare_amount) AS median_fare, count(*) AS trips FROM {trips} GROUP BY ALL ORDER BY 1"),
        ),
        (
            "Storage by top-level prefix in the newest inventory report (du)",
            format!(
                "SELECT common_prefix, count(*) AS objects, sum(size) AS bytes FROM ( \
                 SELECT CASE WHEN strpos(key, '/') = 0 THEN key ELSE split_part(key, '/', 1) || '/' END AS common_prefix, size \
                 FROM {inventory} WHERE dt = '2024-03-04-00-00' \
                 AND (is_latest OR is_latest IS NULL) AND (NOT is_delete_marker OR is_delete_marker IS NULL)) \
                 GROUP BY common_prefix ORDER BY bytes DESC, common_prefix"
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_small_lake() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), DemoSize { trips: 5_000, objects: 1_000 }).unwrap();
        let days = std::fs::read_dir(dir.path().join("trips")).unwrap().count();
        assert_eq!(days, 31);
        let reports = std::fs::read_dir(dir.path().join("inventory")).unwrap().count();
        assert_eq!(reports, 4);
        assert!(dir.path().join("zones.parquet").is_file());
        let aws = dir.path().join("inventory-aws/demo-bucket/daily");
        assert_eq!(std::fs::read_dir(aws.join("hive")).unwrap().count(), 4);
        assert_eq!(std::fs::read_dir(aws.join("data")).unwrap().count(), 8);
        assert!(aws.join("2024-03-04T00-00Z/manifest.json").is_file());
        let conn = duckdb::Connection::open_in_memory().unwrap();
        let n: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM read_parquet('{}/trips/*/*.parquet')", dir.path().display()),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 5_000);
    }
}
