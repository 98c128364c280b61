-- strategy: PartialAggregate
-- query:
SELECT payment_type, avg(fare_amount), min(fare_amount), max(fare_amount), sum(tip_amount) / sum(fare_amount) AS tip_ratio FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true) GROUP BY payment_type ORDER BY payment_type
-- map:
SELECT payment_type AS k0, sum(fare_amount) AS a0_s, count(fare_amount) AS a0_c, min(fare_amount) AS a1, max(fare_amount) AS a2, sum(tip_amount) AS a3, sum(fare_amount) AS a4 FROM __quack_fan_scan__ GROUP BY 1
-- reduce:
SELECT k0 AS payment_type, (sum(a0_s) / nullif(sum(a0_c), 0)), min(a1), max(a2), sum(a3) / sum(a4) AS tip_ratio FROM __quack_partials__ GROUP BY k0 ORDER BY k0
