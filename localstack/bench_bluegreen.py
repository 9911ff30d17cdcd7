"""Figures of the local RDS's Blue/Green deployments for localstack/README.md; run through
localstack/bench-bluegreen.

N instances on 16.8 (a parameter group with logical replication), each with a writer that
inserts a row every 50 ms through its own connection (reconnecting when the endpoint drops it).
All N deployments to 17.4 are created together, then switched over together. Measured: the
longest time a writer could not write while its deployment was created (blue's endpoint is
closed for the copy) and while it was switched over, the time to AVAILABLE and to
SWITCHOVER_COMPLETED, rows a writer got an OK for that the new production database lacks, and
the tenant server's processes and memory per deployment while they replicate.
"""

import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import psycopg
from botocore.config import Config

from bench_memory import memory

N = int(sys.argv[1])
rds = boto3.client("rds", config=Config(retries={"total_max_attempts": 5}, max_pool_connections=32))
PASSWORD = "Bench-Password-1"
RUN = uuid.uuid4().hex[:6]
GROUP = f"bench-bg-{RUN}"


class Writer(threading.Thread):
    """Inserts a row every 50 ms; keeps the ids it got an OK for and when."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port, self.acked, self.stop = port, [], threading.Event()

    def run(self) -> None:
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(
                        host="127.0.0.1", port=self.port, user="tenant_admin", password=PASSWORD,
                        dbname="app", autocommit=True, connect_timeout=2,
                    )
                row = conn.execute("INSERT INTO beats DEFAULT VALUES RETURNING id").fetchone()
                self.acked.append((time.monotonic(), row[0]))
            except psycopg.Error:
                conn = None
            self.stop.wait(0.05)

    def longest_gap_ms(self, start: float, end: float) -> float:
        times = [start] + [t for t, _ in self.acked if start <= t <= end] + [end]
        return max(b - a for a, b in zip(times, times[1:])) * 1000


def wait_deployment(bgd: str, want: str) -> float:
    started = time.monotonic()
    while True:
        d = rds.describe_blue_green_deployments(BlueGreenDeploymentIdentifier=bgd)["BlueGreenDeployments"][0]
        if d["Status"] == want:
            return time.monotonic() - started
        if d["Status"] in ("INVALID_CONFIGURATION", "SWITCHOVER_FAILED"):
            raise RuntimeError(f"{bgd}: {d['Status']}: {d.get('StatusDetails')}")
        time.sleep(0.1)


def main() -> None:
    rds.create_db_parameter_group(
        DBParameterGroupName=GROUP, DBParameterGroupFamily="postgres16", Description="bench-bluegreen"
    )
    rds.modify_db_parameter_group(
        DBParameterGroupName=GROUP,
        Parameters=[{"ParameterName": "rds.logical_replication", "ParameterValue": "1", "ApplyMethod": "pending-reboot"}],
    )
    ids = [f"bench-bg-{RUN}-{i}" for i in range(N)]
    for ident in ids:
        rds.create_db_instance(
            DBInstanceIdentifier=ident, Engine="postgres", EngineVersion="16.8", DBInstanceClass="db.t4g.micro",
            AllocatedStorage=20, MasterUsername="tenant_admin", MasterUserPassword=PASSWORD, DBName="app",
            DBParameterGroupName=GROUP,
        )
    instances = {}
    for ident in ids:
        while (inst := rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0])[
            "DBInstanceStatus"
        ] != "available":
            time.sleep(0.1)
        instances[ident] = inst
        with psycopg.connect(
            host="127.0.0.1", port=inst["Endpoint"]["Port"], user="tenant_admin", password=PASSWORD,
            dbname="app", autocommit=True,
        ) as c:
            c.execute("CREATE TABLE beats (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())")
    writers = {ident: Writer(inst["Endpoint"]["Port"]) for ident, inst in instances.items()}
    for w in writers.values():
        w.start()
    time.sleep(1)
    before = memory()

    t0 = time.monotonic()
    bgds = {
        ident: rds.create_blue_green_deployment(
            BlueGreenDeploymentName=ident, Source=instances[ident]["DBInstanceArn"], TargetEngineVersion="17.4"
        )["BlueGreenDeployment"]["BlueGreenDeploymentIdentifier"]
        for ident in ids
    }
    with ThreadPoolExecutor(N) as pool:
        create_s = list(pool.map(lambda b: wait_deployment(b, "AVAILABLE"), bgds.values()))
    t1 = time.monotonic()
    time.sleep(2)
    during = memory()

    t2 = time.monotonic()
    for bgd in bgds.values():
        rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=bgd, SwitchoverTimeout=300)
    with ThreadPoolExecutor(N) as pool:
        switch_s = list(pool.map(lambda b: wait_deployment(b, "SWITCHOVER_COMPLETED"), bgds.values()))
    t3 = time.monotonic()
    time.sleep(1)
    for w in writers.values():
        w.stop.set()
    for w in writers.values():
        w.join()

    lost = 0
    for ident, w in writers.items():
        inst = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
        with psycopg.connect(
            host="127.0.0.1", port=inst["Endpoint"]["Port"], user="tenant_admin", password=PASSWORD,
            dbname="app", autocommit=True,
        ) as c:
            have = {r[0] for r in c.execute("SELECT id FROM beats")}
        lost += sum(1 for _, i in w.acked if i not in have)
        assert inst["EngineVersion"] == "17.4", inst["EngineVersion"]

    create_gaps = [w.longest_gap_ms(t0, t1) for w in writers.values()]
    switch_gaps = [w.longest_gap_ms(t2, t3) for w in writers.values()]
    print(
        f"deployments={N} create_s_p50={statistics.median(create_s):.2f} create_s_max={max(create_s):.2f} "
        f"create_write_gap_max_ms={max(create_gaps):.0f} switchover_s_p50={statistics.median(switch_s):.2f} "
        f"switchover_s_max={max(switch_s):.2f} switch_write_gap_p50_ms={statistics.median(switch_gaps):.0f} "
        f"switch_write_gap_max_ms={max(switch_gaps):.0f} rows_lost={lost} "
        f"rows_written={sum(len(w.acked) for w in writers.values())}"
    )
    print(
        f"tenant_pg_processes {before['tenant_pg_processes']} -> {during['tenant_pg_processes']} with {N} "
        f"replicating deployments; tenant_pg_pss_mib {before['tenant_pg_pss_mib']:.0f} -> "
        f"{during['tenant_pg_pss_mib']:.0f}; localstack_rss_mib {before['localstack_rss_mib']:.0f} -> "
        f"{during['localstack_rss_mib']:.0f}"
    )
    for bgd in bgds.values():
        rds.delete_blue_green_deployment(BlueGreenDeploymentIdentifier=bgd)
    for ident in ids:
        for name in (ident, f"{ident}-old1"):
            rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)
    rds.delete_db_parameter_group(DBParameterGroupName=GROUP)


if __name__ == "__main__":
    main()
