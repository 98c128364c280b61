-- strategy: PartialAggregate
-- query:
SELECT vendor_id, count(*) FILTER (WHERE tip_amount > 0) AS tipped, bool_or(fare_amount > 100) AS big FROM read_parquet('lake/trips/*/*.parquet', hive_partitioning = true) GROUP BY ALL HAVING count(*) > 1000 ORDER BY 1
-- map:
SELECT vendor_id AS __quack_k0, count(*) FILTER (WHERE tip_amount > 0) AS __quack_a0, bool_or(fare_amount > 100) AS __quack_a1, count(*) AS __quack_a2 FROM __quack_fan_scan__ GROUP BY 1
-- reduce:
SELECT __quack_k0 AS vendor_id, CAST(coalesce(sum(__quack_a0), 0) AS BIGINT) AS tipped, bool_or(__quack_a1) AS big FROM __quack_partials__ GROUP BY __quack_k0 HAVING CAST(coalesce(sum(__quack_a2), 0) AS BIGINT) > 1000 ORDER BY 1
