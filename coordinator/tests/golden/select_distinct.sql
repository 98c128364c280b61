-- strategy: ShipRows
-- query:
SELECT DISTINCT payment_type FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true) ORDER BY 1
-- map:
SELECT DISTINCT payment_type AS __quack_r0 FROM __quack_fan_scan__
-- reduce:
SELECT DISTINCT __quack_r0 AS "payment_type" FROM __quack_partials__ ORDER BY 1
