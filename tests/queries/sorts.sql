-- Sorts without LIMIT (same format as ../shared/lakecheck/queries/visible.sql): every row is in
-- the answer, in order. With --split always --buckets N the sort is range-partitioned on its
-- first key through the exchange, each bucket sorted in stage 2, the buckets concatenated in
-- order (coordinator/src/rewrite/order.rs). Each ORDER BY orders the rows fully (no ties), so
-- that the order is one answer; the first keys have NULLs, ties and both directions.

-- name: s_fares_desc_nulls_default
SELECT pickup_at, fare_amount, tip_amount, pickup_location_id
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
WHERE date BETWEEN '2024-03-07' AND '2024-03-08' AND pickup_location_id < 40
ORDER BY tip_amount DESC, fare_amount, pickup_at, dropoff_at, trip_distance, pickup_location_id, passenger_count;

-- name: s_nulls_first_expression_key
SELECT payment_type, round(fare_amount + coalesce(tip_amount, 0), 2) AS total, pickup_at
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
WHERE date = '2024-03-15' AND pickup_location_id BETWEEN 100 AND 130
ORDER BY fare_amount + tip_amount NULLS FIRST, pickup_at, dropoff_at, fare_amount, trip_distance, pickup_location_id, dropoff_location_id, payment_type;

-- name: s_string_key_alias_and_ordinal
SELECT l_shipmode AS mode, l_orderkey, l_linenumber, l_extendedprice
FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true)
WHERE year = 1995 AND month = 6 AND l_quantity < 3
ORDER BY mode DESC, 2, 3;

-- name: s_partition_column_first_key
SELECT date, pickup_location_id, count_star
FROM (SELECT date, pickup_location_id, 1 AS count_star FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
      WHERE pickup_location_id = 7)
ORDER BY date DESC, pickup_location_id;

-- name: s_timestamp_key_with_star
SELECT *
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
WHERE pickup_location_id = 161 AND date >= '2024-03-25'
ORDER BY pickup_at NULLS LAST, dropoff_at, fare_amount, trip_distance, tip_amount, passenger_count, vendor_id, payment_type, dropoff_location_id;
