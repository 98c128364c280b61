-- strategy: PartialAggregate
-- query:
SELECT pickup_location_id AS location_id, count(*) AS counts FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true) WHERE date >= DATE '2024-03-01' GROUP BY 1 ORDER BY counts DESC, location_id LIMIT 10
-- map:
SELECT pickup_location_id AS __quack_k0, count(*) AS __quack_a0 FROM __quack_fan_scan__ WHERE date >= DATE '2024-03-01' GROUP BY 1
-- reduce:
SELECT __quack_k0 AS location_id, CAST(coalesce(sum(__quack_a0), 0) AS BIGINT) AS counts FROM __quack_partials__ GROUP BY __quack_k0 ORDER BY counts DESC, location_id LIMIT 10
