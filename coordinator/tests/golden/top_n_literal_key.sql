-- strategy: ShipRows (top-N pushed down)
-- query:
SELECT date, 1 AS q, -1 AS m, fare_amount FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true) ORDER BY 2, q DESC, m, 4 LIMIT 3
-- map:
SELECT date AS __quack_r0, fare_amount AS __quack_r1 FROM __quack_fan_scan__ ORDER BY fare_amount LIMIT 3
-- reduce:
SELECT __quack_r0 AS "date", 1 AS q, -1 AS m, __quack_r1 AS "fare_amount" FROM __quack_partials__ ORDER BY 2, q DESC, m, 4 LIMIT 3
