//! quack's answers equal one DuckDB's over the same files, for every kind of query the planner
//! splits, across concurrency levels and task sizes (so partitions are packed and split).

mod common;

use common::{assert_same, lake};
use quack::config::SplitPolicy;
use quack::Config;

/// (name, SQL with `{t}` for the trips scan and `{lake}` for the lake path, ordered?)
const CASES: &[(&str, &str, bool)] = &[
    ("count_all", "SELECT count(*) AS n FROM {t}", false),
    ("per_day", "SELECT date, count(*) AS trips, sum(fare_amount) AS fares FROM {t} GROUP BY date ORDER BY date", true),
    ("top_locations", "SELECT pickup_location_id AS location_id, count(*) AS counts FROM {t} WHERE date >= DATE '2024-03-01' AND date < DATE '2024-03-11' GROUP BY 1 ORDER BY counts DESC, location_id LIMIT 10", true),
    ("avg_min_max", "SELECT payment_type, avg(fare_amount), min(trip_distance), max(trip_distance) FROM {t} GROUP BY payment_type ORDER BY payment_type", true),
    ("nulls", "SELECT count(tip_amount), count(*), sum(tip_amount), avg(tip_amount) FROM {t}", false),
    ("count_distinct", "SELECT count(DISTINCT pickup_location_id) AS zones FROM {t} WHERE payment_type = 'cash'", false),
    ("distinct_mixed", "SELECT vendor_id, count(DISTINCT pickup_location_id) AS z, sum(DISTINCT passenger_count) AS p, count(*) AS n, avg(fare_amount) AS f FROM {t} GROUP BY vendor_id ORDER BY 1", true),
    ("distinct_filter", "SELECT count(DISTINCT dropoff_location_id) FILTER (WHERE fare_amount > 30) AS pricey_zones, count(*) FILTER (WHERE tip_amount IS NULL) AS no_tip FROM {t}", false),
    ("having", "SELECT vendor_id, passenger_count, count(*) AS c FROM {t} GROUP BY ALL HAVING count(*) > 1000 ORDER BY 1, 2", true),
    ("topn_rows", "SELECT pickup_at, fare_amount, pickup_location_id FROM {t} WHERE date BETWEEN DATE '2024-03-18' AND DATE '2024-03-21' ORDER BY fare_amount DESC, pickup_at, pickup_location_id LIMIT 5", true),
    ("topn_offset_alias", "SELECT pickup_at AS p, fare_amount * 2 AS double_fare FROM {t} ORDER BY double_fare, p LIMIT 7 OFFSET 3", true),
    ("broadcast_join", "SELECT z.borough, count(*) AS trips, sum(t.fare_amount) AS fares FROM {t} t JOIN read_parquet('{lake}/zones.parquet') z ON t.pickup_location_id = z.location_id GROUP BY z.borough ORDER BY z.borough", true),
    ("all_pruned", "SELECT count(*) AS n, sum(fare_amount) AS s FROM {t} WHERE date = DATE '2025-01-01'", false),
    ("all_pruned_grouped", "SELECT date, count(*) AS n FROM {t} WHERE date > DATE '2030-01-01' GROUP BY date", false),
    ("spread", "SELECT stddev_samp(fare_amount), var_pop(trip_distance), stddev_pop(tip_amount), variance(passenger_count) FROM {t}", false),
    ("spread_grouped", "SELECT payment_type, stddev(fare_amount) AS sd, var_samp(tip_amount) FROM {t} GROUP BY 1 ORDER BY 1", true),
    ("ratio_of_sums", "SELECT payment_type, sum(tip_amount) / sum(fare_amount) AS tip_ratio, round(100.0 * count(*) / 60000, 2) AS pct FROM {t} GROUP BY payment_type ORDER BY tip_ratio DESC NULLS LAST, payment_type", true),
    ("bool_aggs", "SELECT vendor_id, bool_and(fare_amount > 3) AS all_over, bool_or(tip_amount > 11.5) AS any_big FROM {t} GROUP BY vendor_id ORDER BY vendor_id", true),
    ("group_by_expression", "SELECT date_trunc('week', pickup_at) AS week, count(*) AS n, max(fare_amount) FROM {t} GROUP BY date_trunc('week', pickup_at) ORDER BY week", true),
    ("group_by_alias_expr", "SELECT extract(hour FROM pickup_at) AS hour, count(*) AS n FROM {t} GROUP BY hour ORDER BY n DESC, hour LIMIT 5", true),
    ("select_distinct", "SELECT DISTINCT payment_type, vendor_id FROM {t} ORDER BY ALL", true),
    ("window_over_aggregates", "SELECT date, count(*) AS n, sum(count(*)) OVER (ORDER BY date) AS running, rank() OVER (ORDER BY count(*) DESC, date) AS r FROM {t} GROUP BY date ORDER BY date", true),
    ("median_quantile", "SELECT payment_type, median(fare_amount) AS m, quantile_cont(trip_distance, 0.9) AS q90, mode(CASE WHEN fare_amount > 40 THEN 'high' ELSE 'low' END) AS mo FROM {t} WHERE date < DATE '2024-03-20' GROUP BY 1 ORDER BY 1", true),
    ("ordered_string_agg", "SELECT vendor_id, string_agg(DISTINCT payment_type, ',' ORDER BY payment_type) AS kinds FROM {t} GROUP BY 1 ORDER BY 1", true),
    ("cte", "WITH daily AS (SELECT date, count(*) AS n, sum(fare_amount) AS f FROM {t} GROUP BY date) SELECT count(*) AS days, max(n) AS busiest, round(sum(f), 2) AS total FROM daily", false),
    ("cte_filter", "WITH cash AS (SELECT * FROM {t} WHERE payment_type = 'cash') SELECT date, count(*) AS n FROM cash WHERE date <= DATE '2024-03-03' GROUP BY ALL ORDER BY date", true),
    ("derived", "SELECT hour, count(*) AS n FROM (SELECT extract(hour FROM pickup_at) AS hour, fare_amount FROM {t} WHERE fare_amount > 20) GROUP BY hour ORDER BY hour", true),
    ("projection", "SELECT pickup_location_id, fare_amount FROM {t} WHERE date = DATE '2024-03-05' AND fare_amount > 50", false),
    ("star_top_n", "SELECT * FROM {t} ORDER BY fare_amount DESC, pickup_at LIMIT 3", true),
    ("limit_without_order", "SELECT count(*) AS n FROM (SELECT fare_amount FROM {t} LIMIT 100)", false),
    ("in_subquery", "SELECT count(*) AS n FROM read_parquet('{lake}/zones.parquet') WHERE location_id IN (SELECT pickup_location_id FROM {t} WHERE fare_amount > 52)", false),
    ("or_pruning", "SELECT date, count(*) AS n FROM {t} WHERE (date = DATE '2024-03-02' AND fare_amount > 10) OR date IN (DATE '2024-03-09', DATE '2024-04-01') GROUP BY date ORDER BY date", true),
    ("no_group_aggregate_expr", "SELECT sum(fare_amount) / count(*) AS mean_fare, min(pickup_at) AS first_trip, max(date) AS last_day FROM {t}", false),
    ("qualify", "SELECT date, pickup_location_id, count(*) AS n FROM {t} GROUP BY date, pickup_location_id QUALIFY row_number() OVER (PARTITION BY date ORDER BY count(*) DESC, pickup_location_id) = 1 ORDER BY date", true),
    ("du_root", "SELECT common_prefix, sum(size) AS size FROM (SELECT CASE WHEN strpos(key, '/') = 0 THEN key ELSE split_part(key, '/', 1) || '/' END AS common_prefix, size FROM read_parquet('{lake}/inventory/*/*.parquet', hive_partitioning = true) WHERE dt = '2024-03-04-00-00' AND (is_latest OR is_latest IS NULL) AND (NOT is_delete_marker OR is_delete_marker IS NULL)) GROUP BY common_prefix ORDER BY size DESC, common_prefix", true),
    ("no_partitioned_table", "SELECT borough, count(*) AS n FROM read_parquet('{lake}/zones.parquet') GROUP BY 1 ORDER BY 1", true),
    ("self_join_single", "SELECT count(*) AS n FROM {t} a JOIN (SELECT date, max(fare_amount) AS m FROM {t} GROUP BY date) b ON a.date = b.date AND a.fare_amount = b.m", false),
    ("window_partitioned_qualify", "SELECT pickup_location_id, fare_amount, pickup_at, row_number() OVER (PARTITION BY pickup_location_id ORDER BY fare_amount DESC, pickup_at, dropoff_location_id, trip_distance) AS rn FROM {t} WHERE fare_amount IS NOT NULL AND pickup_at IS NOT NULL QUALIFY rn <= 2 ORDER BY pickup_location_id, rn", true),
    ("window_nested_rank", "SELECT payment_type, count(*) AS firsts, sum(fare_amount) AS f FROM (SELECT payment_type, date, fare_amount, rank() OVER (PARTITION BY date, payment_type ORDER BY pickup_at, dropoff_location_id, fare_amount, trip_distance) AS r FROM {t}) WHERE r = 1 GROUP BY 1 ORDER BY 1", true),
    ("window_top_n_by_expression", "SELECT date, fare_amount, sum(fare_amount) OVER (PARTITION BY date ORDER BY pickup_at, dropoff_location_id, fare_amount, trip_distance ROWS UNBOUNDED PRECEDING) AS running FROM {t} WHERE pickup_at IS NOT NULL ORDER BY running - fare_amount DESC NULLS LAST, date LIMIT 6", true),
    ("sort_without_limit", "SELECT pickup_at, fare_amount, tip_amount FROM {t} WHERE date BETWEEN DATE '2024-03-04' AND DATE '2024-03-05' ORDER BY tip_amount DESC NULLS FIRST, fare_amount, pickup_at, dropoff_location_id, trip_distance, pickup_location_id, dropoff_location_id, payment_type, vendor_id", true),
    ("left_join_scan_on_right", "SELECT z.borough, count(t.fare_amount) AS n FROM read_parquet('{lake}/zones.parquet') z LEFT JOIN {t} t ON t.pickup_location_id = z.location_id AND t.date = DATE '2024-03-03' GROUP BY 1 ORDER BY 1", true),
];

