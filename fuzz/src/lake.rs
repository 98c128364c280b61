//! The fuzz lake: a small hive-partitioned fact table written by DuckDB, deterministic for a
//! seed, shaped to provoke the rewriter: several files per partition, NULL-heavy columns, a
//! quoted mixed-case column, partition columns, and a dimension table that shares column names
//! with the fact table (so aliases and joins shadow each other). Its layout is hostile too:
//! partition values DuckDB reads as NULL (`null`, `NULL`, `__HIVE_DEFAULT_PARTITION__`) or that
//! hold glob characters, file names that are globs matching their neighbours, and files whose
//! schema drifts from the first file's (order, a widened type, an extra column).

use std::path::{Path, PathBuf};

use quack_lambda::quote::literal as quote_literal;

/// The fact table's columns as its first file stores them.
const FIRST_SCHEMA: &str = "* EXCLUDE (p, q, part)";
/// The fact table's columns as `union_by_name` reads them, without `extra`.
const UNION_SCHEMA: &str = "id, a::BIGINT AS a, b, s, \"Mixed\", amount, ts, flag";

/// A generated lake on disk.
#[derive(Debug, Clone)]
pub struct FuzzLake {
    pub root: PathBuf,
}

/// Columns of the fact table a query may reference, with their kind.
pub const FACT_COLUMNS: &[(&str, Kind)] = &[
    ("id", Kind::Number),
    ("a", Kind::Number),
    ("b", Kind::Number),
    ("s", Kind::Text),
    ("\"Mixed\"", Kind::Number),
    ("amount", Kind::Number),
    ("ts", Kind::Time),
    ("flag", Kind::Bool),
    ("p", Kind::Number),
    ("q", Kind::Text),
];

/// Columns of the dimension table (`a` and `id` are also fact columns).
pub const DIM_COLUMNS: &[(&str, Kind)] =
    &[("a", Kind::Number), ("id", Kind::Number), ("name", Kind::Text), ("w", Kind::Number)];

/// What a column holds, for building well-typed expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Number,
    Text,
    Time,
    Bool,
}

