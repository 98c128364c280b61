-- strategy: PartialAggregate
-- query:
SELECT z.borough, count(*) AS trips, sum(t.fare_amount) AS fares FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true) t JOIN read_parquet('lake/zones.parquet') z ON t.pickup_location_id = z.location_id GROUP BY z.borough ORDER BY z.borough
-- map:
SELECT z.borough AS __quack_k0, count(*) AS __quack_a0, sum(t.fare_amount) AS __quack_a1 FROM __quack_fan_scan__ t JOIN read_parquet('lake/zones.parquet') z ON t.pickup_location_id = z.location_id GROUP BY 1
-- reduce:
SELECT __quack_k0 AS borough, CAST(coalesce(sum(__quack_a0), 0) AS BIGINT) AS trips, sum(__quack_a1) AS fares FROM __quack_partials__ GROUP BY __quack_k0 ORDER BY __quack_k0
