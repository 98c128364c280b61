-- quack's own differential corpus (same format as ../shared/lakecheck/queries/visible.sql):
-- more shapes of the kinds the planner must split exactly, over a gen_lake.py lake.

-- name: x_distinct_and_plain_mixed
SELECT vendor_id, count(DISTINCT pickup_location_id) AS zones, sum(DISTINCT passenger_count) AS pc,
       count(*) AS n, avg(fare_amount) AS fare
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
GROUP BY vendor_id ORDER BY vendor_id;

-- name: x_filter_clauses
SELECT payment_type, count(*) FILTER (WHERE tip_amount > 2) AS tipped,
       sum(fare_amount) FILTER (WHERE trip_distance > 5) AS long_fares,
       count(DISTINCT dropoff_location_id) FILTER (WHERE fare_amount > 30) AS pricey_zones
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
GROUP BY 1 ORDER BY 1;

-- name: x_variance_grouped
SELECT payment_type, stddev(fare_amount) AS sd, var_samp(tip_amount) AS v, stddev_pop(trip_distance) AS sdp
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
GROUP BY ALL ORDER BY ALL;

-- name: x_window_over_aggregates
SELECT date, count(*) AS n, sum(count(*)) OVER (ORDER BY date) AS running,
       rank() OVER (ORDER BY count(*) DESC, date) AS busiest
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
GROUP BY date ORDER BY date;

-- name: x_median_quantile_mode
SELECT payment_type, median(fare_amount) AS m, quantile_cont(trip_distance, 0.9) AS q90, mode(CASE WHEN fare_amount > 40 THEN 'high' ELSE 'low' END) AS mo
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
WHERE date < DATE '2024-03-15' GROUP BY 1 ORDER BY 1;

-- name: x_ordered_string_agg
SELECT vendor_id, string_agg(DISTINCT payment_type, ',' ORDER BY payment_type) AS kinds
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
GROUP BY 1 ORDER BY 1;

-- name: x_cte_then_aggregate
WITH daily AS (
  SELECT date, count(*) AS n, sum(fare_amount) AS f
  FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) GROUP BY date)
SELECT count(*) AS days, max(n) AS busiest, min(n) AS quietest, round(sum(f), 4) AS total FROM daily;

-- name: x_derived_projection
SELECT hour, count(*) AS n, round(avg(fare), 6) AS avg_fare FROM (
  SELECT extract(hour FROM pickup_at) AS hour, fare_amount AS fare
  FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) WHERE fare_amount > 20)
GROUP BY hour ORDER BY hour;

-- name: x_select_distinct
SELECT DISTINCT payment_type, vendor_id
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) ORDER BY ALL;

-- name: x_top_n_offset
SELECT pickup_at AS p, fare_amount * 2 AS double_fare, pickup_location_id
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
ORDER BY double_fare DESC, p, pickup_location_id LIMIT 7 OFFSET 3;

-- name: x_top_n_star
SELECT * FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
WHERE date >= DATE '2024-03-25' ORDER BY fare_amount DESC, pickup_at, pickup_location_id LIMIT 4;

-- name: x_in_subquery
SELECT borough, count(*) AS zones FROM read_parquet('{lake}/zones.parquet')
WHERE location_id IN (SELECT pickup_location_id FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) WHERE fare_amount > 60)
GROUP BY 1 ORDER BY 1;

-- name: x_or_pruning
SELECT date, count(*) AS n
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
WHERE (date = DATE '2024-03-02' AND fare_amount > 10) OR date IN (DATE '2024-03-09', DATE '2024-03-31')
GROUP BY date ORDER BY date;

-- name: x_grouped_all_pruned
SELECT date, count(*) AS n, sum(fare_amount) AS s
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
WHERE date > DATE '2030-01-01' GROUP BY date;

-- name: x_qualify
SELECT date, pickup_location_id, count(*) AS n
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
GROUP BY date, pickup_location_id
QUALIFY row_number() OVER (PARTITION BY date ORDER BY count(*) DESC, pickup_location_id) = 1
ORDER BY date;

-- name: x_lineitem_decimal_sums
SELECT year, l_returnflag, sum(l_quantity) AS q, sum(l_extendedprice * (1 - l_discount)) AS revenue,
       avg(l_discount) AS d, count(*) AS n
FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true)
WHERE year BETWEEN 1994 AND 1996 AND month IN (1, 6, 12)
GROUP BY ALL ORDER BY ALL;

-- name: x_lineitem_count_distinct
SELECT l_shipmode, count(DISTINCT l_orderkey) AS orders, count(DISTINCT l_suppkey) AS suppliers
FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true)
GROUP BY 1 ORDER BY 1;

-- name: x_lineitem_join_orders
SELECT o.o_orderpriority, count(*) AS late_lines
FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) l
JOIN read_parquet('{lake}/tpch_orders.parquet') o ON l.l_orderkey = o.o_orderkey
WHERE l.l_commitdate < l.l_receiptdate AND l.year = 1995
GROUP BY 1 ORDER BY 1;

-- name: x_inventory_storage_classes
SELECT dt, storage_class, count(*) AS objects, sum(size) AS bytes, max(last_modified_date) AS newest
FROM read_parquet('{lake}/inventory/*/*.parquet', hive_partitioning = true)
WHERE (is_latest OR is_latest IS NULL) AND (NOT is_delete_marker OR is_delete_marker IS NULL)
GROUP BY ALL ORDER BY ALL;

-- name: x_inventory_compare
WITH l AS (
  SELECT split_part(key, '/', 1) AS p, sum(size) AS s
  FROM read_parquet('{lake}/inventory/*/*.parquet', hive_partitioning = true)
  WHERE dt = '2024-03-04-00-00' GROUP BY 1),
r AS (SELECT split_part(key, '/', 1) AS p, sum(size) AS s FROM read_parquet('{lake}/inventory/*/*.parquet', hive_partitioning = true) WHERE dt = '2024-03-01-00-00' GROUP BY 1)
SELECT coalesce(l.p, r.p) AS prefix, coalesce(l.s, 0) - coalesce(r.s, 0) AS diff
FROM l FULL OUTER JOIN r ON l.p = r.p ORDER BY abs(diff) DESC, prefix;

-- name: x_no_partitioned_table
SELECT borough, count(*) AS zones FROM read_parquet('{lake}/zones.parquet') GROUP BY ALL ORDER BY 1;

-- name: x_duplicate_output_names
SELECT count(*), count(*), min(date) AS d, max(date) AS d
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true);

-- name: x_limit_in_subquery
SELECT count(*) AS n, count(DISTINCT payment_type) AS kinds FROM (
  SELECT payment_type FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
  ORDER BY pickup_at, pickup_location_id, fare_amount LIMIT 1000);

-- Shapes found while stress-testing the planner (all must stay exact; some run as one task by design).

