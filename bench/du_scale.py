#!/usr/bin/env python3
"""quack du at scale against one DuckDB process over the same S3 Inventory reports.

Writes (once, under --work) an AWS-layout inventory of a bucket of --objects objects: --reports
daily reports (the bucket grows ~2% a day), each of --files Parquet data files with a manifest
and a symlink.txt, as S3 Inventory delivers them. Keys spread over 40 top-level prefixes and 25
below each; sizes are log-uniform from 0 to ~4 GiB, with multipart ETags over 16 MiB; one object
in 97 is a copy of the one before (same ETag and size); ages span ~3 years.

Then, for each view: the median wall time and peak memory of `quack du` (a whole process:
reading the manifests, planning, fan-out to in-process workers, reduce, CSV out) and of the
DuckDB CLI running the view's SQL over the same data files (a whole process, all cores):
- du: size, objects and newest modification per top-level prefix of the newest report;
- by age: the same per prefix and age bucket, with each group's share;
- duplicates: groups of the same ETag and size, with the bytes a cleanup saves;
- history: size and objects per prefix and report date over every report.
The first run of each warms the page cache. Equality of the answers is what tests/du checks;
this measures time.

    python3 bench/du_scale.py --quack target/release/quack --duckdb duckdb --work ~/.cache/quack
"""
import argparse, hashlib, json, os, statistics, subprocess, sys

sys.path.insert(0, os.path.dirname(__file__))
from bench import run  # noqa: E402  (wall time and peak RSS of a whole process)

PREFIXES, SUBS = 40, 25
AGES = """CASE WHEN last_modified_date IS NULL THEN 'unknown'
  WHEN date_diff('second', last_modified_date, TIMESTAMP '{day}') < 86400 THEN '< 1 day'
  WHEN date_diff('second', last_modified_date, TIMESTAMP '{day}') < 7 * 86400 THEN '1-7 days'
  WHEN date_diff('second', last_modified_date, TIMESTAMP '{day}') < 30 * 86400 THEN '7-30 days'
  WHEN date_diff('second', last_modified_date, TIMESTAMP '{day}') < 90 * 86400 THEN '30-90 days'
  WHEN date_diff('second', last_modified_date, TIMESTAMP '{day}') < 365 * 86400 THEN '90-365 days'
  ELSE '> 1 year' END"""
CP = "CASE WHEN strpos(key, '/') = 0 THEN key ELSE split_part(key, '/', 1) || '/' END"


def generate(duckdb, root, objects, reports, files):
    """The AWS layout under root (<config-id> folder): data/, hive/dt=.../symlink.txt, manifests."""
    os.makedirs(os.path.join(root, "data"), exist_ok=True)
    dates = [f"2024-03-{d + 1:02d}-00-00" for d in range(reports)]
    for r, date in enumerate(dates):
        n = int(objects * (1 - 0.02 * (reports - 1 - r)))
        names = []
        for f in range(files):
            lo, hi = n * f // files, n * (f + 1) // files
            name = f"{date[:10]}-{f}.parquet"
            names.append(name)
            # i: the object's number; c: the object whose content it has (one in 97 copies i - 1).
            sql = f"""SET threads = 2; COPY (
  WITH o AS (SELECT i, CASE WHEN i % 97 = 1 THEN i - 1 ELSE i END AS c FROM range({lo}, {hi}) t(i)),
  s AS (SELECT i, c, CAST(floor(exp((hash(c) % 2200) / 100.0)) AS BIGINT) - 1 AS size FROM o)
  SELECT 'src-bucket' AS bucket,
    'p' || (hash(i, 1) % {PREFIXES}) || '/s' || (hash(i, 2) % {SUBS}) || '/object-' || i || '.' ||
      ['parquet', 'json', 'csv.gz', 'log', 'bin'][1 + CAST(hash(i, 3) % 5 AS BIGINT)] AS key,
    size,
    TIMESTAMP '{date[:10]}' - to_seconds(CAST(hash(i, 4) % (1100 * 86400) AS BIGINT)) AS last_modified_date,
    ['STANDARD', 'STANDARD_IA', 'GLACIER', 'INTELLIGENT_TIERING'][1 + CAST(hash(i, 5) % 4 AS BIGINT)] AS storage_class,
    size > 16 * 1024 * 1024 AS is_multipart_uploaded,
    md5(c::VARCHAR) || CASE WHEN size > 16 * 1024 * 1024 THEN '-' || (size // (8 * 1024 * 1024) + 1) ELSE '' END AS e_tag
  FROM s) TO '{root}/data/{name}' (FORMAT parquet);"""
            subprocess.run([duckdb, "-c", sql], check=True, capture_output=True)
        hive = os.path.join(root, "hive", f"dt={date}")
        os.makedirs(hive, exist_ok=True)
        config = os.path.basename(root)
        with open(os.path.join(hive, "symlink.txt"), "w") as out:
            out.writelines(f"s3://inventory-dest/inv/src-bucket/{config}/data/{name}\n" for name in names)
        manifest_dir = os.path.join(root, f"{date[:10]}T{date[11:]}Z")
        os.makedirs(manifest_dir, exist_ok=True)
        manifest = json.dumps({
            "sourceBucket": "src-bucket", "destinationBucket": "arn:aws:s3:::inventory-dest", "fileFormat": "Parquet",
            "fileSchema": "message s3.inventory { required binary bucket (STRING); required binary key (STRING); ... }",
            "files": [{"key": f"inv/src-bucket/{config}/data/{name}", "size": os.path.getsize(os.path.join(root, "data", name)),
                       "MD5checksum": hashlib.md5(open(os.path.join(root, "data", name), "rb").read()).hexdigest()}
                      for name in names]})
        open(os.path.join(manifest_dir, "manifest.json"), "w").write(manifest)
        open(os.path.join(manifest_dir, "manifest.checksum"), "w").write(hashlib.md5(manifest.encode()).hexdigest())
        print(f"  report {date}: {n:,} objects in {files} files", flush=True)
    return dates


