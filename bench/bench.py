#!/usr/bin/env python3
"""quack vs one DuckDB process: same lake, same queries, same run.

For each query: the median wall time of `quack query --format csv` (a whole process: planning,
fan-out to in-process workers, reduce, CSV output) and the median time of the same query in one
DuckDB process (Python duckdb 1.5.5, all cores, result fetched), after one warm-up run each so
both read from the page cache. Prints the ratio quack / DuckDB per query.
"""
import argparse, os, statistics, subprocess, sys, time

import duckdb

QUERIES = {
    "tpch_q1": """SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty, sum(l_extendedprice) AS sum_base_price,
  sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price, sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
  avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price, avg(l_discount) AS avg_disc, count(*) AS count_order
FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true)
WHERE l_shipdate <= CAST('1998-09-02' AS date) GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus""",
    "tpch_q6": """SELECT sum(l_extendedprice * l_discount) AS revenue
FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true)
WHERE l_shipdate >= CAST('1994-01-01' AS date) AND l_shipdate < CAST('1995-01-01' AS date)
  AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24""",
    "trips_per_day": """SELECT date, count(*) AS trips, sum(fare_amount) AS fares
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) GROUP BY date ORDER BY date""",
    "top_pickups_pruned": """SELECT pickup_location_id, count(*) AS trips
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true)
WHERE date >= DATE '2024-03-20' GROUP BY 1 ORDER BY trips DESC, 1 LIMIT 10""",
    "count_distinct": """SELECT l_shipmode, count(DISTINCT l_orderkey) AS orders
FROM read_parquet('{lake}/lineitem/*/*/*.parquet', hive_partitioning = true) GROUP BY 1 ORDER BY 1""",
    "median_ship_rows": """SELECT payment_type, median(fare_amount) AS m
FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) GROUP BY 1 ORDER BY 1""",
    "du_root": """SELECT common_prefix, sum(size) AS size FROM (
  SELECT CASE WHEN strpos(key, '/') = 0 THEN key ELSE split_part(key, '/', 1) || '/' END AS common_prefix, size
  FROM read_parquet('{lake}/inventory/*/*.parquet', hive_partitioning = true)
  WHERE dt = '2024-03-04-00-00' AND (is_latest OR is_latest IS NULL) AND (NOT is_delete_marker OR is_delete_marker IS NULL)
) GROUP BY common_prefix ORDER BY size DESC, common_prefix""",
}

# `quack du` against lakeview's SQL (DU_STMT / DU_DIFF_STMT, in DuckDB) over the same inventory.
LAKEVIEW_CP = "CASE len(string_split(key, '/')) WHEN 1 THEN split_part(key, '/', 1) ELSE split_part(key, '/', 1) || '/' END"
LAKEVIEW_WHERE = "(is_latest OR is_latest IS NULL) AND (NOT is_delete_marker OR is_delete_marker IS NULL)"
DU = {
    "du": (["--date", "2024-03-04-00-00"], f"""SELECT common_prefix, sum(size) AS size FROM (
  SELECT {LAKEVIEW_CP} AS common_prefix, size FROM read_parquet('{{lake}}/inventory/*/*.parquet', hive_partitioning = true)
  WHERE dt = '2024-03-04-00-00' AND {LAKEVIEW_WHERE}) GROUP BY common_prefix ORDER BY size DESC"""),
    "du_compare": (["--date", "2024-03-04-00-00", "--compare", "2024-03-01-00-00"], f"""WITH one_day AS (
  SELECT common_prefix, sum(size) AS total, dt FROM (
    SELECT {LAKEVIEW_CP} AS common_prefix, size, dt FROM read_parquet('{{lake}}/inventory/*/*.parquet', hive_partitioning = true)
    WHERE {LAKEVIEW_WHERE}) GROUP BY common_prefix, dt)
SELECT common_prefix, coalesce(d1.total, 0) AS size_left, coalesce(d2.total, 0) AS size_right,
  coalesce(d1.total, 0) - coalesce(d2.total, 0) AS diff
FROM (SELECT * FROM one_day WHERE dt = '2024-03-04-00-00') d1
FULL OUTER JOIN (SELECT * FROM one_day WHERE dt = '2024-03-01-00-00') d2 USING (common_prefix)
ORDER BY abs(diff) DESC, size_left DESC, size_right DESC"""),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quack", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--concurrency", type=int)
    ap.add_argument("--only")
    a = ap.parse_args()

    lake = os.path.join(a.cache, f"bench-scale{a.scale}")
    if not os.path.exists(os.path.join(lake, ".complete")):
        subprocess.run(["rm", "-rf", lake], check=True)
        print(f"generating the lake at {lake} (gen_lake.py --scale {a.scale}) ...", flush=True)
        subprocess.run([sys.executable, os.path.join(a.shared, "lakecheck", "gen_lake.py"), lake, "--scale", str(a.scale)], check=True)
        open(os.path.join(lake, ".complete"), "w").close()

    cmd = [a.quack, "query", "--format", "csv"]
    if a.concurrency:
        cmd += ["--concurrency", str(a.concurrency)]
    con = duckdb.connect()
    print(f"cores: {os.cpu_count()}, runs per query: {a.runs} (median), lake: {lake}")
    print(f"{'query':<26}{'quack s':>10}{'duckdb s':>10}{'ratio':>8}")
    ratios = []
    cases = [(name, cmd + [sql.replace("{lake}", lake)], sql.replace("{lake}", lake)) for name, sql in QUERIES.items()]
    du_cmd = [a.quack, "du", "--format", "csv", "--inventory", os.path.join(lake, "inventory")]
    if a.concurrency:
        du_cmd += ["--concurrency", str(a.concurrency)]
    objects = con.execute(f"SELECT count(*) FROM read_parquet('{lake}/inventory/dt=2024-03-04-00-00/*.parquet')").fetchone()[0]
    cases += [(f"{name} ({objects / 1e6:.1f}M obj)", du_cmd + extra, sql.replace("{lake}", lake)) for name, (extra, sql) in DU.items()]
    for name, argv, sql in cases:
        if a.only and not name.startswith(a.only):
            continue
        quack_times, duck_times = [], []
        for run in range(a.runs + 1):
            t0 = time.perf_counter()
            p = subprocess.run(argv, capture_output=True, text=True)
            t_quack = time.perf_counter() - t0
            if p.returncode != 0:
                sys.exit(f"{name}: quack failed: {p.stderr}")
            t0 = time.perf_counter()
            con.execute(sql).fetchall()
            t_duck = time.perf_counter() - t0
            if run > 0:  # the first run of each warms the page cache
                quack_times.append(t_quack)
                duck_times.append(t_duck)
        q, d = statistics.median(quack_times), statistics.median(duck_times)
        ratios.append(q / d)
        print(f"{name:<26}{q:>10.3f}{d:>10.3f}{q / d:>8.2f}", flush=True)
    if ratios:
        print(f"geometric mean ratio: {statistics.geometric_mean(ratios):.2f}")


if __name__ == "__main__":
    main()