-- name: s_count_x_and_star_grouped_by_two
SELECT vendor_id, payment_type, count(tip_amount), count(*), max(pickup_at), min(dropoff_at) FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) GROUP BY 1, 2 ORDER BY 1, 2;
-- name: s_case_inside_agg
SELECT sum(CASE WHEN payment_type = 'cash' THEN fare_amount ELSE 0 END) AS cash, sum(fare_amount) AS total, avg(CASE WHEN tip_amount > 0 THEN 1.0 ELSE 0.0 END) AS tip_rate FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true);
-- name: s_group_by_expression_not_selected
SELECT count(*) AS n FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) GROUP BY pickup_location_id % 7 ORDER BY n;
-- name: s_having_alias
SELECT pickup_location_id AS loc, count(*) AS c FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) GROUP BY loc HAVING c > 9000 ORDER BY loc;
-- name: s_order_by_agg_not_selected
SELECT payment_type FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) GROUP BY payment_type ORDER BY sum(fare_amount) DESC;
-- name: s_distinct_on_date_group
SELECT date, count(DISTINCT vendor_id) AS v, count(DISTINCT payment_type) AS p FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) WHERE date BETWEEN '2024-03-03' AND '2024-03-06' GROUP BY date ORDER BY date;
-- name: s_string_literal_date_compare
SELECT count(*) AS n FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) WHERE date = '2024-03-07';
-- name: s_date_function_prune
SELECT dayofweek(date) AS dow, count(*) AS n FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) WHERE dayofweek(date) IN (0, 6) GROUP BY 1 ORDER BY 1;
-- name: s_not_in_prune
SELECT count(*) AS n FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) WHERE date NOT IN (DATE '2024-03-01', DATE '2024-03-02');
-- name: s_is_null_hive
SELECT count(*) AS n FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) WHERE date IS NULL;
-- name: s_lineitem_year_month_prune
SELECT year, month, count(*) AS n, sum(l_quantity) AS q FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) WHERE year = 1995 AND month > 10 GROUP BY ALL ORDER BY ALL;
-- name: s_avg_decimal
SELECT l_linestatus, avg(l_extendedprice), avg(l_discount * 100) FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) GROUP BY 1 ORDER BY 1;
-- name: s_sum_int_type
SELECT sum(l_linenumber) AS s, sum(l_linenumber)::BIGINT AS s2, typeof(sum(l_linenumber)) AS t FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true);
-- name: s_count_distinct_global_only
SELECT count(DISTINCT l_partkey) FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) WHERE year = 1996;
-- name: s_nested_subquery_agg_of_agg
SELECT max(c) AS max_per_mode, min(c) AS min_per_mode FROM (SELECT l_shipmode, count(*) AS c FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) GROUP BY 1);
-- name: s_window_no_agg
SELECT pickup_location_id, fare_amount, row_number() OVER (PARTITION BY pickup_location_id ORDER BY fare_amount DESC, pickup_at) AS rn FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) WHERE date = '2024-03-10' QUALIFY rn <= 2 ORDER BY pickup_location_id, rn;
-- name: s_union_all_of_two_scans
SELECT 'a' AS k, count(*) AS n FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) WHERE date < '2024-03-05' UNION ALL SELECT 'b', count(*) FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) WHERE date >= '2024-03-28' ORDER BY k;
-- name: s_exists_broadcast
SELECT count(*) AS n FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) t WHERE EXISTS (SELECT 1 FROM read_parquet('{lake}/zones.parquet') z WHERE z.location_id = t.pickup_location_id AND z.borough = 'Queens');
-- name: s_left_join_broadcast
SELECT count(*) AS n, count(z.borough) AS matched FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) t LEFT JOIN read_parquet('{lake}/zones.parquet') z ON z.location_id = t.dropoff_location_id AND z.borough = 'Bronx';
-- name: s_limit_no_order_count
SELECT count(*) FROM (SELECT * FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) LIMIT 10);
-- name: s_offset_only
SELECT fare_amount, pickup_at FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) WHERE date = '2024-03-02' ORDER BY fare_amount, pickup_at, pickup_location_id OFFSET 30000;
-- name: s_approx_and_list
SELECT payment_type, list(DISTINCT vendor_id ORDER BY vendor_id) AS vs, arg_max(pickup_location_id, fare_amount) IS NOT NULL AS has FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) GROUP BY 1 ORDER BY 1;
-- name: s_struct_output
SELECT {'d': max(date), 'n': count(*)} AS s FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true);
-- name: s_count_star_cte_twice
WITH t AS (SELECT * FROM read_parquet('{lake}/zones.parquet')) SELECT (SELECT count(*) FROM t) AS z, count(*) AS n FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true);
-- name: s_bool_expr_group
SELECT tip_amount IS NULL AS no_tip, fare_amount > 20 AS big, count(*) FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) GROUP BY ALL ORDER BY ALL;
-- name: s_min_max_strings_dates
SELECT min(payment_type), max(payment_type), min(date), max(date), min(pickup_at) FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) WHERE fare_amount > 40;
-- name: s_inventory_prefix_depth2
SELECT split_part(key, '/', 1) || '/' || split_part(key, '/', 2) AS p, count(*) AS objects, sum(size) AS bytes FROM read_parquet('{lake}/inventory/*/*.parquet', hive_partitioning = true) WHERE dt = (SELECT max(dt) FROM read_parquet('{lake}/inventory/*/*.parquet', hive_partitioning = true)) GROUP BY 1 ORDER BY bytes DESC, p LIMIT 20;
-- name: s_from_first
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) SELECT count(*) AS n WHERE fare_amount > 10;
-- name: s_stddev_single_row_groups
SELECT date, stddev_samp(fare_amount) AS sd, var_pop(fare_amount) AS vp FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) GROUP BY date ORDER BY date;
-- name: s_columns_star
SELECT max(COLUMNS('.*_amount')) FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true);
-- name: s_exclude_star_topn
SELECT * EXCLUDE (pickup_at, dropoff_at) FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) WHERE date = '2024-03-11' ORDER BY fare_amount DESC, trip_distance DESC, pickup_location_id LIMIT 3;
