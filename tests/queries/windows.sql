-- Window functions over the partitioned tables (same format as ../shared/lakecheck/queries/visible.sql).
-- With --split always --buckets N, a block whose windows share PARTITION BY keys is shuffled on
-- them through the exchange and computed per bucket (coordinator/src/rewrite/window.rs); a window
-- without PARTITION BY runs in the single reduce. Every window orders its rows without ties, so
-- that row_number and the frame sums are one answer.

-- name: w_top2_fares_per_zone_qualify
SELECT pickup_location_id, fare_amount, pickup_at,
       row_number() OVER (PARTITION BY pickup_location_id ORDER BY fare_amount DESC, pickup_at, dropoff_at, trip_distance, tip_amount) AS rn
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
WHERE fare_amount IS NOT NULL AND pickup_at IS NOT NULL AND date >= '2024-03-20'
QUALIFY rn <= 2
ORDER BY pickup_location_id NULLS FIRST, rn;

-- name: w_running_total_per_day_top_n
SELECT date, pickup_at, fare_amount,
       sum(fare_amount) OVER (PARTITION BY date ORDER BY pickup_at, dropoff_at, fare_amount, trip_distance, tip_amount ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
WHERE pickup_at IS NOT NULL AND dropoff_at IS NOT NULL
ORDER BY running DESC NULLS LAST, date, pickup_at
LIMIT 7 OFFSET 3;

-- name: w_nested_first_order_per_customer
SELECT l_shipmode, count(*) AS n, sum(l_quantity) AS q
FROM (SELECT l_orderkey, l_linenumber, l_shipmode, l_quantity,
             rank() OVER (PARTITION BY l_orderkey ORDER BY l_linenumber) AS r
      FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true)) AS x
WHERE r = 1
GROUP BY l_shipmode
ORDER BY l_shipmode;

-- name: w_named_window_two_keys_distinct
SELECT DISTINCT year, month, max(l_extendedprice) OVER w AS top_price, count(*) OVER w AS lines
FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true)
WINDOW w AS (PARTITION BY year, month)
ORDER BY year, month;

-- name: w_common_key_of_two_windows_order_by_expression
SELECT payment_type, date, fare_amount,
       lag(fare_amount) OVER (PARTITION BY payment_type, date ORDER BY pickup_at, dropoff_at, fare_amount, trip_distance, tip_amount) AS prev,
       ntile(4) OVER (PARTITION BY payment_type ORDER BY fare_amount, pickup_at, dropoff_at, trip_distance, tip_amount) AS quartile
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
WHERE date = '2024-03-06' AND pickup_at IS NOT NULL
ORDER BY fare_amount - coalesce(prev, 0) DESC NULLS LAST, payment_type NULLS FIRST, pickup_at, fare_amount
LIMIT 20;

-- name: w_star_with_window_ordinal
SELECT *, percent_rank() OVER (PARTITION BY vendor_id ORDER BY trip_distance, pickup_at, dropoff_at, fare_amount, tip_amount, pickup_location_id) AS pr
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
WHERE date = '2024-03-02' AND pickup_at IS NOT NULL
ORDER BY 12 DESC, 2, 3 NULLS FIRST
LIMIT 15;

-- name: w_global_window_runs_in_the_reduce
SELECT date, n, sum(n) OVER (ORDER BY date) AS running
FROM (SELECT date, count(*) AS n FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) GROUP BY date)
ORDER BY date;

-- name: w_window_in_a_cte_used_by_an_aggregate
WITH ranked AS (
  SELECT o_custkey, o_totalprice, oyear,
         dense_rank() OVER (PARTITION BY o_custkey ORDER BY o_totalprice DESC, o_orderkey) AS dr
  FROM read_parquet('{lake}/orders_by_year/*/*.parquet', hive_partitioning = true)
)
SELECT oyear, count(*) AS best_orders, round(avg(o_totalprice), 2) AS avg_best
FROM ranked WHERE dr = 1 GROUP BY oyear ORDER BY oyear;

-- name: w_partition_by_expression_with_nulls
SELECT coalesce(payment_type, 'none') AS pt, hour(pickup_at) AS h,
       count(*) OVER (PARTITION BY payment_type, hour(pickup_at)) AS in_hour,
       first_value(fare_amount) OVER (PARTITION BY hour(pickup_at), payment_type ORDER BY fare_amount DESC NULLS LAST, pickup_at, dropoff_at, trip_distance, tip_amount) AS top_fare
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
WHERE date BETWEEN '2024-03-10' AND '2024-03-12'
QUALIFY row_number() OVER (PARTITION BY payment_type, hour(pickup_at) ORDER BY pickup_at, dropoff_at, fare_amount, trip_distance, tip_amount) = 1
ORDER BY pt, h NULLS FIRST;