impl FuzzLake {
    /// Writes the lake under `root` (which must not exist or be empty).
    pub fn generate(root: &Path, seed: u64) -> Result<Self, duckdb::Error> {
        std::fs::create_dir_all(root).expect("the lake directory can be created");
        let conn = duckdb::Connection::open_in_memory()?;
        conn.execute_batch("SET threads = 1")?; // random() is reproducible for a seed on one thread
        let r = root.display().to_string();
        conn.execute_batch(&format!(
            "SELECT setseed({});
             CREATE TABLE fact AS
             SELECT i AS id,
                    CASE WHEN random() < 0.3 THEN NULL ELSE (random() * 10)::INTEGER END AS a,
                    CASE WHEN random() < 0.2 THEN NULL ELSE round(random() * 100 - 20, 3) END AS b,
                    (['a', 'B', 'c', 'd d', NULL, 'Ünï'])[1 + (random() * 5.99)::INTEGER] AS s,
                    (random() * 4)::INTEGER AS \"Mixed\",
                    CAST(round(random() * 1000, 2) AS DECIMAL(12, 2)) AS amount,
                    TIMESTAMP '2024-03-01' + INTERVAL (i * 37) MINUTE AS ts,
                    random() < 0.5 AS flag,
                    1 + i % 4 AS p,
                    CASE i % 3 WHEN 0 THEN 'x' WHEN 1 THEN 'Y' ELSE 'odd' END AS q,
                    (i // 4) % 2 AS part
             FROM range(1, 961) r(i);
             CREATE TABLE dim AS
             SELECT i AS a, i * 100 AS id, 'zone ' || i AS name, i * 1.5 AS w FROM range(0, 12) r(i);
             COPY dim TO {} (FORMAT parquet);",
            (seed % 1000) as f64 / 1000.0,
            quote_literal(&format!("{r}/dim.parquet"))
        ))?;
        for p in 1..=4 {
            // The third value of q is spelled as DuckDB reads NULL, or with glob characters.
            let odd = ["null", "NULL", "__HIVE_DEFAULT_PARTITION__", "a[1]*"][p - 1];
            for (q, dir_value) in [("x", "x"), ("Y", "Y"), ("odd", odd)] {
                for part in 0..2 {
                    // The second file of each partition drifts from the first (DuckDB's schema
                    // file, t/p=1/q=Y/f1.parquet): columns in another order, `a` widened to
                    // BIGINT, one more column. Its name is a glob that matches the first.
                    let name = if part == 0 { "f1.parquet" } else { "f[1].parquet" };
                    let drifted = "id % 7 AS extra, ts, amount, \"Mixed\", s, b, a::BIGINT AS a, flag, id";
                    let hostile = if part == 0 { FIRST_SCHEMA } else { drifted };
                    // The same rows without drift, for the truth (see [`FuzzLake::truth_sql`]).
                    let union = format!("{UNION_SCHEMA}, CAST(CASE WHEN part = 1 THEN id % 7 END AS BIGINT) AS extra");
                    for (tree, columns) in [("t", hostile), ("clean", FIRST_SCHEMA), ("union", union.as_str())] {
                        let name = if tree == "t" { name } else { ["f1.parquet", "f2.parquet"][part] };
                        let dir = format!("{r}/{tree}/p={p}/q={dir_value}");
                        std::fs::create_dir_all(&dir).expect("a partition directory can be created");
                        conn.execute_batch(&format!(
                            "COPY (SELECT {columns} FROM fact WHERE p = {p} AND q = '{q}' AND part = {part} ORDER BY id)
                             TO {} (FORMAT parquet)",
                            quote_literal(&format!("{dir}/{name}"))
                        ))?;
                    }
                }
            }
        }
        // Each drift-free tree again as one file with the partition columns stored, as DuckDB
        // reads them from the paths (see [`FuzzLake::flat_truth_sql`]).
        std::fs::create_dir_all(format!("{r}/flat")).expect("the flat directory can be created");
        for tree in ["clean", "union"] {
            conn.execute_batch(&format!(
                "COPY (SELECT * FROM read_parquet({}, hive_partitioning = true)) TO {} (FORMAT parquet)",
                quote_literal(&format!("{r}/{tree}/*/*/*.parquet")),
                quote_literal(&format!("{r}/flat/{tree}.parquet"))
            ))?;
        }
        Ok(FuzzLake { root: root.to_path_buf() })
    }

    /// The fact table scan, as queries write it: with the first file's schema, or with
    /// `union_by_name` (every file's columns, `a` as BIGINT, `extra`).
    pub fn fact(&self, union_by_name: bool) -> String {
        format!(
            "read_parquet({}, hive_partitioning = true{})",
            quote_literal(&format!("{}/t/*/*/*.parquet", self.root.display())),
            if union_by_name { ", union_by_name = true" } else { "" }
        )
    }

    /// `sql` as the truth runs it: over copies of the fact table without schema drift (one
    /// with the first file's schema, one with the union's) and without glob characters in file
    /// names, so that the answer does not depend on DuckDB's own handling of either. DuckDB 1.5.5
    /// gets a window with PARTITION BY wrong over `f1.parquet` and `f[1].parquet`: its
    /// optimizer turns the window into a self-join of two scans, and the copied scan globs the
    /// file name `f[1].parquet` again (reading `f1.parquet` twice).
    pub fn truth_sql(&self, sql: &str) -> String {
        let root = self.root.display().to_string();
        let union_scan = format!("{root}/t/*/*/*.parquet', hive_partitioning = true, union_by_name = true");
        sql.replace(&union_scan, &format!("{root}/union/*/*/*.parquet', hive_partitioning = true"))
            .replace(&format!("'{root}/t/"), &format!("'{root}/clean/"))
    }

    /// `sql` as the truth runs it when DuckDB plans [`FuzzLake::truth_sql`] with its
    /// partition-aware aggregate: over the same rows in one file each, partition columns
    /// stored, so that no hive partition exists. DuckDB 1.5.5 and 1.5.6 carry a FILTERed
    /// aggregate's state from one partition into the next in that operator, so their answer
    /// over the hive tree varies from run to run (`max(p) FILTER (WHERE p = 2) ... GROUP BY p`
    /// is 2 or NULL where p is 3); over one file DuckDB uses its hash aggregate.
    pub fn flat_truth_sql(&self, sql: &str) -> String {
        let root = self.root.display().to_string();
        let union_scan = format!("'{root}/t/*/*/*.parquet', hive_partitioning = true, union_by_name = true");
        let scan = format!("'{root}/t/*/*/*.parquet', hive_partitioning = true");
        sql.replace(&union_scan, &format!("'{root}/flat/union.parquet'"))
            .replace(&scan, &format!("'{root}/flat/clean.parquet'"))
            .replace(&format!("'{root}/t/"), &format!("'{root}/clean/"))
    }

    /// The dimension table scan.
    pub fn dim(&self) -> String {
        format!("read_parquet({})", quote_literal(&format!("{}/dim.parquet", self.root.display())))
    }
}
