-- strategy: ShipRows
-- query:
SELECT payment_type, median(fare_amount) FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true) WHERE date > DATE '2024-03-02' GROUP BY 1
-- map:
SELECT payment_type AS __quack_r0, fare_amount AS __quack_r1 FROM __quack_fan_scan__ WHERE date > DATE '2024-03-02'
-- reduce:
SELECT __quack_r0 AS "payment_type", median(__quack_r1) FROM __quack_partials__ GROUP BY 1
