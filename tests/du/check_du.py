#!/usr/bin/env python3
"""`quack du` against lakeview's SQL run by DuckDB on the same files.

    check_du.py --quack BIN --lake LAKE_DIR --work DIR

Inventories checked:
  * LAKE_DIR/inventory: gen_lake.py's plain hive directory of Parquet reports;
  * DIR/aws-parquet/src-bucket/config-1/: AWS's layout (hive/dt=*/symlink.txt naming s3:// URLs of
    data/<uuid>.parquet, manifest.json per report), as a local copy, without versioning columns;
  * DIR/aws-csv/src-bucket/config-2/: AWS's layout with gzipped headerless CSV reports whose
    keys are URL-encoded form-style (`+` a space, `%2B` a plus);
  * DIR/aws-orc/src-bucket/config-3/: AWS's layout with ORC reports (written by pyarrow from the
    Parquet reports' rows, which DuckDB reads as the truth).
The generated keys include spaces, `%`, `_`, `+`, unicode and trailing delimiters. For each
inventory, several prefixes, delimiters and depths, with and without --compare, in csv, json and
table. Then the bad inputs: an unknown date, a missing data file, a CSV schema without Size, a corrupt ORC file, a
manifest.checksum that is not the MD5 of manifest.json, a corrupt manifest, a data file of another size.
The truth is lakeview's DU_STMT / DU_DIFF_STMT translated to DuckDB, with the prefix compared as
a literal and is_latest / is_delete_marker NULL meaning current / not deleted.
"""
import argparse, csv, datetime, gzip, hashlib, io, json, os, re, shutil, subprocess, sys, urllib.parse

import duckdb
import pyarrow.orc
import pyarrow.parquet

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


def current(con, table, date, prefix, extra=("last_modified_date", "storage_class", "e_tag")):
    """The current rows of one report under prefix: (key, size, *extra), filtered here in Python."""
    rows = con.execute(f"SELECT key, size, is_latest, is_delete_marker, {', '.join(extra)} FROM {table} "
                       f"WHERE dt = {lit(date)}").fetchall()
    return [(k, size, *rest) for k, size, latest, deleted, *rest in rows
            if k.startswith(prefix) and latest is not False and not deleted]


def child(key, prefix, delim):
    rest = key[len(prefix):]
    return rest if delim not in rest else rest.split(delim, 1)[0] + delim


def rows_of(argv, fmt):
    """quack du's response as JSON records, or CSV rows (header first)."""
    out = quack(*argv, "--format", fmt).stdout
    return json.loads(out) if fmt == "json" else list(csv.reader(io.StringIO(out)))


def compare(name, got, want):
    global checks
    checks += 1
    if got != want:
        diff = [(i, g, w) for i, (g, w) in enumerate(zip(got, want)) if g != w][:2]
        failures.append(f"{name}: {len(got)} rows vs {len(want)} expected; first differences {diff}")


def check_top(con, table, inventory, date, prefix, n):
    rows = current(con, table, date, prefix)
    want = sorted(((k, size, klass) for k, size, _, klass, _ in rows), key=lambda r: (-r[1], r[0]))[:n]
    base = ["--inventory", inventory, "--date", date, "--prefix", prefix, "--top", str(n)]
    js = rows_of(base, "json")
    assert js["view"] == "top" and js["top"] == n, js.keys()
    compare(f"{inventory} --top {n} prefix={prefix!r} json", [(r["key"], r["size"], r["storage_class"]) for r in js["response"]], want)
    c = rows_of(base, "csv")
    assert c[0] == ["key", "size", "last_modified", "storage_class"], c[0]
    compare(f"{inventory} --top {n} prefix={prefix!r} csv", [(r[0], int(r[1]), r[3] or None) for r in c[1:]], want)
    assert "largest objects under" in quack(*base).stdout


