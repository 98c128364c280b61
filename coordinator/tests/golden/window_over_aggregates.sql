-- strategy: PartialAggregate
-- query:
SELECT date, count(*) AS n, sum(count(*)) OVER (ORDER BY date) AS running FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true) GROUP BY date ORDER BY date
-- map:
SELECT date AS __quack_k0, count(*) AS __quack_a0 FROM __quack_fan_scan__ GROUP BY 1
-- reduce:
SELECT __quack_k0 AS date, CAST(coalesce(sum(__quack_a0), 0) AS BIGINT) AS n, sum(CAST(coalesce(sum(__quack_a0), 0) AS BIGINT)) OVER (ORDER BY __quack_k0) AS running FROM __quack_partials__ GROUP BY __quack_k0 ORDER BY __quack_k0
