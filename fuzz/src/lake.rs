//! The fuzz lake: a small hive-partitioned fact table written by DuckDB, deterministic for a
//! seed, shaped to provoke the rewriter: several files per partition, NULL-heavy columns, a
//! quoted mixed-case column, partition columns, and a dimension table that shares column names
//! with the fact table (so aliases and joins shadow each other).

use std::path::{Path, PathBuf};

use quack::rewrite::scan::quote_literal;

/// A generated lake on disk.
#[derive(Debug)]
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
                    CASE WHEN i % 3 = 0 THEN 'x' ELSE 'Y' END AS q,
                    (i // 4) % 2 AS part
             FROM range(1, 961) r(i);
             CREATE TABLE dim AS
             SELECT i AS a, i * 100 AS id, 'zone ' || i AS name, i * 1.5 AS w FROM range(0, 12) r(i);
             COPY dim TO {} (FORMAT parquet);",
            (seed % 1000) as f64 / 1000.0,
            quote_literal(&format!("{r}/dim.parquet"))
        ))?;
        for p in 1..=4 {
            for q in ["x", "Y"] {
                let dir = format!("{r}/t/p={p}/q={q}");
                std::fs::create_dir_all(&dir).expect("a partition directory can be created");
                for part in 0..2 {
                    conn.execute_batch(&format!(
                        "COPY (SELECT * EXCLUDE (p, q, part) FROM fact WHERE p = {p} AND q = '{q}' AND part = {part} ORDER BY id)
                         TO {} (FORMAT parquet)",
                        quote_literal(&format!("{dir}/part-{part}.parquet"))
                    ))?;
                }
            }
        }
        Ok(FuzzLake { root: root.to_path_buf() })
    }

    /// The fact table scan, as queries write it.
    pub fn fact(&self) -> String {
        format!(
            "read_parquet({}, hive_partitioning = true)",
            quote_literal(&format!("{}/t/*/*/*.parquet", self.root.display()))
        )
    }

    /// The dimension table scan.
    pub fn dim(&self) -> String {
        format!("read_parquet({})", quote_literal(&format!("{}/dim.parquet", self.root.display())))
    }
}
