//! quack's differential SQL fuzzer: random queries ([`generate`]) over a generated lake
//! ([`lake`]), each run through one DuckDB and through quack at several task packings
//! ([`judge`]); a mismatch is shrunk to a minimal query ([`shrink`]) that belongs in the
//! regression corpus (`fuzz/regressions.sql`). The bar is zero mismatches.

pub mod generate;
pub mod judge;
pub mod lake;
pub mod shrink;

use std::time::{Duration, Instant};

pub use generate::Generator;
pub use judge::{Judge, Verdict};
pub use lake::FuzzLake;

/// Totals of one run.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub queries: usize,
    pub same: usize,
    pub invalid: usize,
    pub refused: usize,
    /// quack failed as DuckDB fails over the same files ([`Verdict::SameError`]).
    pub same_error: usize,
    /// (shrunk query, what differed, original query)
    pub mismatches: Vec<(String, String, String)>,
    pub elapsed: Duration,
}

impl Report {
    /// Adds `other`'s totals to these.
    pub fn absorb(&mut self, other: Report) {
        self.queries += other.queries;
        self.same += other.same;
        self.invalid += other.invalid;
        self.refused += other.refused;
        self.same_error += other.same_error;
        self.elapsed += other.elapsed;
        self.mismatches.extend(other.mismatches);
    }

    /// One line of totals.
    pub fn summary(&self) -> String {
        let valid = self.queries - self.invalid;
        let per_thousand =
            if self.queries == 0 { 0.0 } else { self.elapsed.as_secs_f64() * 1000.0 / self.queries as f64 };
        format!(
            "{} queries ({} valid): {} same, {} DuckDB's own error, {} refused, {} mismatches; {:.1} s ({:.1} s per \
             1,000)",
            self.queries,
            valid,
            self.same,
            self.same_error,
            self.refused,
            self.mismatches.len(),
            self.elapsed.as_secs_f64(),
            per_thousand
        )
    }
}

/// Judges `sqls`, shrinking each mismatch (at most `shrink_budget` candidate runs per mismatch).
pub fn run(judge: &Judge, sqls: impl IntoIterator<Item = String>, shrink_budget: usize) -> Report {
    let started = Instant::now();
    let mut report = Report::default();
    for sql in sqls {
        report.queries += 1;
        match judge.judge(&sql) {
            Verdict::Same => report.same += 1,
            Verdict::Invalid => report.invalid += 1,
            Verdict::Refused(_) => report.refused += 1,
            Verdict::SameError(_) => report.same_error += 1,
            Verdict::Mismatch(why) => {
                let small = shrink::shrink(&sql, shrink_budget, |candidate| {
                    matches!(judge.judge(candidate), Verdict::Mismatch(_))
                });
                let why = match judge.judge(&small) {
                    Verdict::Mismatch(small_why) => small_why,
                    _ => why,
                };
                report.mismatches.push((small, why, sql));
            }
        }
    }
    report.elapsed = started.elapsed();
    report
}

/// The queries of a corpus file (`-- name: x` headers, `;`-terminated, `{lake}` for the lake).
pub fn corpus(text: &str, lake: &FuzzLake) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut name = None;
    let mut body = String::new();
    let flush = |name: &mut Option<String>, body: &mut String, out: &mut Vec<(String, String)>| {
        let sql = body.trim().trim_end_matches(';').trim().to_string();
        if let Some(name) = name.take() {
            if !sql.is_empty() {
                out.push((name, sql.replace("{lake}", &lake.root.display().to_string())));
            }
        }
        body.clear();
    };
    for line in text.lines() {
        if let Some(rest) = line.trim_start().strip_prefix("-- name:") {
            flush(&mut name, &mut body, &mut out);
            name = Some(rest.trim().to_string());
        } else if !line.trim_start().starts_with("--") {
            body.push_str(line);
            body.push('\n');
        }
    }
    flush(&mut name, &mut body, &mut out);
    out
}
