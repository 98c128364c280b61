-- strategy: ShipRows
-- query:
SELECT date, 'x' AS q FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true) ORDER BY q LIMIT 3
-- map:
SELECT date AS __quack_r0 FROM __quack_fan_scan__
-- reduce:
SELECT __quack_r0 AS "date", 'x' AS q FROM __quack_partials__ ORDER BY q LIMIT 3
