#!/usr/bin/env python3
"""Asserts on the CloudFormation template `serverless package` generated from serverless.yml
(packaged by check_package.sh with stage test, architecture=x86_64, dataBucket=test-lake,
dataPrefix=trips/, spillBucket=test-scratch, spillPrefix=spill/), and on the deployment zip.

    check_template.py PACKAGE_DIR ZIP plain|kms
plain: no KMS key, the stack manages the spill bucket; kms: a KMS key, a bucket of one's own."""
import json, os, sys, zipfile

package_dir, zip_path, variant = sys.argv[1:]
template = json.load(open(os.path.join(package_dir, "cloudformation-template-update-stack.json")))
resources = template["Resources"]
conditions = template.get("Conditions", {})


def condition_true(name):
    """Evaluates the stack's (literal-only) conditions."""
    def ev(c):
        if "Fn::Not" in c:
            return not ev(c["Fn::Not"][0])
        if "Fn::Equals" in c:
            a, b = c["Fn::Equals"]
            return a == b
        raise AssertionError(c)
    return ev(conditions[name])


def present(resource):
    return "Condition" not in resource or condition_true(resource["Condition"])


functions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
assert len(functions) == 1, functions
fn = functions[0]
assert fn["FunctionName"] == "quack-worker-test", fn["FunctionName"]
assert fn["Runtime"] == "provided.al2023", fn["Runtime"]
assert fn["Handler"] == "bootstrap", fn["Handler"]
assert fn["MemorySize"] == 2048, fn["MemorySize"]
assert fn["Timeout"] == 300, fn["Timeout"]
assert fn["Architectures"] == ["x86_64"], fn["Architectures"]
assert fn["EphemeralStorage"] == {"Size": 2048}, fn["EphemeralStorage"]
env = fn["Environment"]["Variables"]
assert env["QUACK_ALLOWED_PREFIXES"] == "s3://test-lake/trips/", env
assert env["QUACK_SPILL_PREFIX"] == "s3://test-scratch/spill/", env
assert env["QUACK_EXCHANGE_PREFIX"] == "s3://test-scratch/quack-exchange/", env
# The default artifact follows the architecture.
state = json.load(open(os.path.join(package_dir, "serverless-state.json")))
artifact = state["service"]["functions"]["worker"]["package"]["artifact"]
assert artifact == "dist/quack-worker-x86_64.zip", artifact

roles = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::IAM::Role"]
assert len(roles) == 1, roles
statements = [s for p in roles[0]["Policies"] for s in p["PolicyDocument"]["Statement"]]
policies = [r for r in resources.values() if r["Type"] == "AWS::IAM::Policy" and present(r)]
statements += [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
for s in statements:
    assert s["Effect"] == "Allow", s
    for action in s["Action"]:
        assert "*" not in action, f"wildcard action {action}"
    assert s["Resource"] != "*" and s["Resource"] != ["*"], f"wildcard resource {s}"
s3 = sorted(
    (tuple(sorted(s["Action"])), json.dumps(s["Resource"]), json.dumps(s.get("Condition"), sort_keys=True))
    for s in statements
    if any(a.startswith("s3:") for a in s["Action"])
)
assert s3 == sorted([
    (("s3:ListBucket",), json.dumps("arn:aws:s3:::test-lake"),
     json.dumps({"StringLike": {"s3:prefix": ["trips/*"]}}, sort_keys=True)),
    (("s3:GetObject",), json.dumps("arn:aws:s3:::test-lake/trips/*"), "null"),
    # The worker writes spilled partials; it may not read or delete them.
    (("s3:PutObject",), json.dumps("arn:aws:s3:::test-scratch/spill/*"), "null"),
    # Stages write and read the exchange; only the coordinator deletes.
    (("s3:GetObject", "s3:PutObject"), json.dumps("arn:aws:s3:::test-scratch/quack-exchange/*"), "null"),
]), s3
kms = [s for s in statements if any(a.startswith("kms:") for a in s["Action"])]
if variant == "kms":
    assert kms == [{"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": "arn:aws:kms:us-east-1:111122223333:key/test"}], kms
else:
    assert kms == [], kms
other = {a for s in statements for a in s["Action"] if not a.startswith(("s3:", "kms:"))}
assert other <= {"logs:CreateLogStream", "logs:CreateLogGroup", "logs:TagResource", "logs:PutLogEvents"}, other

buckets = [r for k, r in resources.items() if k == "SpillBucket"]
assert len(buckets) == 1, buckets
bucket = buckets[0]
if variant == "plain":
    assert present(bucket), "the stack manages the spill bucket by default"
    props = bucket["Properties"]
    assert props["BucketName"] == "test-scratch", props
    rules = props["LifecycleConfiguration"]["Rules"]
    assert rules == [{"Id": "quack-spill-expiry", "Status": "Enabled", "Prefix": "spill/", "ExpirationInDays": 1,
                      "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
                     {"Id": "quack-exchange-expiry", "Status": "Enabled", "Prefix": "quack-exchange/",
                      "ExpirationInDays": 1, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}], rules
    assert all(props["PublicAccessBlockConfiguration"].values()), props
else:
    assert not present(bucket), "manageSpillBucket=false leaves the bucket alone"

names = zipfile.ZipFile(zip_path).namelist()
assert sorted(names) == ["bootstrap", "httpfs.duckdb_extension", "icu.duckdb_extension"], names
print(f"serverless package ({variant}): template and zip OK")
