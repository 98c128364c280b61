-- strategy: PartialAggregate
-- query:
SELECT count(DISTINCT pickup_location_id) AS zones, count(DISTINCT pickup_location_id) FILTER (WHERE fare_amount > 10) AS pricey, count(*) FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true) WHERE payment_type = 'cash'
-- map:
SELECT pickup_location_id AS __quack_d0, bool_or(fare_amount > 10) AS __quack_a1_f, count(*) AS __quack_a2 FROM __quack_fan_scan__ WHERE payment_type = 'cash' GROUP BY 1
-- reduce:
SELECT CAST(count(DISTINCT __quack_d0) AS BIGINT) AS zones, CAST(count(DISTINCT __quack_d0) FILTER (WHERE __quack_a1_f) AS BIGINT) AS pricey, CAST(coalesce(sum(__quack_a2), 0) AS BIGINT) FROM __quack_partials__
