-- Regression corpus of the differential fuzzer: every mismatch it found, shrunk, plus the
-- classes of issue 10. {lake} is the fuzz lake (fuzz/src/lake.rs). Each must match DuckDB.

-- name: alias_shadows_column_in_group_by
SELECT -a AS a, count(*) AS n FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) GROUP BY a ORDER BY 1, 2;

-- name: alias_in_having_prefers_alias
SELECT -a AS a, count(*) AS n FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) GROUP BY ALL HAVING a > -3 ORDER BY 1;

-- name: alias_equal_column_inside_order_expression
SELECT id, -b AS b FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) ORDER BY b + 0 NULLS LAST, id LIMIT 5;

-- name: alias_of_joined_column
SELECT max(t.s) AS name, count(*) AS n FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) t JOIN read_parquet('{lake}/dim.parquet') d ON t.a = d.a GROUP BY name ORDER BY 2, 1;

-- name: internal_names_as_aliases
SELECT s AS k0, count(*) AS __quack_a0, sum(b) AS a0_s FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) GROUP BY 1 HAVING a0_s > 0 ORDER BY k0 NULLS FIRST;

-- name: internal_name_r0
SELECT s AS r0, a AS k0 FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) ORDER BY k0 DESC NULLS LAST, id LIMIT 4;

-- name: star_with_ordinal_top_n
SELECT *, b * 2 AS b2 FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) ORDER BY 3 DESC NULLS LAST, 1 LIMIT 5;

-- name: star_replace_top_n
SELECT * REPLACE (-a AS a) FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) ORDER BY a NULLS LAST, id LIMIT 5;

-- name: columns_expression_top_n
SELECT COLUMNS('^(a|b)$') + 1 FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) ORDER BY 2 DESC NULLS LAST, 1 NULLS LAST LIMIT 5;

-- name: window_only_in_order_by
SELECT id, b FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) ORDER BY row_number() OVER (ORDER BY b DESC NULLS LAST, id) LIMIT 5;

-- name: aggregating_macros
SELECT q, geomean(abs(b) + 1) AS g, weighted_avg(b, abs(a) + 1) AS w FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) GROUP BY q ORDER BY q;

-- name: sample_rows
SELECT count(*) AS n FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) TABLESAMPLE 10 ROWS;

-- name: using_sample_rows
SELECT count(*) AS n FROM (SELECT * FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) USING SAMPLE 7 ROWS);

-- name: nested_with_shadows_cte
WITH c AS (SELECT * FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) WHERE p = 2) SELECT (WITH c AS (SELECT 1 AS a) SELECT count(*) FROM c) AS inner_n, count(*) AS n FROM c;

-- name: min_of_partition_column_one_file_per_task
-- DuckDB 1.5.5 fails internally planning min/max of a hive column over one file (statistics
-- propagation); quack keeps partial aggregates and gives every task two files or more.
SELECT count(*) AS c0, min(t.p) AS s FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) AS t HAVING c0 IS NOT NULL;

-- name: float_aggregate_under_grouping_sets
SELECT geomean(abs(10) + 1) AS a, p FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) GROUP BY GROUPING SETS ((p, s), ());

-- name: alias_equals_output_name_of_a_column_reference
-- Found by the long run (seed 7): `w AS s` and `t.s` both output `s`; ORDER BY s means the alias.
SELECT quantile_cont((w + t.amount), 0.25), count(DISTINCT d.w) AS x1, w AS s, t.s, t.q AS r0 FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) t JOIN read_parquet('{lake}/dim.parquet') d ON t.a = d.a WHERE t.p > 1 GROUP BY 3, r0, t.s ORDER BY s, 2, 3, 4, 5 DESC, 1 LIMIT 8 OFFSET 7;

-- name: window_partition_over_drifted_files
-- Found by the hostile lake (seed 5): DuckDB 1.5.5 itself is wrong here. Its optimizer turns the
-- window into a self-join of two scans, and the copied scan globs the file name `f[1].parquet`
-- again. The truth reads a copy without glob names; quack reads every file name literally.
SELECT t.id, t.ts, max(amount) OVER (PARTITION BY t.ts) AS win FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) AS t ORDER BY t.id LIMIT 7;

-- name: schema_of_the_first_file_for_every_task
-- Files whose columns are in another order, with `a` widened and one more column, read with
-- the first file's schema (and with the union's).
SELECT p, q, sum(a) AS s, typeof(sum(a)) AS t, count(*) AS n FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) GROUP BY ALL ORDER BY ALL;

-- name: schema_of_the_union_for_every_task
SELECT * FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true, union_by_name = true) WHERE id % 97 = 1 ORDER BY id;

-- name: hive_null_partitions_and_glob_names
SELECT q, count(*) AS n, min(id) AS first FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) WHERE q IS NULL OR q LIKE 'a%' GROUP BY q ORDER BY q NULLS FIRST;

-- name: types_arrow_cannot_carry
SELECT p, max(a::BIT) AS b, max(s::ENUM('a', 'B', 'c', 'd d', 'Ünï')) AS e, sum(a::HUGEINT * 30000000000000000000000000000000000) AS h, max(abs(a)::UHUGEINT * 30000000000000000000000000000000000000) AS u, max(('1' || repeat('7', 40 + coalesce(a, 0)))::BIGNUM) AS g, min((strftime(ts, '%H:%M:%S') || '+05:30')::TIMETZ) AS tz FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) GROUP BY p ORDER BY p;

-- name: cube_over_one_column_written_two_ways
-- Found by the long run (seed 11, 12 variants): DuckDB groups `t.p` and `p` as one key.
SELECT t.p, p FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) AS t GROUP BY CUBE (t.p, p);

