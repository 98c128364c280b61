-- strategy: PartialAggregate
-- query:
SELECT vendor_id, stddev_samp(fare_amount), var_pop(tip_amount) FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true) GROUP BY ALL
-- map:
SELECT vendor_id AS __quack_k0, count(fare_amount) AS __quack_a0_n, avg(fare_amount) AS __quack_a0_m, var_pop(fare_amount) AS __quack_a0_v, count(tip_amount) AS __quack_a1_n, avg(tip_amount) AS __quack_a1_m, var_pop(tip_amount) AS __quack_a1_v FROM __quack_fan_scan__ GROUP BY 1
-- reduce:
SELECT __quack_k0 AS vendor_id, sqrt(CASE WHEN sum(__quack_a0_n) > 1 THEN sum(__quack_a0_n * __quack_a0_v + __quack_a0_n * (__quack_a0_m - __quack_a0_g) * (__quack_a0_m - __quack_a0_g)) / (sum(__quack_a0_n) - 1) END), (CASE WHEN sum(__quack_a1_n) > 0 THEN sum(__quack_a1_n * __quack_a1_v + __quack_a1_n * (__quack_a1_m - __quack_a1_g) * (__quack_a1_m - __quack_a1_g)) / sum(__quack_a1_n) END) FROM (SELECT *, sum(__quack_a0_n * __quack_a0_m) OVER (PARTITION BY __quack_k0) / nullif(sum(__quack_a0_n) OVER (PARTITION BY __quack_k0), 0) AS __quack_a0_g, sum(__quack_a1_n * __quack_a1_m) OVER (PARTITION BY __quack_k0) / nullif(sum(__quack_a1_n) OVER (PARTITION BY __quack_k0), 0) AS __quack_a1_g FROM __quack_partials__) AS __quack_p GROUP BY __quack_k0
