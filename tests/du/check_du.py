#!/usr/bin/env python3
"""`quack du` against lakeview's SQL run by DuckDB on the same files.

    check_du.py --quack BIN --lake LAKE_DIR --work DIR

Inventories checked:
  * LAKE_DIR/inventory: gen_lake.py's plain hive directory of Parquet reports;
  * DIR/aws-parquet/src-bucket/config-1/: AWS's layout (hive/dt=*/symlink.txt naming s3:// URLs of
    data/<uuid>.parquet, manifest.json per report), as a local copy, without versioning columns;
  * DIR/aws-csv/src-bucket/config-2/: AWS's layout with gzipped headerless CSV reports whose
    keys are URL-encoded form-style (`+` a space, `%2B` a plus).
The generated keys include spaces, `%`, `_`, `+`, unicode and trailing delimiters. For each
inventory, several prefixes, delimiters and depths, with and without --compare, in csv, json and
table. Then the bad inputs: an unknown date, a missing data file, a CSV schema without Size, ORC, a
manifest.checksum that is not the MD5 of manifest.json, a corrupt manifest, a data file of another size.
The truth is lakeview's DU_STMT / DU_DIFF_STMT translated to DuckDB, with the prefix compared as
a literal and is_latest / is_delete_marker NULL meaning current / not deleted.
"""
import argparse, csv, datetime, gzip, hashlib, io, json, os, shutil, subprocess, sys, urllib.parse

import duckdb

p = argparse.ArgumentParser()
p.add_argument("--quack", required=True)
p.add_argument("--lake", required=True)
p.add_argument("--work", required=True)
args = p.parse_args()
failures = []
checks = 0


def quack(*argv, ok=True):
    r = subprocess.run([args.quack, "du", "--backend", "local", "--quiet", *argv], capture_output=True, text=True)
    if ok and r.returncode != 0:
        raise SystemExit(f"quack du {' '.join(argv)} failed:\n{r.stderr}")
    return r


def lit(s):
    return "'" + s.replace("'", "''") + "'"


def cp_expr(prefix, delim, key="key"):
    rest = f"substr({key}, length({lit(prefix)}) + 1)"
    return (f"CASE len(string_split({rest}, {lit(delim)})) WHEN 1 THEN split_part({rest}, {lit(delim)}, 1) "
            f"ELSE split_part({rest}, {lit(delim)}, 1) || {lit(delim)} END")


def truth_du(con, table, date, prefix, delim):
    return con.execute(f"""
        SELECT common_prefix, sum(size) AS size FROM (
          SELECT {cp_expr(prefix, delim)} AS common_prefix, size FROM {table}
          WHERE dt = {lit(date)} AND starts_with(key, {lit(prefix)})
            AND (is_latest OR is_latest IS NULL) AND (NOT is_delete_marker OR is_delete_marker IS NULL))
        GROUP BY common_prefix ORDER BY size DESC""").fetchall()


def truth_diff(con, table, left, right, prefix, delim):
    return con.execute(f"""
        WITH one_day AS (
          SELECT common_prefix, sum(size) AS total, dt FROM (
            SELECT {cp_expr(prefix, delim)} AS common_prefix, size, dt FROM {table}
            WHERE starts_with(key, {lit(prefix)})
              AND (is_latest OR is_latest IS NULL) AND (NOT is_delete_marker OR is_delete_marker IS NULL))
          GROUP BY common_prefix, dt)
        SELECT common_prefix, coalesce(d1.total, 0) AS size_left, coalesce(d2.total, 0) AS size_right,
               coalesce(d1.total, 0) - coalesce(d2.total, 0) AS diff
        FROM (SELECT * FROM one_day WHERE dt = {lit(left)}) d1
        FULL OUTER JOIN (SELECT * FROM one_day WHERE dt = {lit(right)}) d2 USING (common_prefix)
        ORDER BY abs(diff) DESC, size_left DESC, size_right DESC""").fetchall()


