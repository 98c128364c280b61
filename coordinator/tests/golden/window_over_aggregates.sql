-- strategy: PartialAggregate
-- query:
SELECT date, count(*) AS n, sum(count(*)) OVER (ORDER BY date) AS running FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true) GROUP BY date ORDER BY date
-- map:
SELECT date AS k0, count(*) AS a0 FROM __quack_fan_scan__ GROUP BY 1
-- reduce:
SELECT k0 AS date, CAST(coalesce(sum(a0), 0) AS BIGINT) AS n, sum(CAST(coalesce(sum(a0), 0) AS BIGINT)) OVER (ORDER BY k0) AS running FROM __quack_partials__ GROUP BY k0 ORDER BY k0
