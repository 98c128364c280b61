//! Running one query through DuckDB (the truth) and through quack at several task packings, and
//! comparing the answers as lakecheck does: the header exactly; rows in order when the
//! outermost query orders them, else as multisets; numbers with a relative tolerance of 1e-9.

use std::path::Path;

use quack::{Config, Destination, Format, Quack};

/// What one query came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// quack gave DuckDB's answer at every packing.
    Same,
    /// DuckDB itself rejects the query (the generator's miss; not counted).
    Invalid,
    /// quack refused the query with a clear message (allowed; counted).
    Refused(String),
    /// quack failed with the error one DuckDB gives over the same (drifted, glob-named) files,
    /// although DuckDB answers over the drift-free copies the truth reads: DuckDB's answer.
    SameError(String),
    /// quack's answer differs, or quack failed where DuckDB answered.
    Mismatch(String),
}

/// The answers of one DuckDB and of quack at each packing.
pub struct Judge {
    truth: duckdb::Connection,
    /// How the truth's SQL differs from quack's ([`crate::FuzzLake::truth_sql`]).
    truth_sql: Box<dyn Fn(&str) -> String>,
    /// The truth's SQL where DuckDB would plan `truth_sql`'s answer with its partition-aware
    /// aggregate ([`crate::FuzzLake::flat_truth_sql`]).
    flat_truth_sql: Box<dyn Fn(&str) -> String>,
    packings: Vec<(String, Quack)>,
    runtime: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
}

impl Judge {
    /// A judge with quack at `packings` task packings: one file per task, the default packing,
    /// one task for everything, one file per task through a 3-bucket exchange. quack and the truth both load ICU
    /// (`QUACK_ICU_EXTENSION`, else where quack finds it) and work in the session's time zone.
    pub fn new(packings: usize) -> Result<Self, quack::Error> {
        let icu = std::env::var_os("QUACK_ICU_EXTENSION").filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
        let mut all = Vec::new();
        let mut per_file = Config::with_concurrency(3);
        per_file.target_task_bytes = Some(1);
        all.push(("one file per task".to_string(), per_file));
        all.push(("default packing".to_string(), Config::with_concurrency(2)));
        let mut single = Config::with_concurrency(1);
        single.target_task_bytes = Some(u64::MAX / 2);
        all.push(("one task".to_string(), single));
        // The second stage: grouped reduces and windows shuffled, sorts range-partitioned, two
        // tables co-partitioned, through a local exchange in 3 buckets.
        let mut staged = Config::with_concurrency(3);
        staged.target_task_bytes = Some(1);
        staged.buckets = Some(3);
        staged.broadcast_bytes = 0;
        all.push(("exchange, 3 buckets".to_string(), staged));
        let packings = all
            .into_iter()
            .take(packings.max(1))
            .map(|(name, mut config)| {
                config.engine_threads = 1;
                config.icu_extension = icu.clone();
                // The fuzzer judges the split path: in process, Auto would run ship-rows
                // blocks as one query.
                config.split = quack::config::SplitPolicy::Always;
                Quack::embedded(config).map(|q| (name, q))
            })
            .collect::<Result<_, _>>()?;
        let truth = duckdb::Connection::open_in_memory().map_err(|source| quack::Error::Engine { source })?;
        quack_lambda::extension::load(&truth, "icu", icu.as_deref())
            .map_err(|e| quack::Error::Config { message: e.to_string() })?;
        Ok(Judge {
            truth,
            truth_sql: Box::new(str::to_string),
            flat_truth_sql: Box::new(str::to_string),
            packings,
            runtime: tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio"),
            dir: tempfile::tempdir().expect("a temporary directory"),
        })
    }

    /// A judge whose truth reads `lake`'s drift-free copies.
    pub fn for_lake(mut self, lake: &crate::FuzzLake) -> Self {
        let (lake, flat) = (lake.clone(), lake.clone());
        self.truth_sql = Box::new(move |sql| lake.truth_sql(sql));
        self.flat_truth_sql = Box::new(move |sql| flat.flat_truth_sql(sql));
        self
    }

    /// Runs `sql` everywhere and compares.
    pub fn judge(&self, sql: &str) -> Verdict {
        let want = match self.truth_csv(sql) {
            Ok(rows) => rows,
            Err(_) => return Verdict::Invalid,
        };
        let ordered = outer_order_by(sql);
        for (name, quack) in &self.packings {
            let path = self.dir.path().join("quack.csv");
            let _ = std::fs::remove_file(&path);
            let run = self.runtime.block_on(quack.query_to(sql, Format::Csv, &Destination::File(path.clone())));
            match run {
                Ok(_) => {}
                Err(quack::Error::Unsupported { reason }) => return Verdict::Refused(reason),
                Err(e) => {
                    let message = e.to_string();
                    return match self.duckdb_error_on_the_lake(sql) {
                        Some(duckdb) if message.contains(&duckdb) => Verdict::SameError(duckdb),
                        _ => Verdict::Mismatch(format!("{name}: quack failed where DuckDB answered: {message}")),
                    };
                }
            }
            let got = read_csv(&path);
            if let Some(difference) = compare(&got, &want, ordered) {
                return Verdict::Mismatch(format!("{name}: {difference}"));
            }
        }
        Verdict::Same
    }

