-- strategy: ShipRows (top-N pushed down)
-- query:
SELECT date AS d, fare_amount * 2 AS f FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true) ORDER BY f DESC, 1 LIMIT 5 OFFSET 2
-- map:
SELECT date AS __quack_r0, fare_amount AS __quack_r1 FROM __quack_fan_scan__ ORDER BY fare_amount * 2 DESC, date LIMIT 7
-- reduce:
SELECT __quack_r0 AS d, __quack_r1 * 2 AS f FROM __quack_partials__ ORDER BY f DESC, 1 LIMIT 5 OFFSET 2
