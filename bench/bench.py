#!/usr/bin/env python3
"""quack vs one DuckDB process: same lake, same queries, same run.

For each query: the median wall time and peak memory of `quack query --format csv` (a whole
process: planning, fan-out to in-process workers, reduce, CSV output) and of the DuckDB CLI
(`duckdb -csv -c SQL`, from PyPI's duckdb-cli, all cores) on the same query, also a whole process,
after one warm-up run each so both read from the page cache. Both write CSV into a pipe that is
drained. Prints the ratios quack / DuckDB per query: time and peak resident memory (the process
tree's maximum RSS, from wait4).
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

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
    "window_top_per_day": """SELECT date, pickup_location_id, trips FROM (
  SELECT date, pickup_location_id, count(*) AS trips,
    row_number() OVER (PARTITION BY date ORDER BY count(*) DESC, pickup_location_id) AS rank
  FROM read_parquet('{lake}/trips/*/*.parquet', hive_partitioning = true) GROUP BY 1, 2)
WHERE rank <= 3 ORDER BY date, rank""",
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


def run(argv):
    """Runs argv with its stdout drained through a pipe; returns (seconds, peak RSS in MiB).
    Exits with the process's stderr if it fails."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err)
        while p.stdout.read(1 << 16):
            pass
        _, status, usage = os.wait4(p.pid, 0)  # the child's own rusage: its peak RSS
        seconds = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err.seek(0)
            sys.exit(f"{argv[0]} failed ({p.returncode}): {err.read().decode(errors='replace')}")
    return seconds, usage.ru_maxrss / 1024  # Linux reports KiB


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quack", required=True)
    ap.add_argument("--duckdb", required=True,
                    help="the DuckDB CLI binary (pip install duckdb-cli==1.5.6: <site-packages>/duckdb_cli/duckdb, not the Python launcher in bin/)")
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
    duck = [a.duckdb, "-csv", "-c"]
    version = subprocess.run([a.duckdb, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    print(f"cores: {os.cpu_count()}, runs per query: {a.runs} (median), lake: {lake}, DuckDB CLI {version}")
    print(f"{'query':<26}{'quack s':>9}{'duckdb s':>9}{'ratio':>7}{'quack MiB':>11}{'duckdb MiB':>11}{'ratio':>7}")
    ratios, memory = [], []
    cases = [(name, cmd + [sql.replace("{lake}", lake)], sql.replace("{lake}", lake)) for name, sql in QUERIES.items()]
    du_cmd = [a.quack, "du", "--format", "csv", "--inventory", os.path.join(lake, "inventory")]
    if a.concurrency:
        du_cmd += ["--concurrency", str(a.concurrency)]
    count = f"SELECT count(*) FROM read_parquet('{lake}/inventory/dt=2024-03-04-00-00/*.parquet')"
    objects = int(subprocess.run([a.duckdb, "-noheader", "-list", "-c", count], capture_output=True, text=True, check=True).stdout)
    cases += [(f"{name} ({objects / 1e6:.1f}M obj)", du_cmd + extra, sql.replace("{lake}", lake)) for name, (extra, sql) in DU.items()]
    for name, argv, sql in cases:
        if a.only and not name.startswith(a.only):
            continue
        quack, duckdb = [], []
        for i in range(a.runs + 1):
            q, d = run(argv), run(duck + [sql])
            if i > 0:  # the first run of each warms the page cache
                quack.append(q)
                duckdb.append(d)
        qt, dt = (statistics.median(t for t, _ in runs) for runs in (quack, duckdb))
        qm, dm = (statistics.median(m for _, m in runs) for runs in (quack, duckdb))
        ratios.append(qt / dt)
        memory.append(qm / dm)
        print(f"{name:<26}{qt:>9.3f}{dt:>9.3f}{qt / dt:>7.2f}{qm:>11.0f}{dm:>11.0f}{qm / dm:>7.2f}", flush=True)
    if ratios:
        print(f"time ratio: geometric mean {statistics.geometric_mean(ratios):.2f}, worst {max(ratios):.2f}; "
              f"memory ratio: geometric mean {statistics.geometric_mean(memory):.2f}, worst {max(memory):.2f}")


if __name__ == "__main__":
    main()