def check(name, got, want, key_index):
    """Rows equal as multisets, and quack's order is the sort order (ties broken by prefix)."""
    global checks
    checks += 1
    g = [tuple(r) for r in got]
    w = [tuple(r) for r in want]
    if sorted(g, key=repr) != sorted(w, key=repr):
        missing = set(w) - set(g)
        extra = set(g) - set(w)
        failures.append(f"{name}: rows differ; missing {sorted(missing)[:3]}, extra {sorted(extra)[:3]} ({len(g)} vs {len(w)})")
        return
    if g != sorted(g, key=key_index):
        failures.append(f"{name}: not in the expected order")


def run_case(con, table, inventory, date, compare, prefix, delim):
    base = ["--inventory", inventory, "--date", date, "--prefix", prefix, "--delimiter", delim]
    name = f"{inventory} date={date} compare={compare} prefix={prefix!r} delim={delim!r}"
    if compare is None:
        want = truth_du(con, table, date, prefix, delim)
        out = quack(*base, "--format", "csv").stdout
        rows = list(csv.reader(io.StringIO(out)))
        assert rows[0][:2] == ["common_prefix", "size"], rows[0]
        got = [(r[0], int(r[1])) for r in rows[1:]]
        check(name + " csv", got, want, lambda r: (-r[1], r[0]))
        js = json.loads(quack(*base, "--format", "json").stdout)
        assert js["prefix"] == prefix and js["delimiter"] == delim and js["date"] == date and js["compare"] is None
        got = [(r["common_prefix"], r["size"]) for r in js["response"]]
        assert all(isinstance(r["size"], int) and isinstance(r["objects"], int) for r in js["response"])
        check(name + " json", got, want, lambda r: (-r[1], r[0]))
    else:
        want = truth_diff(con, table, date, compare, prefix, delim)
        js = json.loads(quack(*base, "--compare", compare, "--format", "json").stdout)
        assert js["compare"] == compare
        assert all(isinstance(r["diff"], int) for r in js["response"])
        got = [(r["common_prefix"], r["size_left"], r["size_right"], r["diff"]) for r in js["response"]]
        check(name + " json", got, want, lambda r: (-abs(r[3]), -r[1], -r[2], r[0]))
        out = quack(*base, "--compare", compare, "--format", "csv").stdout
        rows = list(csv.reader(io.StringIO(out)))
        got = [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows[1:]]
        check(name + " csv", got, want, lambda r: (-abs(r[3]), -r[1], -r[2], r[0]))
    table_out = quack(*base, *(["--compare", compare] if compare else [])).stdout
    assert "prefixes under" in table_out, table_out


KIB = 1024


def group_of(by, key, size, modified, klass, latest, deleted, report_date, fields):
    """The --by group of one report row, computed here in Python (not SQL) as README defines it."""
    if by == "storage-class":
        return klass
    if by == "suffix":
        return os.path.splitext(key.rsplit("/", 1)[-1])[1] or None
    if by == "age":
        if modified is None:
            return "unknown"
        day = datetime.datetime.strptime(report_date[:10], "%Y-%m-%d")
        for days, label in [(1, "< 1 day"), (7, "1-7 days"), (30, "7-30 days"), (90, "30-90 days"), (365, "90-365 days")]:
            if modified > day - datetime.timedelta(days=days):
                return label
        return "> 1 year"
    if by == "size":
        if size is None:
            return "unknown"
        if size == 0:
            return "0 B"
        for bound, label in [(128 * KIB, "< 128 KiB"), (KIB ** 2, "< 1 MiB"), (16 * KIB ** 2, "< 16 MiB"),
                             (128 * KIB ** 2, "< 128 MiB"), (KIB ** 3, "< 1 GiB")]:
            if size < bound:
                return label
        return ">= 1 GiB"
    if by == "version":
        return "delete marker" if deleted else "noncurrent" if latest is False else "current"
    value = fields[by.replace("-", "_")]
    return None if value is None else str(value).lower() if isinstance(value, bool) else value


