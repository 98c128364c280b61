-- Queries whose map ships more rows than a 1 MiB --max-gather-bytes lets the coordinator hold,
-- for tests/e2e/run.sh: through Lambda with an S3 exchange, each gets a second stage by itself
-- (grouped holistic aggregates, partitioned windows), so only stage 2's rows reach the coordinator.

-- name: gather_median_per_payment
SELECT payment_type, median(trip_distance) AS median_distance, quantile_cont(fare_amount, 0.9) AS p90
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
GROUP BY payment_type ORDER BY payment_type;

-- name: gather_top_fare_per_zone
SELECT pickup_location_id, fare_amount, pickup_at,
       row_number() OVER (PARTITION BY pickup_location_id ORDER BY fare_amount DESC, pickup_at, dropoff_at, trip_distance, tip_amount) AS rn
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
WHERE fare_amount IS NOT NULL AND pickup_at IS NOT NULL
QUALIFY rn = 1
ORDER BY pickup_location_id NULLS FIRST;