def check_duplicates(con, table, inventory, date, prefix, top=None):
    groups = {}
    for k, size, _, _, tag in current(con, table, date, prefix):
        if tag is not None and size is not None:
            groups.setdefault((tag, size), []).append(k)
    want = []
    for (tag, size), ks in groups.items():
        if len(ks) > 1:
            m = re.search(r"-([0-9]+)$", tag)
            want.append((tag, size, int(m.group(1)) if m else None, len(ks), size * (len(ks) - 1), min(ks), max(ks)))
    want.sort(key=lambda r: (-r[4], -r[1], r[0]))
    want = want[:top] if top else want
    base = ["--inventory", inventory, "--date", date, "--prefix", prefix, "--duplicates", *(["--top", str(top)] if top else [])]
    name = f"{inventory} --duplicates top={top} prefix={prefix!r}"
    js = rows_of(base, "json")
    cols = ["e_tag", "size", "parts", "copies", "reclaimable", "first_key", "last_key"]
    compare(name + " json", [tuple(r[c] for c in cols) for r in js["response"]], want)
    checks_total = sum(r[4] for r in want)
    compare(name + " reclaimable", [js["reclaimable"], js["view"]], [checks_total, "duplicates"])
    c = rows_of(base, "csv")
    assert c[0] == cols, c[0]
    compare(name + " csv", [(r[0], int(r[1]), int(r[2]) if r[2] else None, int(r[3]), int(r[4]), r[5], r[6]) for r in c[1:]], want)
    assert "groups of duplicates" in quack(*base).stdout
    return want


def check_history(con, table, inventory, dates, prefix, delim, since=None):
    chosen = sorted(d for d in dates if since is None or d >= since)
    per = {}
    for d in chosen:
        for k, size, *_ in current(con, table, d, prefix):
            t = per.setdefault((d, child(k, prefix, delim)), [0, 0])
            t[0] += size
            t[1] += 1
    want = sorted(((d, cp, v[0], v[1]) for (d, cp), v in per.items()), key=lambda r: (r[0], -r[2], r[1]))
    totals = [{"date": d, "size": sum(v[0] for (dd, _), v in per.items() if dd == d),
               "objects": sum(v[1] for (dd, _), v in per.items() if dd == d)} for d in chosen]
    first, last = chosen[0], chosen[-1]
    growth = []
    for cp in {cp for (d, cp) in per if d in (first, last)}:
        f, l = per.get((first, cp), [0, 0]), per.get((last, cp), [0, 0])
        growth.append({"common_prefix": cp, "size_first": f[0], "size_last": l[0], "diff": l[0] - f[0],
                       "objects_first": f[1], "objects_last": l[1]})
    growth.sort(key=lambda g: (-g["diff"], -g["size_last"], g["common_prefix"]))
    base = ["--inventory", inventory, "--prefix", prefix, "--delimiter", delim, "--history", *(["--since", since] if since else [])]
    name = f"{inventory} --history since={since} prefix={prefix!r} delim={delim!r}"
    js = rows_of(base, "json")
    compare(name + " json", [(r["date"], r["common_prefix"], r["size"], r["objects"]) for r in js["response"]], want)
    compare(name + " totals", js["totals"], totals)
    compare(name + " growth", js["growth"], growth)
    compare(name + " dates", [js["dates"], js["date"], js["view"]], [chosen, last, "history"])
    c = rows_of(base, "csv")
    assert c[0] == ["date", "common_prefix", "size", "objects"], c[0]
    compare(name + " csv", [(r[0], r[1], int(r[2]), int(r[3])) for r in c[1:]], want)
    assert "reports under" in quack(*base).stdout


# --group filters: (spec, a Python predicate over (key, size, modified, report day)).
def in_group(filters, key, size, modified, day):
    for field, value in filters:
        if field == "prefix" and not any(key.startswith(v) for f, v in filters if f == "prefix"):
            return False
        if field == "suffix" and not any(key.endswith(v) for f, v in filters if f == "suffix"):
            return False
        if field == "min-age" and (modified is None or modified > day - datetime.timedelta(days=value)):
            return False
        if field == "max-age" and (modified is None or modified <= day - datetime.timedelta(days=value)):
            return False
        if field == "min-size" and not size >= value:
            return False
        if field == "max-size" and not size < value:
            return False
    return True