def truth_by(con, table, date, prefix, delim, by, fields=()):
    cols = ", ".join(["last_modified_date", "storage_class", *fields])
    rows = con.execute(f"""
        SELECT {cp_expr(prefix, delim)}, key, size, is_latest, is_delete_marker, {cols} FROM {table}
        WHERE dt = {lit(date)} AND starts_with(key, {lit(prefix)})""").fetchall()
    groups = {}
    for cp, key, size, latest, deleted, modified, klass, *values in rows:
        if by != "version" and (latest is False or deleted):
            continue
        g = group_of(by, key, size, modified, klass, latest, deleted, date, dict(zip(fields, values)))
        total = groups.setdefault((cp, g), [0, 0])
        total[0] += size or 0
        total[1] += 1
    whole = sum(v[0] for v in groups.values())
    return [(cp, g, size, n, size / whole if whole else None) for (cp, g), (size, n) in groups.items()]


def by_order(r):
    return (-r[2], r[0], r[1] is None, r[1] or "")


def check_by(con, table, inventory, date, prefix, delim, by, column, fields=()):
    global checks
    want = truth_by(con, table, date, prefix, delim, by, fields)
    base = ["--inventory", inventory, "--date", date, "--prefix", prefix, "--delimiter", delim, "--by", by]
    name = f"{inventory} --by {by} prefix={prefix!r} delim={delim!r}"
    js = json.loads(quack(*base, "--format", "json").stdout)["response"]
    got = [(r["common_prefix"], r[column], r["size"], r["objects"], r["share"]) for r in js]
    rows = list(csv.reader(io.StringIO(quack(*base, "--format", "csv").stdout)))
    assert rows[0] == ["common_prefix", column, "size", "objects", "last_modified", "share"], rows[0]
    got_csv = [(r[0], r[1] or None, int(r[2]), int(r[3]), float(r[5]) if r[5] else None) for r in rows[1:]]
    for form, g in [("json", got), ("csv", got_csv)]:
        checks += 1
        exact = sorted((r[:4] for r in g), key=repr)
        if exact != sorted((r[:4] for r in want), key=repr):
            missing = set(r[:4] for r in want) - set(exact)
            extra = set(exact) - set(r[:4] for r in want)
            failures.append(f"{name} {form}: rows differ; missing {sorted(missing, key=repr)[:3]}, extra {sorted(extra, key=repr)[:3]}")
            continue
        shares = {r[:2]: r[4] for r in want}
        if any(abs(r[4] - shares[r[:2]]) > 1e-9 for r in g if r[4] is not None) or g != sorted(g, key=by_order):
            failures.append(f"{name} {form}: shares or order differ")
    assert "prefixes under" in quack(*base).stdout


BREAKDOWNS = [("storage-class", "storage_class"), ("suffix", "suffix"), ("age", "age"), ("size", "size_range"),
              ("version", "version")]
con = duckdb.connect()
cases = [("", "/"), ("production/", "/"), ("production/tables/", "/"), ("users", "/"), ("logs/", "_"),
         ("nothing-here/", "/"), ("", "obj")]

# 1. gen_lake.py's hive inventory.
inv = os.path.join(args.lake, "inventory")
con.execute(f"CREATE VIEW hive_inv AS SELECT * FROM read_parquet('{inv}/*/*.parquet', hive_partitioning = true)")
dates = [r[0] for r in con.execute("SELECT DISTINCT dt FROM hive_inv ORDER BY dt DESC").fetchall()]
assert quack("--inventory", inv, "--dates").stdout.split() == dates
for prefix, delim in cases:
    run_case(con, "hive_inv", inv, dates[0], None, prefix, delim)
    run_case(con, "hive_inv", inv, dates[0], dates[-1], prefix, delim)
for by, column in BREAKDOWNS:
    for prefix in ["", "production/"]:
        check_by(con, "hive_inv", inv, dates[-1], prefix, "/", by, column)
