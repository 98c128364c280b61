#!/usr/bin/env python3
"""Copies an S3 Inventory in AWS's layout with Parquet reports as the same inventory with ORC
reports, as AWS writes them when the configuration asks for ORC: each data file rewritten by
pyarrow, manifest.json's fileFormat, files[].key and size, manifest.checksum and symlink.txt
updated.

    to_orc.py SRC_CONFIG_DIR DST_CONFIG_DIR
"""
import glob, hashlib, json, os, shutil, sys

import pyarrow.orc
import pyarrow.parquet

src, dst = sys.argv[1:3]
shutil.rmtree(dst, ignore_errors=True)
shutil.copytree(src, dst)
for manifest in glob.glob(os.path.join(dst, "*", "manifest.json")):
    j = json.load(open(manifest))
    for f in j["files"]:
        rel = f["key"].split(f"/{os.path.basename(os.path.normpath(src))}/", 1)[1]
        parquet = os.path.join(dst, rel)
        orc = parquet[: -len(".parquet")] + ".orc"
        pyarrow.orc.write_table(pyarrow.parquet.read_table(parquet), orc)
        os.remove(parquet)
        f["key"] = f["key"][: -len(".parquet")] + ".orc"
        f["size"] = os.path.getsize(orc)
        f["MD5checksum"] = hashlib.md5(open(orc, "rb").read()).hexdigest()
    j["fileFormat"] = "ORC"
    j["fileSchema"] = "struct<" + ",".join(f"{c.name}:{c.type}" for c in pyarrow.orc.ORCFile(orc).schema) + ">"
    text = json.dumps(j)
    open(manifest, "w").write(text)
    checksum = manifest[: -len("json")] + "checksum"
    if os.path.exists(checksum):
        open(checksum, "w").write(hashlib.md5(text.encode()).hexdigest())
for symlink in glob.glob(os.path.join(dst, "hive", "*", "symlink.txt")):
    lines = open(symlink).read().split()
    open(symlink, "w").write("".join(line[: -len(".parquet")] + ".orc\n" for line in lines))