def check_groups(con, table, inventory, date, prefix, delim, groups):
    """groups: [(name, spec text, filters)]."""
    day = datetime.datetime.strptime(date[:10], "%Y-%m-%d")
    totals, whole = {}, 0
    for k, size, modified, _, _ in current(con, table, date, prefix):
        whole += size
        cp = child(k, prefix, delim)
        for name, _, filters in groups:
            if in_group(filters, k, size, modified, day):
                t = totals.setdefault((cp, name), [0, 0])
                t[0] += size
                t[1] += 1
    want = sorted(((cp, g, v[0], v[1]) for (cp, g), v in totals.items()), key=lambda r: (-r[2], r[0], r[1].encode()))
    base = ["--inventory", inventory, "--date", date, "--prefix", prefix, "--delimiter", delim]
    for _, spec, _ in groups:
        base += ["--group", spec]
    name = f"{inventory} --group x{len(groups)} prefix={prefix!r}"
    js = rows_of(base, "json")["response"]
    compare(name + " json", [(r["common_prefix"], r["group"], r["size"], r["objects"]) for r in js], want)
    global checks
    checks += 1
    if any(abs(r["share"] - r["size"] / whole) > 1e-9 for r in js if whole):
        failures.append(f"{name}: shares differ")
    c = rows_of(base, "csv")
    assert c[0] == ["common_prefix", "group", "size", "objects", "last_modified", "share"], c[0]
    compare(name + " csv", [(r[0], r[1], int(r[2]), int(r[3])) for r in c[1:]], want)


GROUPS = [
    ("big", "big=min-size=1MiB", [("min-size", 1024 ** 2)]),
    ("it's ü", "it's ü=prefix=a%20b/&prefix=%C3%BCn%C3%AFcode/&max-age=30d",
     [("prefix", "a b/"), ("prefix", "ünïcode/"), ("max-age", 30)]),
    ("old small", "old small=min-age=7&max-size=0.5MiB&suffix=.bin&suffix=.txt",
     [("min-age", 7), ("max-size", 512 * 1024), ("suffix", ".bin"), ("suffix", ".txt")]),
    ("amp", "amp=prefix=a b/dup/%C3%BC1%26x&min-size=1GiB", [("prefix", "a b/dup/ü1&x"), ("min-size", 1024 ** 3)]),
    ("aged", "aged=min-age=1w&max-age=1y", [("min-age", 7), ("max-age", 365)]),
    ("all", "all=", []),
]

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
for prefix in ["", "production/"]:
    check_top(con, "hive_inv", inv, dates[-1], prefix, 25)
    check_duplicates(con, "hive_inv", inv, dates[0], prefix)
    check_groups(con, "hive_inv", inv, dates[0], prefix, "/", GROUPS)
check_history(con, "hive_inv", inv, dates, "", "/")
check_history(con, "hive_inv", inv, dates, "logs/", "/", since=sorted(dates)[1][:10])
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


def etag(*parts, multipart=0):
    digest = hashlib.md5(repr(parts).encode()).hexdigest()
    return f"{digest}-{multipart}" if multipart else digest


