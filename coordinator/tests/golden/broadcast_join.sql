-- strategy: PartialAggregate
-- query:
SELECT z.borough, count(*) AS trips, sum(t.fare_amount) AS fares FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true) t JOIN read_parquet('lake/zones.parquet') z ON t.pickup_location_id = z.location_id GROUP BY z.borough ORDER BY z.borough
-- map:
SELECT z.borough AS k0, count(*) AS a0, sum(t.fare_amount) AS a1 FROM __quack_fan_scan__ t JOIN read_parquet('lake/zones.parquet') z ON t.pickup_location_id = z.location_id GROUP BY 1
-- reduce:
SELECT k0 AS borough, CAST(coalesce(sum(a0), 0) AS BIGINT) AS trips, sum(a1) AS fares FROM __quack_partials__ GROUP BY k0 ORDER BY k0