# --depth 2 equals grouping the depth-1 answer of each first-level prefix one level down.
deep = json.loads(quack("--inventory", inv, "--depth", "2", "--format", "json").stdout)["response"]
one = {}
for first in [r["common_prefix"] for r in json.loads(quack("--inventory", inv, "--format", "json").stdout)["response"]]:
    if first.endswith("/"):
        for r in json.loads(quack("--inventory", inv, "--prefix", first, "--format", "json").stdout)["response"]:
            one[first + r["common_prefix"]] = r["size"]
    else:
        one[first] = None
got = {r["common_prefix"]: r["size"] for r in deep}
checks += 1
if {k: v for k, v in got.items() if one.get(k) is not None} != {k: v for k, v in one.items() if v is not None}:
    failures.append("--depth 2 differs from two depth-1 passes")

# 2./3. AWS layouts, written here from a small synthetic bucket with odd keys.
work = os.path.abspath(args.work)
shutil.rmtree(work, ignore_errors=True)
keys = ["a b/c.txt", "a b/d e/f.txt", "100%/x", "under_score/y", "plus+sign/z", "ünïcode/ß.bin", "trail/", "trail/x/",
        "top.txt", "deep/1/2/3/4.bin", "a_b/c", "a%b/c", ".hidden", "dots/a..", "dots/.x.tar.gz", "empty.dat"]
AGES = [datetime.timedelta(hours=5), datetime.timedelta(days=3), datetime.timedelta(days=10), datetime.timedelta(days=45),
        datetime.timedelta(days=200), datetime.timedelta(days=400), datetime.timedelta(days=1), None,
        datetime.timedelta(days=7), datetime.timedelta(days=365)]
CLASSES = ["STANDARD", "STANDARD_IA", "GLACIER", "INTELLIGENT_TIERING"]
reports = {"2024-05-01-00-00": 1, "2024-05-02-00-00": 2, "2024-05-03-00-00": 3}


def rows_for(factor):
    out = []
    for i, k in enumerate(keys):
        for j in range(1 + i % 3):
            key = k if j == 0 else k.rstrip("/") + f"/{j}.part"
            size = 0 if k == "empty.dat" else ((i + 1) * 1000 * factor + j) * 13 ** (i % 6)
            out.append((key, size, None if i % 4 else (i % 8 == 0), None if i % 5 else False))
    out.append(("deleted/marker", 5, True, True))
    return out


def extras(date, n):
    """Row n's last modified (relative to the report date), storage class and inventory fields."""
    age = AGES[n % len(AGES)]
    day = datetime.datetime.strptime(date[:10], "%Y-%m-%d")
    return (None if age is None else day - age, CLASSES[n % 4], n % 3 == 0, ["SSE-S3", "SSE-KMS", "NOT-SSE"][n % 3] if n % 5 else None)