def rows_for(factor):
    """(key, size, is_latest, is_delete_marker, e_tag) of one report."""
    out = []
    for i, k in enumerate(keys):
        for j in range(1 + i % 3):
            key = k if j == 0 else k.rstrip("/") + f"/{j}.part"
            size = 0 if k == "empty.dat" else ((i + 1) * 1000 * factor + j) * 13 ** (i % 6)
            out.append((key, size, None if i % 4 else (i % 8 == 0), None if i % 5 else False, etag(key, size)))
    out.append(("deleted/marker", 5, True, True, None))
    # Duplicates: same ETag and size (copies grow with the report), a multipart ETag with its part
    # count, a same-ETag object of another size, a same-size object of another ETag, zero-byte
    # copies, an object without an ETag, and keys with odd characters.
    big = 3 * 1024 ** 3 + 17
    for n in range(1 + factor):
        out.append((f"dup/copy {n}.bin", 4096, None, None, etag("content-a")))
        out.append((f"a b/dup/ü{n}&x.bin", big, None, None, etag("content-big", multipart=48)))
    out += [("dup/other-size.bin", 4097, None, None, etag("content-a")),
            ("dup/other-etag.bin", 4096, None, None, etag("content-b")),
            ("dup/zero-1", 0, None, None, etag("")), ("dup/zero-2", 0, None, None, etag("")),
            ("dup/no-etag-1", 4096, None, None, None), ("dup/no-etag-2", 4096, None, None, None),
            ("mp/x.tar", 5 * 1024 ** 2, None, None, etag("mp", multipart=3)),
            ("mp/y.tar", 5 * 1024 ** 2, None, None, etag("mp", multipart=3)),
            ("mp/z.tar", 5 * 1024 ** 2, None, None, etag("mp", multipart=4))]
    return out


def extras(date, n):
    """Row n's last modified (relative to the report date), storage class and inventory fields."""
    age = AGES[n % len(AGES)]
    day = datetime.datetime.strptime(date[:10], "%Y-%m-%d")
    return (None if age is None else day - age, CLASSES[n % 4], n % 3 == 0, ["SSE-S3", "SSE-KMS", "NOT-SSE"][n % 3] if n % 5 else None)


EXT = {"parquet": "parquet", "csv": "csv.gz", "orc": "orc"}


def write_aws(root, fmt):
    bucket_dir = os.path.join(root, "src-bucket", "config-" + {"parquet": "1", "csv": "2", "orc": "3"}[fmt])
    os.makedirs(os.path.join(bucket_dir, "data"))
    for date, factor in reports.items():
        rows = rows_for(factor)
        name = f"{date[:10]}-{fmt}.{EXT[fmt]}"
        path = os.path.join(bucket_dir, "data", name)
        if fmt in ("parquet", "orc"):
            con.execute("CREATE OR REPLACE TABLE r (bucket VARCHAR, key VARCHAR, size BIGINT, last_modified_date TIMESTAMP, "
                        "storage_class VARCHAR, is_multipart_uploaded BOOLEAN, encryption_status VARCHAR, e_tag VARCHAR)")
            con.executemany("INSERT INTO r VALUES ('src-bucket', ?, ?, ?, ?, ?, ?, ?)",
                            [(k, s, *extras(date, n), e) for n, (k, s, latest, dm, e) in enumerate(rows)
                             if latest is not False and not dm])
            if fmt == "parquet":
                con.execute(f"COPY r TO '{path}' (FORMAT parquet)")
                schema = "message s3.inventory { required binary bucket (STRING); required binary key (STRING); ... }"
            else:
                # The truth beside the inventory; the report itself is ORC, as AWS writes it.
                truth = os.path.join(root, "truth", name + ".parquet")
                os.makedirs(os.path.dirname(truth), exist_ok=True)
                con.execute(f"COPY r TO '{truth}' (FORMAT parquet)")
                pyarrow.orc.write_table(pyarrow.parquet.read_table(truth), path)
                schema = "struct<bucket:string,key:string,size:bigint,last_modified_date:timestamp,...>"
        else:
            with gzip.open(path, "wt", newline="") as f:
                w = csv.writer(f, quoting=csv.QUOTE_ALL)
                for n, (k, s, latest, dm, e) in enumerate(rows):
                    modified, klass, multipart, encryption = extras(date, n)
                    w.writerow(["src-bucket", urllib.parse.quote_plus(k, safe="/"), "" if latest is None else str(latest).lower(),
                                "" if dm is None else str(dm).lower(), s,
                                "" if modified is None else modified.strftime("%Y-%m-%dT%H:%M:%S.000Z"), klass,
                                str(multipart).lower(), encryption or "", e or ""])
            schema = ("Bucket, Key, IsLatest, IsDeleteMarker, Size, LastModifiedDate, StorageClass, IsMultipartUploaded, "
                      "EncryptionStatus, ETag")
        url = f"s3://inventory-dest/inv/src-bucket/{os.path.basename(bucket_dir)}/data/{name}"
        hive = os.path.join(bucket_dir, "hive", f"dt={date}")
        os.makedirs(hive)
        open(os.path.join(hive, "symlink.txt"), "w").write(url + "\n")
        manifest = os.path.join(bucket_dir, f"{date[:10]}T{date[11:]}Z")
        os.makedirs(manifest)
        json.dump({"sourceBucket": "src-bucket", "destinationBucket": "arn:aws:s3:::inventory-dest",
                   "fileFormat": {"parquet": "Parquet", "csv": "CSV", "orc": "ORC"}[fmt], "fileSchema": schema,
                   "files": [{"key": f"inv/src-bucket/{os.path.basename(bucket_dir)}/data/{name}", "size": os.path.getsize(path),
                              "MD5checksum": "0"}]}, open(os.path.join(manifest, "manifest.json"), "w"))
    return bucket_dir


