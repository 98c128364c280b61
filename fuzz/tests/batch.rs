//! The fuzzer's CI batch: the regression corpus, then a fixed-seed batch of generated queries,
//! each through quack at two task packings and through DuckDB, in a time zone other than UTC.
//! Zero mismatches allowed.

use quack_fuzz::{corpus, run, FuzzLake, Generator, Judge};

const REGRESSIONS: &str = include_str!("../regressions.sql");

#[test]
fn regressions_and_a_fixed_seed_batch_match_duckdb() {
    // A zone with a half-hour offset and daylight saving time, for quack and the truth alike
    // (this binary has this one test, and no DuckDB has loaded ICU yet): TIMESTAMPTZ keys,
    // day boundaries and strftime must come out in it.
    std::env::set_var("TZ", "America/St_Johns");
    let dir = tempfile::tempdir().unwrap();
    let lake = FuzzLake::generate(&dir.path().join("lake"), 1).unwrap();
    let judge = Judge::new(2).unwrap().for_lake(&lake);

    let cases = corpus(REGRESSIONS, &lake);
    assert!(!cases.is_empty());
    let report = run(&judge, cases.iter().map(|(_, sql)| sql.clone()), 0);
    let named: Vec<String> = report
        .mismatches
        .iter()
        .map(|(sql, why, _)| {
            let name = cases.iter().find(|(_, s)| s == sql).map(|(n, _)| n.as_str()).unwrap_or("?");
            format!("{name}: {why}\n  {sql}")
        })
        .collect();
    assert!(named.is_empty(), "regressions:\n{}", named.join("\n"));
    assert_eq!(report.invalid, 0, "every regression query is valid DuckDB SQL");

    let queries: usize = std::env::var("QUACK_FUZZ_QUERIES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let mut generator = Generator::new(20261123, &lake);
    let report = run(&judge, (0..queries).map(|_| generator.query()), 200);
    eprintln!("fuzz batch: {}", report.summary());
    let lines: Vec<String> = report
        .mismatches
        .iter()
        .map(|(small, why, original)| format!("{why}\n  shrunk: {small}\n  original: {original}"))
        .collect();
    assert!(lines.is_empty(), "{} mismatches:\n{}", lines.len(), lines.join("\n"));
    assert!(report.invalid * 4 < report.queries, "most generated queries are valid: {}", report.summary());
}
