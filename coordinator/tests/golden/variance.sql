-- strategy: PartialAggregate
-- query:
SELECT vendor_id, stddev_samp(fare_amount), var_pop(tip_amount) FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true) GROUP BY ALL
-- map:
SELECT vendor_id AS k0, count(fare_amount) AS a0_n, avg(fare_amount) AS a0_m, var_pop(fare_amount) AS a0_v, count(tip_amount) AS a1_n, avg(tip_amount) AS a1_m, var_pop(tip_amount) AS a1_v FROM __quack_fan_scan__ GROUP BY 1
-- reduce:
SELECT k0 AS vendor_id, sqrt(CASE WHEN sum(a0_n) > 1 THEN sum(a0_n * a0_v + a0_n * (a0_m - a0_g) * (a0_m - a0_g)) / (sum(a0_n) - 1) END), (CASE WHEN sum(a1_n) > 0 THEN sum(a1_n * a1_v + a1_n * (a1_m - a1_g) * (a1_m - a1_g)) / sum(a1_n) END) FROM (SELECT *, sum(a0_n * a0_m) OVER (PARTITION BY k0) / nullif(sum(a0_n) OVER (PARTITION BY k0), 0) AS a0_g, sum(a1_n * a1_m) OVER (PARTITION BY k0) / nullif(sum(a1_n) OVER (PARTITION BY k0), 0) AS a1_g FROM __quack_partials__) AS __quack_p GROUP BY k0