def aws_view(bucket_dir, fmt):
    parts = []
    for date in reports:
        path = f"{bucket_dir}/data/{date[:10]}-{fmt}.{EXT[fmt]}"
        if fmt == "orc":
            path = f"{os.path.dirname(os.path.dirname(bucket_dir))}/truth/{date[:10]}-{fmt}.{EXT[fmt]}.parquet"
        if fmt in ("parquet", "orc"):
            parts.append(f"""SELECT key, size, NULL::BOOLEAN AS is_latest, NULL::BOOLEAN AS is_delete_marker, {lit(date)} AS dt,
                last_modified_date, storage_class, is_multipart_uploaded, encryption_status, e_tag FROM read_parquet('{path}')""")
        else:
            parts.append(f"""SELECT url_decode(replace(key, '+', ' ')) AS key, size::BIGINT AS size,
                nullif(is_latest, '')::BOOLEAN AS is_latest, nullif(is_delete_marker, '')::BOOLEAN AS is_delete_marker,
                {lit(date)} AS dt, nullif(last_modified_date, '')::TIMESTAMP AS last_modified_date, storage_class,
                is_multipart_uploaded::BOOLEAN AS is_multipart_uploaded, nullif(encryption_status, '') AS encryption_status,
                nullif(e_tag, '') AS e_tag
                FROM read_csv('{path}', header = false, columns = {{'bucket': 'VARCHAR', 'key': 'VARCHAR',
                'is_latest': 'VARCHAR', 'is_delete_marker': 'VARCHAR', 'size': 'VARCHAR', 'last_modified_date': 'VARCHAR',
                'storage_class': 'VARCHAR', 'is_multipart_uploaded': 'VARCHAR', 'encryption_status': 'VARCHAR',
                'e_tag': 'VARCHAR'}})""")
    return " UNION ALL ".join(parts)


aws_cases = cases + [("a b/", "/"), ("100%/", "/"), ("a_b/", "/"), ("ünïcode/", "/"), ("trail/", "/"), ("plus+sign/", "/"),
                     ("deep/", "/"), ("a", "%")]
