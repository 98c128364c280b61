-- strategy: PartialAggregate
-- query:
SELECT count(*) AS n FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true)
-- map:
SELECT count(*) AS __quack_a0 FROM __quack_fan_scan__
-- reduce:
SELECT CAST(coalesce(sum(__quack_a0), 0) AS BIGINT) AS n FROM __quack_partials__