-- name: rollup_over_an_ordinal_naming_a_qualified_column
SELECT p AS x1, t.p AS name FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) AS t GROUP BY ROLLUP (p, 2);

-- name: cube_over_expressions_that_bind_alike
SELECT date_trunc('day', ts), date_trunc('day', t.ts) FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) AS t GROUP BY CUBE (date_trunc('day', ts), date_trunc('day', t.ts), t.a);

-- name: group_by_all_with_only_constants_over_no_rows
-- Found by the long run (seed 11): GROUP BY ALL skips items without a column reference, so this
-- is one global group: one row even when every partition is pruned.
SELECT var_pop((id * 2)) AS r1, 'a' AS "Total" FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) AS t WHERE p > 7 GROUP BY ALL;

-- name: join_filter_into_a_drifted_union_by_name_scan
-- Found by the long run (seed 12): DuckDB 1.5.5 pushes the join's bloom filter into a
-- union_by_name scan of drifted files and fails ("Can't convert TableFilterType (BLOOM_FILTER)
-- from global to local indexes"), over these files as over quack's tasks; quack gives that
-- same error (the judge checks it against DuckDB over the same files).
SELECT length(t.s) AS a0_s FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true, union_by_name = true) t JOIN read_parquet('{lake}/dim.parquet') d ON t.a = d.a WHERE w BETWEEN 2 AND 7;

-- name: time_zone_day_keys_and_text
-- Time zones (ICU): the batch runs in America/St_Johns; day boundaries and TIMESTAMPTZ text
-- come from the tasks and must be the session's.
SELECT date_trunc('day', ts::TIMESTAMPTZ) AS d, strftime(min(ts::TIMESTAMPTZ), '%Y-%m-%d %H:%M %z') AS first, count(*) AS n FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) GROUP BY 1 ORDER BY 1;

-- name: join_filter_into_a_drifted_union_by_name_scan_of_some_files
-- Found by the long run (seed 15): the same DuckDB 1.5.5 limit ("Not implemented Error: Can't
-- convert TableFilterType (BLOOM_FILTER) from global to local indexes") met by one task's share
-- of the drifted files only, while DuckDB over all the files answers. A task's "Not implemented"
-- is engine_internal: the query reruns as one task, as one DuckDB runs it.
SELECT (strftime(t.ts, '%H:%M:%S') || '+05:30')::TIMETZ AS k0 FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true, union_by_name = true) t JOIN read_parquet('{lake}/dim.parquet') d ON t.a = d.a WHERE (abs(d.w) <> 5 AND (t.a % 3) = 3);

-- name: ordinal_of_a_constant_in_a_pushed_top_n
-- Found by the long run (seed 16): ORDER BY 2 names the constant `1 AS q`; the map's pushed
-- ORDER BY must not read that constant back as ordinal 1 (d.a), or each task keeps the wrong top 4.
SELECT d.a, 1 AS q, name FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) t INNER JOIN read_parquet('{lake}/dim.parquet') d ON t.a = d.a ORDER BY 2 ASC NULLS FIRST, t.id LIMIT 4;

-- name: alias_of_a_constant_in_a_pushed_top_n
SELECT d.a, 1 AS q, name FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) t INNER JOIN read_parquet('{lake}/dim.parquet') d ON t.a = d.a ORDER BY q, t.id LIMIT 4;

-- name: order_by_alias_named_like_a_group_key_column
-- Found by the long run (seed 17): at the top level of ORDER BY, DuckDB binds `s` to the alias
-- (the distinct count), not to the grouped column t.s; the reduce must not rewrite it as the key.
SELECT t.s AS d0, count(DISTINCT abs(t.b)) AS s FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) AS t GROUP BY ALL ORDER BY s, 1;

-- name: order_by_expression_and_having_bind_the_column_before_the_alias
-- Inside an ORDER BY expression, and in HAVING, DuckDB binds `a` to the column t.a, not to the
-- alias of the sum.
SELECT t.a AS k, sum(t.b) AS a FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) AS t GROUP BY t.a HAVING a > 1 ORDER BY -a;

-- name: filter_in_duckdbs_partitioned_aggregate
-- Found by the long run (seed 18): DuckDB 1.5.5 and 1.5.6 run GROUP BY of hive partition columns
-- with their partition-aware aggregate, which carries a FILTERed aggregate's state from one
-- partition into the next one a thread reads when the FILTER rejects the new one's rows:
-- sum(p) FILTER (WHERE p = 2) is 0 or NULL, max(p) FILTER (WHERE p = 2) is 2 or NULL, where p is
-- 3, from run to run. quack's tasks read one partition each, where DuckDB is exact; the truth
-- reads the same rows from one file (no hive partitions).
SELECT sum(p) FILTER (WHERE p = 2) AS s, max(p) FILTER (WHERE p = 2) AS m, p FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) GROUP BY p;

-- name: filter_of_constants_in_duckdbs_partitioned_aggregate
SELECT p, sum(1) FILTER (WHERE p = 2) AS one, max(7) FILTER (WHERE p = 2) AS seven, avg(p) FILTER (WHERE p = 2 AND a > 3) AS av, any_value(p) FILTER (WHERE p = 2) AS v, count(*) FILTER (WHERE p = 2) AS n FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true) GROUP BY p ORDER BY p;

-- name: filter_in_duckdbs_partitioned_aggregate_by_both_keys
SELECT p, q, sum(p) FILTER (WHERE q = 'x') AS s, min(p * 2) FILTER (WHERE q = 'x') AS m FROM read_parquet('{lake}/t/*/*/*.parquet', hive_partitioning = true, union_by_name = true) GROUP BY p, q;