for fmt in ["parquet", "csv", "orc"]:
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
    for prefix, delim in [("", "/"), ("a b/", "/"), ("dup/", "/"), ("", "obj")]:
        check_top(con, f"aws_{fmt}", bucket_dir, newest, prefix, 7)
        check_groups(con, f"aws_{fmt}", bucket_dir, newest, prefix, delim, GROUPS)
        check_history(con, f"aws_{fmt}", bucket_dir, list(reports), prefix, delim)
    check_history(con, f"aws_{fmt}", bucket_dir, list(reports), "", "/", since="2024-05-02")
    check_history(con, f"aws_{fmt}", bucket_dir, list(reports), "", "/", since="2024-05-03-00-00")
    for prefix in ["", "dup/", "a b/"]:
        dups = check_duplicates(con, f"aws_{fmt}", bucket_dir, newest, prefix)
        assert prefix != "" or len(dups) >= 4, dups
    check_duplicates(con, f"aws_{fmt}", bucket_dir, newest, "", top=2)
    check_duplicates(con, f"aws_{fmt}", bucket_dir, "2024-05-01-00-00", "")

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
# An ORC data file that is not ORC, at the manifest's size, is named; and no converted file is left.
orc = os.path.join(work, "orc-corrupt/src-bucket/config-3")
shutil.copytree(os.path.join(work, "aws-orc/src-bucket/config-3"), orc)
data = os.path.join(orc, "data", "2024-05-03-orc.orc")
open(data, "wb").write(b"PAR1 not an ORC file")
m = os.path.join(orc, "2024-05-03T00-00Z", "manifest.json")
j = json.load(open(m)); j["files"][0]["size"] = os.path.getsize(data); json.dump(j, open(m, "w"))
exchange = os.path.join(work, "exchange")
bad(["--inventory", orc, "--exchange", exchange], "corrupt_file: reading the ORC file " + data)
checks += 1
if os.path.isdir(exchange) and os.listdir(exchange):
    failures.append(f"a failed ORC conversion left files in the exchange: {os.listdir(exchange)}")
bad(["--inventory", pq, "--delimiter", ""], "delimiter cannot be empty")
bad(["--inventory", pq, "--by", "colour"], "is not a breakdown; use storage-class, suffix, age")
bad(["--inventory", inv, "--by", "replication-status"], "the report has no replication_status column")
# The other views: options that ask two questions, malformed filters, reports that lack a field.
bad(["--inventory", pq, "--top", "0"], "--top must be from 1 to")
bad(["--inventory", pq, "--top", "5", "--compare", "2024-05-01-00-00"], "--top does not combine with --compare")
bad(["--inventory", pq, "--duplicates", "--by", "age"], "--duplicates does not combine with --by")
bad(["--inventory", pq, "--history", "--duplicates"], "--history does not combine with --duplicates")
bad(["--inventory", pq, "--history", "--date", "2024-05-01-00-00"], "use --since")
bad(["--inventory", pq, "--since", "2024-05-01"], "--since goes with --history")
bad(["--inventory", pq, "--history", "--since", "2099-01-01"], "no report on or after 2099-01-01")
bad(["--inventory", pq, "--history", "--since", "yesterday'; --"], "is not a report date")
bad(["--inventory", pq, "--by", "age", "--group", "a="], "--by and --group are two breakdowns")
bad(["--inventory", pq, "--group", "nofilter"], "no '=' after the name")
bad(["--inventory", pq, "--group", "g=colour=red"], "is not a filter field")
bad(["--inventory", pq, "--group", "g=min-size=lots"], "is not a size")
bad(["--inventory", pq, "--group", "g=min-age=30&max-age=7"], "is not below")
bad(["--inventory", pq, "--group", "g=", "--group", "g=prefix=x"], "given twice")
noetag = os.path.join(work, "noetag/src-bucket/config-2")
shutil.copytree(os.path.join(work, "aws-csv/src-bucket/config-2"), noetag)
for date in reports:
    m = os.path.join(noetag, f"{date[:10]}T{date[11:]}Z", "manifest.json")
    j = json.load(open(m)); j["fileSchema"] = j["fileSchema"].replace(", ETag", ", Other"); json.dump(j, open(m, "w"))
bad(["--inventory", noetag, "--duplicates"], "the report has no e_tag column")
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