fn sql(template: &str) -> String {
    let lake = lake();
    template.replace("{t}", &lake.trips()).replace("{lake}", &lake.path())
}

fn run_all(config: Config) {
    for (name, template, ordered) in CASES {
        assert_same(name, &sql(template), *ordered, config.clone());
    }
}

/// The defaults, as a user runs quack: in process, blocks that ship rows run as one query.
#[test]
fn every_case_matches_duckdb_with_default_packing() {
    run_all(Config::with_concurrency(2));
}

/// Every block the rewriter can split is split (`--split always`), one file per task.
#[test]
fn every_case_matches_duckdb_with_one_file_per_task() {
    let mut config = Config::with_concurrency(3);
    config.target_task_bytes = Some(1);
    config.split = SplitPolicy::Always;
    run_all(config);
}

#[test]
fn every_case_matches_duckdb_with_one_big_task() {
    let mut config = Config::with_concurrency(1);
    config.target_task_bytes = Some(u64::MAX / 2);
    config.split = SplitPolicy::Always;
    run_all(config);
}

/// Every case through the exchange: a reduce that groups is shuffled on its keys into 1, 3 or 16
/// buckets, one stage-2 task per bucket, one file per map task. The cases whose reduce groups
/// (holistic aggregates, DISTINCT aggregates, ship-rows blocks), computes partitioned windows or
/// sorts every row do get a second stage, and the exchange is empty once each query ends.
/// Faults are injected in both stages: attempts fail, and some run to the end (writing their
/// bucket files) and lose their answer, so that a retried attempt's files must never be read.
#[test]
fn every_case_matches_duckdb_through_the_exchange() {
    let exchange = tempfile::tempdir().unwrap();
    for buckets in [1, 3, 16] {
        let mut config = Config::with_concurrency(3);
        config.target_task_bytes = Some(1);
        config.split = SplitPolicy::Always;
        config.buckets = Some(buckets);
        config.exchange = Some(exchange.path().to_string_lossy().into_owned());
        config.inject_faults = Some("fail=0.1,lose=0.2,delay=0.05,delay_ms=5".parse().unwrap());
        config.retry.max_attempts = 12;
        config.retry.base_delay = std::time::Duration::from_millis(1);
        config.retry.max_delay = std::time::Duration::from_millis(20);
        run_all(config.clone());
        let quack = quack::Quack::embedded(config).unwrap();
        for name in [
            "median_quantile",
            "distinct_mixed",
            "ordered_string_agg",
            "having",
            "qualify",
            "window_partitioned_qualify",
            "window_nested_rank",
            "window_top_n_by_expression",
            "sort_without_limit",
        ] {
            let (_, template, _) = CASES.iter().find(|(n, _, _)| *n == name).unwrap();
            let plan = common::plan(&quack, &sql(template)).unwrap();
            assert!(plan.shuffle.is_some(), "{name} at {buckets} buckets has no second stage: {}", plan.explain());
            assert!(plan.explain().contains("stage 2: one task per bucket"), "{}", plan.explain());
        }
        let left: Vec<_> = std::fs::read_dir(exchange.path()).unwrap().collect();
        assert!(left.is_empty(), "exchange files were left behind: {left:?}");
    }
}

