-- strategy: PartialAggregate
-- query:
SELECT payment_type, avg(fare_amount), min(fare_amount), max(fare_amount), sum(tip_amount) / sum(fare_amount) AS tip_ratio FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true) GROUP BY payment_type ORDER BY payment_type
-- map:
SELECT payment_type AS __quack_k0, sum(fare_amount) AS __quack_a0_s, count(fare_amount) AS __quack_a0_c, min(fare_amount) AS __quack_a1, max(fare_amount) AS __quack_a2, sum(tip_amount) AS __quack_a3, sum(fare_amount) AS __quack_a4 FROM __quack_fan_scan__ GROUP BY 1
-- reduce:
SELECT __quack_k0 AS payment_type, (sum(__quack_a0_s) / nullif(sum(__quack_a0_c), 0)), min(__quack_a1), max(__quack_a2), sum(__quack_a3) / sum(__quack_a4) AS tip_ratio FROM __quack_partials__ GROUP BY __quack_k0 ORDER BY __quack_k0
