-- A short corpus for the throttling and spill runs of tests/e2e/run.sh: one query per strategy
-- (partial aggregates, ship rows, top-N, single task, broadcast join), in lakecheck's format.

-- name: e2e_per_day_partials
SELECT date, count(*) AS trips, sum(fare_amount) AS fares, avg(tip_amount) AS tips
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
GROUP BY date ORDER BY date;

-- name: e2e_median_ship_rows
SELECT payment_type, median(trip_distance) AS median_distance, quantile_cont(fare_amount, 0.9) AS p90
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
GROUP BY payment_type ORDER BY payment_type;

-- name: e2e_top_rows
SELECT date, pickup_location_id, fare_amount
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
ORDER BY fare_amount DESC, date, pickup_location_id LIMIT 25;

-- name: e2e_distinct_zones
SELECT count(DISTINCT pickup_location_id) AS zones, count(DISTINCT dropoff_location_id) AS dropoffs
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
WHERE date >= DATE '2024-03-03';

-- name: e2e_lineitem_by_flag
SELECT l_returnflag, l_linestatus, sum(l_quantity) AS qty, count(*) AS n
FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true)
GROUP BY ALL ORDER BY ALL;
