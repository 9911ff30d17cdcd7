"""Figures for localstack/README.md; run through localstack/bench-instances."""

import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import psycopg
from bench_memory import memory
from botocore.config import Config

N = int(sys.argv[1])
STACK = os.environ["TENANTD_STACK_DIR"]
rds = boto3.client("rds", config=Config(retries={"total_max_attempts": 5}, max_pool_connections=16))
PASSWORD = "Bench-Password-1"


def create(ident: str) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier=ident, Engine="postgres", EngineVersion="16.4", DBInstanceClass="db.t4g.micro",
        AllocatedStorage=20, MasterUsername="tenant_admin", MasterUserPassword=PASSWORD, DBName="app",
        Tags=[{"Key": "bench", "Value": "1"}],
    )


def status_and_endpoint(ident: str):
    d = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    return d["DBInstanceStatus"], d.get("Endpoint")


def login(ep) -> None:
    with psycopg.connect(host=ep["Address"], port=ep["Port"], user="tenant_admin", password=PASSWORD,
                         dbname="app", sslmode="disable", connect_timeout=10) as c:
        c.execute("select 1").fetchone()


def delete_all(ids) -> None:
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda i: rds.delete_db_instance(DBInstanceIdentifier=i, SkipFinalSnapshot=True), ids))


def wait_dropped(timeout=600) -> None:
    admin = os.environ["LOCAL_RDS_ADMIN_URL"]
    deadline = time.time() + timeout
    with psycopg.connect(admin) as c:
        while c.execute("select count(*) from pg_database where datname like 'lrds_bench%'").fetchone()[0]:
            if time.time() > deadline:
                raise SystemExit("bench databases not dropped in time")
            time.sleep(0.5)


run = f"{int(time.time())}"
print(f"# local RDS bench, {N} instances, LOCAL_RDS_CREATING_SECS={os.environ.get('LOCAL_RDS_CREATING_SECS')}")

# 1. CreateDBInstance -> first successful login, one instance at a time.
samples = []
for k in range(5):
    ident = f"bench-{run}-login-{k}"
    t0 = time.monotonic()
    create(ident)
    while True:
        status, ep = status_and_endpoint(ident)
        if status == "available":
            try:
                login(ep)
                break
            except psycopg.OperationalError:
                pass
        time.sleep(0.01)
    samples.append(time.monotonic() - t0)
    rds.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)
wait_dropped()
print(f"create -> login: median {statistics.median(samples) * 1000:.0f} ms, "
      f"min {min(samples) * 1000:.0f} ms, max {max(samples) * 1000:.0f} ms (5 runs)")

# 2. N live instances.
before = memory()
ids = [f"bench-{run}-{i:04d}" for i in range(N)]
t0 = time.monotonic()
with ThreadPoolExecutor(8) as ex:
    list(ex.map(create, ids))
t_api = time.monotonic() - t0
pending = set(ids)
endpoints = {}
while pending:
    # As tenantd polls: DescribeDBInstances with a db-instance-id filter, 100 ids a call.
    chunk_ids = sorted(pending)
    for k in range(0, len(chunk_ids), 100):
        out = rds.describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": chunk_ids[k:k + 100]}])
        for d in out["DBInstances"]:
            if d["DBInstanceStatus"] == "available":
                endpoints[d["DBInstanceIdentifier"]] = d["Endpoint"]
                pending.discard(d["DBInstanceIdentifier"])
            elif d["DBInstanceStatus"] == "failed":
                raise SystemExit(f"{d['DBInstanceIdentifier']} failed")
    if pending:
        time.sleep(0.2)
t_all = time.monotonic() - t0
after = memory()
t1 = time.monotonic()
with ThreadPoolExecutor(8) as ex:
    list(ex.map(login, endpoints.values()))
t_login = time.monotonic() - t1
print(f"{N} instances: CreateDBInstance calls {t_api:.1f} s, all available {t_all:.1f} s "
      f"({t_all / N * 1000:.0f} ms per instance), one login to each {t_login:.1f} s")
for key in before:
    delta = after[key] - before[key]
    print(f"  {key:22s} before {before[key]:10.2f}  after {after[key]:10.2f}  per instance {delta / N:8.3f}")
t2 = time.monotonic()
delete_all(ids)
wait_dropped()
print(f"deleting {N} (databases dropped): {time.monotonic() - t2:.1f} s")