    /// The first line of DuckDB's error for `sql` over the lake quack reads (not the truth's
    /// copies), when it fails there.
    fn duckdb_error_on_the_lake(&self, sql: &str) -> Option<String> {
        let path = self.dir.path().join("lake.csv");
        let target = quack_lambda::quote::literal(&path.display().to_string());
        let error = self.truth.execute(&format!("COPY ({sql}) TO {target} (FORMAT csv, HEADER)"), []).err()?;
        let _ = std::fs::remove_file(&path);
        error.to_string().lines().next().map(str::to_string).filter(|line| !line.is_empty())
    }

    fn truth_csv(&self, sql: &str) -> Result<Vec<Vec<String>>, duckdb::Error> {
        let path = self.dir.path().join("truth.csv");
        let _ = std::fs::remove_file(&path);
        let target = quack_lambda::quote::literal(&path.display().to_string());
        let mut truth = (self.truth_sql)(sql);
        let explained = self.truth.prepare(&format!("EXPLAIN {truth}")).and_then(|mut statement| {
            statement.query_map([], |row| row.get::<_, String>(1))?.collect::<Result<Vec<String>, _>>()
        });
        if explained.is_ok_and(|plan| plan.iter().any(|part| part.contains("PARTITIONED_AGGREGATE"))) {
            truth = (self.flat_truth_sql)(sql);
        }
        self.truth.execute(&format!("COPY ({truth}) TO {target} (FORMAT csv, HEADER)"), [])?;
        Ok(read_csv(&path))
    }
}

/// True when the outermost query has ORDER BY (text outside parentheses), as lakecheck decides.
pub fn outer_order_by(sql: &str) -> bool {
    let mut depth = 0i32;
    let mut outer = String::with_capacity(sql.len());
    let mut quoted = false;
    for c in sql.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            _ => {}
        }
        outer.push(if depth == 0 && !quoted { c.to_ascii_lowercase() } else { ' ' });
    }
    outer.split_whitespace().collect::<Vec<_>>().windows(2).any(|w| w == ["order", "by"])
}

fn read_csv(path: &Path) -> Vec<Vec<String>> {
    parse_csv(&std::fs::read_to_string(path).unwrap_or_default())
}

/// A minimal RFC 4180 reader (quotes, doubled quotes, embedded newlines).
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut cell)),
            ('\n', false) => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => cell.push(c),
        }
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        rows.push(row);
    }
    rows
}

fn sort_key(row: &[String]) -> Vec<String> {
    row.iter()
        .map(|cell| match cell.parse::<f64>() {
            Ok(x) if cell.contains(['.', 'e', 'E']) => format!("{x:.8e}"),
            _ => cell.clone(),
        })
        .collect()
}

fn cell_eq(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => false,
    }
}

/// How `got` differs from `want` (header first in both), or `None` when they are the same.
pub fn compare(got: &[Vec<String>], want: &[Vec<String>], ordered: bool) -> Option<String> {
    let (Some(got_header), Some(want_header)) = (got.first(), want.first()) else {
        return (got.is_empty() != want.is_empty()).then(|| "one answer is empty".to_string());
    };
    if got_header != want_header {
        return Some(format!("header {got_header:?} != {want_header:?}"));
    }
    let (mut g, mut w) = (got[1..].to_vec(), want[1..].to_vec());
    if !ordered {
        // Sort on rounded numbers, so that floats merged in another order still line up.
        g.sort_by_cached_key(|row| sort_key(row));
        w.sort_by_cached_key(|row| sort_key(row));
    }
    if g.len() != w.len() {
        return Some(format!("{} rows != {} rows", g.len(), w.len()));
    }
    for (i, (x, y)) in g.iter().zip(&w).enumerate() {
        let same = x.len() == y.len() && x.iter().zip(y).all(|(a, b)| cell_eq(a, b));
        if !same {
            return Some(format!("row {i}: {x:?} != {y:?}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_order_by_ignores_subqueries_and_strings() {
        assert!(outer_order_by("SELECT a FROM t ORDER BY 1"));
        assert!(!outer_order_by("SELECT count(*) FROM (SELECT a FROM t ORDER BY 1 LIMIT 2)"));
        assert!(!outer_order_by("SELECT 'order by' FROM t"));
    }

    #[test]
    fn compares_with_tolerance_and_as_multisets() {
        let a = vec![vec!["x".to_string()], vec!["1.0000000000001".to_string()], vec!["2".to_string()]];
        let b = vec![vec!["x".to_string()], vec!["2".to_string()], vec!["1".to_string()]];
        assert_eq!(compare(&a, &b, false), None);
        assert!(compare(&a, &b, true).is_some());
    }
}