def views(root, dates):
    """(name, quack du arguments, the DuckDB SQL of the same view)."""
    newest = dates[-1]
    one = f"read_parquet('{root}/data/{newest[:10]}-*.parquet')"
    every = f"read_parquet('{root}/data/*.parquet', filename = true)"
    day = f"{newest[:10]} 00:00:00"
    return [
        ("du", [], f"""SELECT {CP} AS common_prefix, sum(size) AS size, count(*) AS objects, max(last_modified_date) AS last_modified
FROM {one} GROUP BY 1 ORDER BY size DESC, common_prefix"""),
        ("du --by age", ["--by", "age"], f"""SELECT common_prefix, age, sum(size) AS size, count(*) AS objects,
  max(last_modified_date) AS last_modified, sum(size) / sum(sum(size)) OVER () AS share
FROM (SELECT {CP} AS common_prefix, {AGES.format(day=day)} AS age, size, last_modified_date FROM {one})
GROUP BY 1, 2 ORDER BY size DESC, common_prefix, age"""),
        ("du --duplicates", ["--duplicates"], f"""SELECT e_tag, size, count(*) AS copies, (count(*) - 1) * size AS reclaimable,
  min(key) AS first_key, max(key) AS last_key
FROM {one} WHERE e_tag IS NOT NULL GROUP BY e_tag, size HAVING count(*) > 1
ORDER BY reclaimable DESC, e_tag"""),
        ("du --history", ["--history"], f"""SELECT substr(parse_filename(filename), 1, 10) AS date, {CP} AS common_prefix,
  sum(size) AS size, count(*) AS objects
FROM {every} GROUP BY 1, 2 ORDER BY date, size DESC, common_prefix"""),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quack", required=True)
    ap.add_argument("--duckdb", required=True,
                    help="the DuckDB CLI binary (pip install duckdb-cli==1.5.6: <site-packages>/duckdb_cli/duckdb, not the Python launcher in bin/)")
    ap.add_argument("--work", required=True, help="where the inventory is written (kept for the next run)")
    ap.add_argument("--objects", type=int, default=20_000_000)
    ap.add_argument("--reports", type=int, default=4)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only")
    a = ap.parse_args()

    root = os.path.join(a.work, f"du-scale-{a.objects}-{a.reports}x{a.files}", "config-1")
    if not os.path.exists(os.path.join(root, ".complete")):
        subprocess.run(["rm", "-rf", os.path.dirname(root)], check=True)
        print(f"writing {a.reports} reports of ~{a.objects:,} objects under {root} ...", flush=True)
        generate(a.duckdb, root, a.objects, a.reports, a.files)
        open(os.path.join(root, ".complete"), "w").close()
    dates = sorted(d[3:] for d in os.listdir(os.path.join(root, "hive")))
    data = sum(os.path.getsize(os.path.join(root, "data", f)) for f in os.listdir(os.path.join(root, "data")))
    version = subprocess.run([a.duckdb, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    print(f"cores: {os.cpu_count()}, runs per view: {a.runs} (median), {len(dates)} reports, "
          f"{data / 2**30:.2f} GiB of Parquet, DuckDB CLI {version}")
    print(f"{'view':<18}{'quack s':>9}{'duckdb s':>9}{'ratio':>7}{'quack MiB':>11}{'duckdb MiB':>11}")
    for name, extra, sql in views(root, dates):
        if a.only and not name.startswith(a.only):
            continue
        quack_argv = [a.quack, "du", "--quiet", "--format", "csv", "--inventory", root] + extra
        quack, duckdb = [], []
        for i in range(a.runs + 1):
            q, d = run(quack_argv), run([a.duckdb, "-csv", "-c", sql])
            if i > 0:
                quack.append(q)
                duckdb.append(d)
        qt, dt = (statistics.median(t for t, _ in r) for r in (quack, duckdb))
        qm, dm = (statistics.median(m for _, m in r) for r in (quack, duckdb))
        print(f"{name:<18}{qt:>9.2f}{dt:>9.2f}{qt / dt:>7.2f}{qm:>11.0f}{dm:>11.0f}", flush=True)


if __name__ == "__main__":
    main()
