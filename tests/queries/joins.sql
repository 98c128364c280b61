-- Joins of two hive-partitioned tables (same format as ../shared/lakecheck/queries/visible.sql):
-- self-joins, and lineitem with orders written partitioned by year ({lake}/orders_by_year, which
-- scripts/test.sh adds to the lake). A small side is broadcast; with --broadcast-bytes 0 and
-- --buckets N both sides are co-partitioned on the join keys through the exchange.

-- name: j_lineitem_orders_inner
SELECT o_orderpriority, count(*) AS n, sum(l_extendedprice) AS s
FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) AS l
JOIN read_parquet('{lake}/orders_by_year/*/*.parquet', hive_partitioning = true) AS o ON l.l_orderkey = o.o_orderkey
GROUP BY ALL ORDER BY 1;

-- name: j_orders_first_using
SELECT oyear, year, count(*) AS n, sum(o_totalprice) AS t, max(l_shipdate) AS last_ship
FROM read_parquet('{lake}/orders_by_year/*/*.parquet', hive_partitioning = true) AS o
JOIN (SELECT 1) AS one ON true
JOIN read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) AS l ON o.o_orderkey = l.l_orderkey
GROUP BY ALL ORDER BY ALL;

-- name: j_full_outer_mismatched_keys
SELECT count(*) AS n, count(l_orderkey) AS lines, count(o_orderkey) AS orders, sum(o_totalprice) AS t,
       count(*) FILTER (WHERE l_orderkey IS NULL) AS orders_only
FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) AS l
FULL JOIN read_parquet('{lake}/orders_by_year/*/*.parquet', hive_partitioning = true) AS o
  ON l.l_orderkey = o.o_custkey;

-- name: j_right_join_where_on_partition_of_null_side
SELECT o_orderstatus, count(*) AS n, count(l.year) AS matched
FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) AS l
RIGHT JOIN read_parquet('{lake}/orders_by_year/*/*.parquet', hive_partitioning = true) AS o
  ON l.l_orderkey = o.o_custkey
WHERE l.year = 1995 OR l.year IS NULL
GROUP BY 1 ORDER BY 1;

-- name: j_left_join_pruned_side
SELECT l.month, count(*) AS n, count(o_orderkey) AS matched, avg(o_totalprice) AS avg_total
FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) AS l
LEFT JOIN read_parquet('{lake}/orders_by_year/*/*.parquet', hive_partitioning = true) AS o
  ON l.l_orderkey = o.o_orderkey AND l.l_suppkey = o.o_custkey % 1000
WHERE l.year = 1996
GROUP BY 1 ORDER BY 1;

-- name: j_distinct_and_median_over_join
SELECT l_shipmode, count(DISTINCT o_custkey) AS customers, median(o_totalprice) AS m
FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) AS l
JOIN read_parquet('{lake}/orders_by_year/*/*.parquet', hive_partitioning = true) AS o ON l_orderkey = o_orderkey
WHERE o.oyear >= 1997
GROUP BY 1 ORDER BY 1;

-- name: j_rows_with_dimension_and_top_n
SELECT l.l_orderkey, l.l_linenumber, o.o_orderdate, c.c_name
FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) AS l
JOIN read_parquet('{lake}/orders_by_year/*/*.parquet', hive_partitioning = true) AS o ON l.l_orderkey = o.o_orderkey
JOIN read_parquet('{lake}/tpch_customer.parquet') AS c ON c.c_custkey = o.o_custkey
WHERE l.l_quantity > 49
ORDER BY o.o_totalprice DESC, l.l_orderkey, l.l_linenumber LIMIT 25;

-- name: j_self_join_lineitem
SELECT a.l_shipmode, count(*) AS pairs, sum(b.l_quantity) AS q
FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) AS a
JOIN read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) AS b
  ON a.l_orderkey = b.l_orderkey AND a.l_linenumber < b.l_linenumber
GROUP BY 1 ORDER BY 1;

-- name: j_self_join_trips_two_keys_rows
SELECT t1.date, t1.pickup_at, t1.vendor_id, t2.fare_amount
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) t1
JOIN read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) t2
  USING (pickup_at, vendor_id)
WHERE t1.fare_amount > 60
ORDER BY ALL LIMIT 40;

-- name: j_self_join_mixed_integer_keys
SELECT count(*) AS n, sum(a.passenger_count) AS p
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) AS a
JOIN read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) AS b
  ON a.passenger_count = b.pickup_location_id AND a.pickup_at = b.pickup_at;

-- name: j_semi_and_anti
SELECT (SELECT count(*) FROM read_parquet('{lake}/orders_by_year/*/*.parquet', hive_partitioning = true) AS o
        SEMI JOIN read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) AS l
        ON o.o_orderkey = l.l_orderkey AND l.l_returnflag = 'R') AS returned,
       (SELECT count(*) FROM read_parquet('{lake}/orders_by_year/*/*.parquet', hive_partitioning = true) AS o
        ANTI JOIN read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) AS l
        ON o.o_orderkey = l.l_orderkey) AS no_lines;

-- name: j_cte_used_twice
WITH l AS (SELECT * FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true))
SELECT a.year, count(*) AS n
FROM l AS a JOIN l AS b ON a.l_orderkey = b.l_orderkey AND a.l_linenumber = b.l_linenumber + 1
GROUP BY 1 ORDER BY 1;

-- Stage 1 writes only the columns the map names, unless the map reads columns it does not name:
-- a whole row, a star, a NATURAL join. Each of these gives a different answer if it were pruned.

-- name: j_whole_row_of_a_side
SELECT min(o::VARCHAR) AS first_order, count(*) AS n
FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) AS l
JOIN read_parquet('{lake}/orders_by_year/*/*.parquet', hive_partitioning = true) AS o ON l.l_orderkey = o.o_orderkey
WHERE l.l_quantity > 49;

-- name: j_distinct_star_over_join
SELECT count(*) AS n FROM (
  SELECT DISTINCT * EXCLUDE (l_linenumber, l_quantity, l_extendedprice, l_discount, l_tax, l_comment)
  FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) AS l
  JOIN read_parquet('{lake}/orders_by_year/*/*.parquet', hive_partitioning = true) AS o ON l.l_orderkey = o.o_orderkey
  WHERE o.oyear = 1995);

-- name: j_natural_join_with_a_broadcast_side
SELECT count(*) AS n, sum(l.l_quantity) AS q
FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) AS l
JOIN read_parquet('{lake}/orders_by_year/*/*.parquet', hive_partitioning = true) AS o ON l.l_orderkey = o.o_orderkey
NATURAL JOIN (SELECT 1995 AS oyear) AS y;
