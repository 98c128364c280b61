-- strategy: ShipRows
-- query:
SELECT location_id FROM read_parquet('lake/zones.parquet') WHERE location_id IN (SELECT DISTINCT pickup_location_id FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true))
-- map:
SELECT DISTINCT pickup_location_id AS __quack_r0 FROM __quack_fan_scan__
-- reduce:
SELECT location_id FROM read_parquet('lake/zones.parquet') WHERE location_id IN (SELECT DISTINCT __quack_r0 AS "pickup_location_id" FROM __quack_partials__)