def write_aws(root, fmt):
    bucket_dir = os.path.join(root, "src-bucket", "config-" + ("1" if fmt == "parquet" else "2"))
    os.makedirs(os.path.join(bucket_dir, "data"))
    for date, factor in reports.items():
        rows = rows_for(factor)
        name = f"{date[:10]}-{fmt}.{'parquet' if fmt == 'parquet' else 'csv.gz'}"
        path = os.path.join(bucket_dir, "data", name)
        if fmt == "parquet":
            con.execute("CREATE OR REPLACE TABLE r (bucket VARCHAR, key VARCHAR, size BIGINT, last_modified_date TIMESTAMP, "
                        "storage_class VARCHAR, is_multipart_uploaded BOOLEAN, encryption_status VARCHAR)")
            con.executemany("INSERT INTO r VALUES ('src-bucket', ?, ?, ?, ?, ?, ?)",
                            [(k, s, *extras(date, n)) for n, (k, s, latest, dm) in enumerate(rows) if latest is not False and not dm])
            con.execute(f"COPY r TO '{path}' (FORMAT parquet)")
            schema = "message s3.inventory { required binary bucket (STRING); required binary key (STRING); ... }"
        else:
            with gzip.open(path, "wt", newline="") as f:
                w = csv.writer(f, quoting=csv.QUOTE_ALL)
                for n, (k, s, latest, dm) in enumerate(rows):
                    modified, klass, multipart, encryption = extras(date, n)
                    w.writerow(["src-bucket", urllib.parse.quote_plus(k, safe="/"), "" if latest is None else str(latest).lower(),
                                "" if dm is None else str(dm).lower(), s,
                                "" if modified is None else modified.strftime("%Y-%m-%dT%H:%M:%S.000Z"), klass,
                                str(multipart).lower(), encryption or ""])
            schema = ("Bucket, Key, IsLatest, IsDeleteMarker, Size, LastModifiedDate, StorageClass, IsMultipartUploaded, "
                      "EncryptionStatus")
        url = f"s3://inventory-dest/inv/src-bucket/{os.path.basename(bucket_dir)}/data/{name}"
        hive = os.path.join(bucket_dir, "hive", f"dt={date}")
        os.makedirs(hive)
        open(os.path.join(hive, "symlink.txt"), "w").write(url + "\n")
        manifest = os.path.join(bucket_dir, f"{date[:10]}T{date[11:]}Z")
        os.makedirs(manifest)
        json.dump({"sourceBucket": "src-bucket", "destinationBucket": "arn:aws:s3:::inventory-dest",
                   "fileFormat": "Parquet" if fmt == "parquet" else "CSV", "fileSchema": schema,
                   "files": [{"key": f"inv/src-bucket/{os.path.basename(bucket_dir)}/data/{name}", "size": os.path.getsize(path),
                              "MD5checksum": "0"}]}, open(os.path.join(manifest, "manifest.json"), "w"))
    return bucket_dir


def aws_view(bucket_dir, fmt):
    parts = []
    for date in reports:
        path = f"{bucket_dir}/data/{date[:10]}-{fmt}.{'parquet' if fmt == 'parquet' else 'csv.gz'}"
        if fmt == "parquet":
            parts.append(f"""SELECT key, size, NULL::BOOLEAN AS is_latest, NULL::BOOLEAN AS is_delete_marker, {lit(date)} AS dt,
                last_modified_date, storage_class, is_multipart_uploaded, encryption_status FROM read_parquet('{path}')""")
        else:
            parts.append(f"""SELECT url_decode(replace(key, '+', ' ')) AS key, size::BIGINT AS size,
                nullif(is_latest, '')::BOOLEAN AS is_latest, nullif(is_delete_marker, '')::BOOLEAN AS is_delete_marker,
                {lit(date)} AS dt, nullif(last_modified_date, '')::TIMESTAMP AS last_modified_date, storage_class,
                is_multipart_uploaded::BOOLEAN AS is_multipart_uploaded, nullif(encryption_status, '') AS encryption_status
                FROM read_csv('{path}', header = false, columns = {{'bucket': 'VARCHAR', 'key': 'VARCHAR',
                'is_latest': 'VARCHAR', 'is_delete_marker': 'VARCHAR', 'size': 'VARCHAR', 'last_modified_date': 'VARCHAR',
                'storage_class': 'VARCHAR', 'is_multipart_uploaded': 'VARCHAR', 'encryption_status': 'VARCHAR'}})""")
    return " UNION ALL ".join(parts)


aws_cases = cases + [("a b/", "/"), ("100%/", "/"), ("a_b/", "/"), ("ünïcode/", "/"), ("trail/", "/"), ("plus+sign/", "/"),
                     ("deep/", "/"), ("a", "%")]
