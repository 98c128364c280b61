-- strategy: PartialAggregate
-- query:
WITH zones AS (SELECT * FROM read_parquet('lake/zones.parquet')), daily AS (SELECT date, count(*) AS n FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true) t JOIN zones z ON t.pickup_location_id = z.location_id GROUP BY date) SELECT avg(n) AS avg_daily, max(n) FROM daily
-- map:
WITH zones AS (SELECT * FROM read_parquet('lake/zones.parquet')) SELECT date AS __quack_k0, count(*) AS __quack_a0 FROM __quack_fan_scan__ t JOIN zones z ON t.pickup_location_id = z.location_id GROUP BY 1
-- reduce:
SELECT avg(n) AS avg_daily, max(n) FROM (SELECT __quack_k0 AS date, CAST(coalesce(sum(__quack_a0), 0) AS BIGINT) AS n FROM __quack_partials__ GROUP BY __quack_k0) daily
