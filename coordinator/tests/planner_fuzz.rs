//! The planner never panics: random strings and mutations of real queries go through the parser,
//! the rewriter and the partition-predicate extraction (pure), and a sample through the whole
//! planner with DuckDB.

use proptest::prelude::*;
use quack::rewrite::{self, filter, scan, Context};

const SEEDS: &[&str] = &[
    "SELECT pickup_location_id AS l, count(*) AS c FROM read_parquet('l/t/*/*.parquet', hive_partitioning = true) t WHERE date >= DATE '2024-03-01' GROUP BY 1 ORDER BY c DESC LIMIT 10",
    "SELECT avg(x), stddev_samp(y), count(DISTINCT z) FILTER (WHERE w > 1) FROM read_parquet('a/*/*.parquet', hive_partitioning = true) GROUP BY ALL HAVING count(*) > 1",
    "WITH c AS (SELECT * FROM read_parquet('a/*/*.parquet', hive_partitioning = true) WHERE k = 1) SELECT median(v) FROM c",
    "SELECT common_prefix, sum(size) FROM (SELECT split_part(key, '/', 1) AS common_prefix, size FROM read_parquet('i/*/*.parquet', hive_partitioning = true) WHERE dt = 'x') GROUP BY 1",
    "SELECT DISTINCT a FROM read_parquet(['x/k=1/a.parquet'], hive_partitioning = true) t JOIN z USING (a) ORDER BY 1 LIMIT 3 OFFSET 1",
    "SELECT a, sum(count(*)) OVER (ORDER BY a) FROM read_parquet('x/*/*.parquet', hive_partitioning = true) GROUP BY a QUALIFY rank() OVER (ORDER BY a) < 3",
];

const TOKENS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "LIMIT",
    "(",
    ")",
    ",",
    "*",
    "count(*)",
    "sum(",
    "DISTINCT",
    "JOIN",
    "ON",
    "AND",
    "OR",
    "NOT",
    "WITH",
    "AS",
    "x",
    "'s'",
    "1",
    "read_parquet('d/*/*.parquet', hive_partitioning = true)",
    "OVER (",
    "FILTER (WHERE",
    "HAVING",
    "UNION ALL",
    "CASE WHEN",
    "END",
    "->",
    "::",
    "[",
    "]",
    "{",
    "}",
    ";",
    "--",
    "/*",
];

fn context() -> &'static Context<'static> {
    static CONTEXT: std::sync::OnceLock<Context<'static>> = std::sync::OnceLock::new();
    CONTEXT.get_or_init(Context::with_bundled_aggregates)
}

fn exercise(sql: &str) {
    let ctx = context();
    if let Ok(statements) = rewrite::parse(sql) {
        if let Ok(query) = rewrite::single_query(statements) {
            let _ = rewrite::rewrite(&query, ctx, true);
            let _ = rewrite::rewrite(&query, ctx, false);
            let mut placeholder = query.clone();
            let scans = scan::collect_fan_scans(&mut placeholder, true);
            let _ = filter::partition_predicate(
                &placeholder,
                &["date".into(), "k".into()],
                scans.first().and_then(|s| s.alias.as_deref()),
            );
        }
    }
}

fn mutate(seed: &str, cuts: &[(usize, usize, usize)]) -> String {
    let mut text: Vec<char> = seed.chars().collect();
    for &(at, len, token) in cuts {
        if text.is_empty() {
            break;
        }
        let at = at % text.len();
        let end = (at + len % 12).min(text.len());
        let insert: Vec<char> = TOKENS[token % TOKENS.len()].chars().collect();
        text.splice(at..end, insert);
    }
    text.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_strings_never_panic(s in "\\PC{0,200}") {
        exercise(&s);
    }

    #[test]
    fn token_soup_never_panics(tokens in proptest::collection::vec(0..TOKENS.len(), 0..40)) {
        let sql = tokens.iter().map(|&i| TOKENS[i]).collect::<Vec<_>>().join(" ");
        exercise(&sql);
    }

    #[test]
    fn mutated_queries_never_panic(seed in 0..SEEDS.len(), cuts in proptest::collection::vec((0usize..400, 0usize..12, 0usize..64), 1..6)) {
        exercise(&mutate(SEEDS[seed], &cuts));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    /// Through the whole planner (DuckDB binding included) on a real directory.
    #[test]
    fn the_full_planner_never_panics(seed in 0..SEEDS.len(), cuts in proptest::collection::vec((0usize..400, 0usize..12, 0usize..64), 0..4)) {
        let sql = mutate(SEEDS[seed], &cuts);
        let quack = quack::Quack::embedded(quack::Config::with_concurrency(1)).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _ = runtime.block_on(quack.plan(&sql));
    }
}
