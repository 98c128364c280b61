//! Golden tests of the rewriter: each case's map and reduce SQL is compared with
//! `coordinator/tests/golden/<name>.sql`. Run with `QUACK_UPDATE_GOLDEN=1` to rewrite the files
//! after an intended change, then review the diff.

use super::*;

const T: &str = "read_parquet('lake/trips/*/*.parquet', hive_partitioning = true)";

fn context() -> Context<'static> {
    let mut ctx = Context::with_bundled_aggregates();
    ctx.scan_columns = ["date", "fare_amount", "tip_amount", "pickup_location_id", "payment_type", "vendor_id"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    ctx
}

fn rewrite_sql(sql: &str) -> Result<Rewritten, RewriteError> {
    let query = single_query(parse(sql).map_err(|e| RewriteError::Parse { message: e.to_string() })?)?;
    rewrite(&query, &context(), true)
}

fn golden(name: &str, sql: &str) -> Rewritten {
    let rewritten = rewrite_sql(sql).unwrap_or_else(|e| panic!("{name}: {e}"));
    let actual = format!(
        "-- strategy: {:?}{}\n-- query:\n{sql}\n-- map:\n{}\n-- reduce:\n{}\n",
        rewritten.strategy,
        if rewritten.top_n_pushdown { " (top-N pushed down)" } else { "" },
        rewritten.map_sql(),
        rewritten.reduce_sql
    );
    let path = format!("{}/tests/golden/{name}.sql", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("QUACK_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(format!("{}/tests/golden", env!("CARGO_MANIFEST_DIR"))).unwrap();
        std::fs::write(&path, &actual).unwrap();
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e} (run with QUACK_UPDATE_GOLDEN=1)"));
    assert_eq!(actual, expected, "golden file {path} differs");
    // Whatever we generate must parse again.
    parse(&rewritten.map_sql()).unwrap();
    parse(&rewritten.reduce_sql).unwrap();
    rewritten
}

#[test]
fn count_star() {
    let r = golden("count_star", &format!("SELECT count(*) AS n FROM {T}"));
    assert_eq!(r.strategy, Strategy::PartialAggregate);
}

#[test]
fn group_by_with_order_and_limit() {
    golden(
        "top_pickup_locations",
        &format!(
            "SELECT pickup_location_id AS location_id, count(*) AS counts FROM {T} \
             WHERE date >= DATE '2024-03-01' GROUP BY 1 ORDER BY counts DESC, location_id LIMIT 10"
        ),
    );
}

#[test]
fn avg_min_max_and_arithmetic_over_aggregates() {
    golden(
        "avg_ratio",
        &format!(
            "SELECT payment_type, avg(fare_amount), min(fare_amount), max(fare_amount), \
             sum(tip_amount) / sum(fare_amount) AS tip_ratio FROM {T} GROUP BY payment_type ORDER BY payment_type"
        ),
    );
}

#[test]
fn variance_family_uses_a_window_for_the_group_mean() {
    golden(
        "variance",
        &format!("SELECT vendor_id, stddev_samp(fare_amount), var_pop(tip_amount) FROM {T} GROUP BY ALL"),
    );
}

#[test]
fn distinct_aggregates_become_map_keys() {
    golden(
        "count_distinct",
        &format!(
            "SELECT count(DISTINCT pickup_location_id) AS zones, count(DISTINCT pickup_location_id) FILTER (WHERE fare_amount > 10) AS pricey, count(*) \
             FROM {T} WHERE payment_type = 'cash'"
        ),
    );
}

#[test]
fn filter_clauses_and_having() {
    golden(
        "filter_having",
        &format!(
            "SELECT vendor_id, count(*) FILTER (WHERE tip_amount > 0) AS tipped, bool_or(fare_amount > 100) AS big \
             FROM {T} GROUP BY ALL HAVING count(*) > 1000 ORDER BY 1"
        ),
    );
}

#[test]
fn filtered_aggregates_of_partition_constants_are_found() {
    let keys = ["p".to_string(), "Q".to_string()];
    let finds = |sql: &str| {
        let query = single_query(parse(sql).unwrap()).unwrap();
        constant_filtered_aggregate(&query, &keys)
    };
    for sql in [
        "SELECT sum(p) FILTER (WHERE p = 2) FROM t GROUP BY p",
        "SELECT max(7) FILTER (WHERE a > 1) FROM t GROUP BY p",
        "SELECT count(*) FILTER (WHERE a > 1) FROM t GROUP BY p",
        "SELECT any_value(t.q || p::VARCHAR) FILTER (WHERE a > 1) FROM t GROUP BY q",
        "SELECT (SELECT min(p * 2) FILTER (WHERE q = 'x') FROM t) AS m",
    ] {
        assert!(finds(sql), "{sql}");
    }
    for sql in [
        "SELECT sum(a) FILTER (WHERE p = 2) FROM t GROUP BY p",
        "SELECT max(p + a) FILTER (WHERE p = 2) FROM t GROUP BY p",
        "SELECT sum(p) FROM t GROUP BY p",
    ] {
        assert!(!finds(sql), "{sql}");
    }
}

#[test]
fn window_over_aggregates() {
    golden(
        "window_over_aggregates",
        &format!("SELECT date, count(*) AS n, sum(count(*)) OVER (ORDER BY date) AS running FROM {T} GROUP BY date ORDER BY date"),
    );
}

#[test]
fn median_ships_rows() {
    let r = golden(
        "median",
        &format!("SELECT payment_type, median(fare_amount) FROM {T} WHERE date > DATE '2024-03-02' GROUP BY 1"),
    );
    assert_eq!(r.strategy, Strategy::ShipRows);
    assert!(r.note.unwrap().contains("median"));
}

#[test]
fn top_n_is_pushed_into_the_map() {
    let r = golden(
        "top_n",
        &format!("SELECT date AS d, fare_amount * 2 AS f FROM {T} ORDER BY f DESC, 1 LIMIT 5 OFFSET 2"),
    );
    assert!(r.top_n_pushdown);
}

#[test]
fn top_n_drops_literal_keys_which_the_map_would_read_as_ordinals() {
    // `ORDER BY 2` and `ORDER BY q` name the constant `1`; as the map's key it would be ordinal 1.
    let r = golden(
        "top_n_literal_key",
        &format!("SELECT date, 1 AS q, -1 AS m, fare_amount FROM {T} ORDER BY 2, q DESC, m, 4 LIMIT 3"),
    );
    assert!(r.top_n_pushdown);
    assert!(!r.map_sql().contains("ORDER BY 1"), "{}", r.map_sql());
    // With no key left, nothing is pushed down.
    let r = golden("top_n_only_literal_keys", &format!("SELECT date, 'x' AS q FROM {T} ORDER BY q LIMIT 3"));
    assert!(!r.top_n_pushdown);
}

#[test]
fn select_distinct_dedupes_in_the_map() {
    golden("select_distinct", &format!("SELECT DISTINCT payment_type FROM {T} ORDER BY 1"));
}

#[test]
fn derived_table_is_absorbed_into_the_map() {
    let r = golden(
        "du_root",
        "SELECT common_prefix, sum(size) AS size FROM ( \
             SELECT CASE WHEN strpos(key, '/') = 0 THEN key ELSE split_part(key, '/', 1) || '/' END AS common_prefix, size \
             FROM read_parquet('lake/inventory/*/*.parquet', hive_partitioning = true) WHERE dt = '2024-03-04-00-00') \
             GROUP BY common_prefix ORDER BY size DESC, common_prefix",
    );
    assert_eq!(r.strategy, Strategy::PartialAggregate);
}

#[test]
fn cte_over_the_scan_is_inlined_and_outer_query_reduces() {
    golden(
        "cte",
        &format!(
            "WITH zones AS (SELECT * FROM read_parquet('lake/zones.parquet')), \
             daily AS (SELECT date, count(*) AS n FROM {T} t JOIN zones z ON t.pickup_location_id = z.location_id GROUP BY date) \
             SELECT avg(n) AS avg_daily, max(n) FROM daily"
        ),
    );
}

#[test]
fn broadcast_join_stays_in_the_map() {
    golden(
        "broadcast_join",
        &format!(
            "SELECT z.borough, count(*) AS trips, sum(t.fare_amount) AS fares FROM {T} t \
             JOIN read_parquet('lake/zones.parquet') z ON t.pickup_location_id = z.location_id GROUP BY z.borough ORDER BY z.borough"
        ),
    );
}

#[test]
fn subquery_over_the_scan_is_split_inside_the_expression() {
    golden(
        "in_subquery",
        &format!("SELECT location_id FROM read_parquet('lake/zones.parquet') WHERE location_id IN (SELECT DISTINCT pickup_location_id FROM {T})"),
    );
}

#[test]
fn unsplittable_shapes_are_reported() {
    let left = rewrite_sql(&format!(
        "SELECT count(*) FROM read_parquet('z.parquet') z LEFT JOIN {T} t ON z.id = t.pickup_location_id"
    ));
    assert!(matches!(left, Err(RewriteError::Unsplittable { .. })), "{left:?}");
    let twice =
        rewrite_sql(&format!("WITH t AS (SELECT * FROM {T}) SELECT count(*) FROM t a JOIN t b ON a.date = b.date"));
    assert!(matches!(twice, Err(RewriteError::Unsplittable { .. })), "{twice:?}");
}

#[test]
fn non_queries_are_refused() {
    let err = single_query(parse("INSERT INTO t VALUES (1)").unwrap()).unwrap_err();
    assert_eq!(err.to_string(), "only a single SELECT query is supported, got INSERT");
    assert!(single_query(parse("SELECT 1; SELECT 2").unwrap()).is_err());
}
