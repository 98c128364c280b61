#!/usr/bin/env python3
"""Asserts on the CloudFormation template `serverless package` generated from serverless.yml
(packaged by check_package.sh with architecture=x86_64, dataBucket=test-lake, dataPrefix=trips/,
spillBucket=test-scratch, spillPrefix=spill/), and on the deployment zip."""
import json, sys, zipfile

template_path, zip_path = sys.argv[1:]
resources = json.load(open(template_path))["Resources"]
functions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
assert len(functions) == 1, functions
fn = functions[0]
assert fn["Runtime"] == "provided.al2023", fn["Runtime"]
assert fn["Handler"] == "bootstrap", fn["Handler"]
assert fn["MemorySize"] == 2048, fn["MemorySize"]
assert fn["Timeout"] == 300, fn["Timeout"]
assert fn["Architectures"] == ["x86_64"], fn["Architectures"]
assert fn["EphemeralStorage"] == {"Size": 2048}, fn["EphemeralStorage"]
env = fn["Environment"]["Variables"]
assert env["QUACK_ALLOWED_PREFIXES"] == "s3://test-lake/trips/", env
assert env["QUACK_SPILL_PREFIX"] == "s3://test-scratch/spill/", env

roles = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::IAM::Role"]
assert len(roles) == 1, roles
statements = [s for p in roles[0]["Policies"] for s in p["PolicyDocument"]["Statement"]]
for s in statements:
    assert s["Effect"] == "Allow", s
    for action in s["Action"]:
        assert "*" not in action, f"wildcard action {action}"
s3 = sorted(
    (tuple(sorted(s["Action"])), json.dumps(s["Resource"]))
    for s in statements
    if any(a.startswith("s3:") for a in s["Action"])
)
assert s3 == sorted([
    (("s3:ListBucket",), json.dumps("arn:aws:s3:::test-lake")),
    (("s3:GetObject",), json.dumps("arn:aws:s3:::test-lake/trips/*")),
    (("s3:DeleteObject", "s3:GetObject", "s3:PutObject"), json.dumps("arn:aws:s3:::test-scratch/spill/*")),
]), s3
other = {a for s in statements for a in s["Action"] if not a.startswith("s3:")}
assert other <= {"logs:CreateLogStream", "logs:CreateLogGroup", "logs:TagResource", "logs:PutLogEvents"}, other

names = zipfile.ZipFile(zip_path).namelist()
assert sorted(names) == ["bootstrap", "httpfs.duckdb_extension"], names
print("serverless package: template and zip OK")