/// A self-join of the partitioned table, both sides co-partitioned on the join keys through the
/// exchange (nothing broadcast): more than one task per side in stage 1, four buckets in stage 2,
/// DuckDB's answer, and an empty exchange afterwards.
#[test]
fn a_self_join_is_co_partitioned_and_matches_duckdb() {
    let exchange = tempfile::tempdir().unwrap();
    let sql = sql("SELECT a.payment_type, count(*) AS pairs, sum(b.fare_amount) AS f FROM {t} a JOIN {t} b \
         ON a.pickup_location_id = b.dropoff_location_id AND a.date = b.date \
         WHERE a.fare_amount > 40 GROUP BY 1 ORDER BY 1");
    let mut config = Config::with_concurrency(3);
    config.target_task_bytes = Some(1);
    config.split = SplitPolicy::Always;
    config.buckets = Some(4);
    config.broadcast_bytes = 0;
    config.exchange = Some(exchange.path().to_string_lossy().into_owned());
    let plan = common::plan(&quack::Quack::embedded(config.clone()).unwrap(), &sql).unwrap();
    let join = plan.join.as_ref().unwrap_or_else(|| panic!("no co-partitioned join: {}", plan.explain()));
    assert!(join.side0_tasks > 1 && plan.tasks.len() - join.side0_tasks > 1, "{}", plan.explain());
    // Stage 1 writes the columns the map names (on either side), not the whole table.
    for side in &join.sides {
        let mut names: Vec<&str> = side.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        let named = ["date", "dropoff_location_id", "fare_amount", "payment_type", "pickup_location_id"];
        assert_eq!(names, named, "{}", plan.explain());
    }
    assert_same("self_join_co_partitioned", &sql, true, config);
    let left: Vec<_> = std::fs::read_dir(exchange.path()).unwrap().collect();
    assert!(left.is_empty(), "exchange files were left behind: {left:?}");
}