for fmt in ["parquet", "csv"]:
    bucket_dir = write_aws(os.path.join(work, f"aws-{fmt}"), fmt)
    con.execute(f"CREATE OR REPLACE VIEW aws_{fmt} AS {aws_view(bucket_dir, fmt)}")
    newest = max(reports)
    for location in [bucket_dir, bucket_dir + "/hive"]:
        assert quack("--inventory", location, "--dates").stdout.split() == sorted(reports, reverse=True), location
    for prefix, delim in aws_cases:
        run_case(con, f"aws_{fmt}", bucket_dir, newest, None, prefix, delim)
        run_case(con, f"aws_{fmt}", bucket_dir, newest, "2024-05-01-00-00", prefix, delim)
    fields = ("is_multipart_uploaded", "encryption_status")
    for by, column in BREAKDOWNS + [(f.replace("_", "-"), f) for f in fields]:
        for prefix, delim in [("", "/"), ("a b/", "/"), ("dots/", "/"), ("", "obj")]:
            check_by(con, f"aws_{fmt}", bucket_dir, newest, prefix, delim, by, column, fields)

# 4. Bad inputs: clear errors.
def bad(argv, needle):
    global checks
    checks += 1
    r = quack(*argv, ok=False)
    if r.returncode == 0 or needle not in r.stderr:
        failures.append(f"{argv}: expected an error containing {needle!r}, got {r.returncode}: {r.stderr.strip()[:300]}")


pq = os.path.join(work, "aws-parquet/src-bucket/config-1")
bad(["--inventory", pq, "--date", "2023-01-01-00-00"], "available (newest first): 2024-05-03-00-00")
bad(["--inventory", os.path.join(work, "nowhere")], "no S3 Inventory report here")
broken = os.path.join(work, "broken/src-bucket/config-1")
shutil.copytree(pq, broken)
os.remove(os.path.join(broken, "data", "2024-05-03-parquet.parquet"))
bad(["--inventory", broken], "2024-05-03-parquet.parquet is missing")
nosize = os.path.join(work, "nosize/src-bucket/config-2")
shutil.copytree(os.path.join(work, "aws-csv/src-bucket/config-2"), nosize)
m = os.path.join(nosize, "2024-05-03T00-00Z", "manifest.json")
j = json.load(open(m)); j["fileSchema"] = "Bucket, Key, LastModifiedDate"; json.dump(j, open(m, "w"))
bad(["--inventory", nosize], "no Size column")
orc = os.path.join(work, "orc/src-bucket/config-1")
shutil.copytree(pq, orc)
m = os.path.join(orc, "2024-05-03T00-00Z", "manifest.json")
j = json.load(open(m)); j["fileFormat"] = "ORC"; json.dump(j, open(m, "w"))
bad(["--inventory", orc], "ORC")
bad(["--inventory", pq, "--delimiter", ""], "delimiter cannot be empty")
bad(["--inventory", pq, "--by", "colour"], "is not a breakdown; use storage-class, suffix, age")
bad(["--inventory", inv, "--by", "replication-status"], "the report has no replication_status column")
# AWS's manifest.checksum (MD5 of manifest.json): the right one passes, a wrong one names the manifest.
summed = os.path.join(work, "summed/src-bucket/config-1")
shutil.copytree(pq, summed)
m = os.path.join(summed, "2024-05-03T00-00Z", "manifest.json")
open(m[:-4] + "checksum", "w").write(hashlib.md5(open(m, "rb").read()).hexdigest())
checks += 1
if quack("--inventory", summed, ok=False).returncode != 0:
    failures.append("a report whose manifest.checksum is right fails")
open(m[:-4] + "checksum", "w").write("0" * 32)
bad(["--inventory", summed], "manifest.checksum says")
corrupt = os.path.join(work, "corrupt/src-bucket/config-1")
shutil.copytree(pq, corrupt)
open(os.path.join(corrupt, "2024-05-03T00-00Z", "manifest.json"), "w").write('{"fileFormat": "Parquet", "files": [')
bad(["--inventory", corrupt], "not JSON")
# A data file that is not the manifest's size (truncated or replaced) is named.
truncated = os.path.join(work, "truncated/src-bucket/config-1")
shutil.copytree(pq, truncated)
with open(os.path.join(truncated, "data", "2024-05-03-parquet.parquet"), "ab") as f:
    f.write(b"x")
bad(["--inventory", truncated], "2024-05-03-parquet.parquet is ")

for f in failures:
    print("FAIL", f)
print(f"du: {checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
