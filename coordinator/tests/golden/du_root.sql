-- strategy: PartialAggregate
-- query:
SELECT common_prefix, sum(size) AS size FROM ( SELECT CASE WHEN strpos(key, '/') = 0 THEN key ELSE split_part(key, '/', 1) || '/' END AS common_prefix, size FROM read_parquet('lake/inventory/*/*.parquet', hive_partitioning = true) WHERE dt = '2024-03-04-00-00') GROUP BY common_prefix ORDER BY size DESC, common_prefix
-- map:
SELECT common_prefix AS __quack_k0, sum(size) AS __quack_a0 FROM (SELECT CASE WHEN strpos(key, '/') = 0 THEN key ELSE split_part(key, '/', 1) || '/' END AS common_prefix, size FROM __quack_fan_scan__ WHERE dt = '2024-03-04-00-00') GROUP BY 1
-- reduce:
SELECT __quack_k0 AS common_prefix, sum(__quack_a0) AS size FROM __quack_partials__ GROUP BY __quack_k0 ORDER BY size DESC, __quack_k0
