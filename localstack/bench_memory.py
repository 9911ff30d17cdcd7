"""The stack's memory and processes, for the benchmarks of the local RDS (bench-instances,
bench-bluegreen)."""

import os
import subprocess

STACK = os.environ["TENANTD_STACK_DIR"]


def kib(path_pid: int, field: str) -> int:
    try:
        with open(f"/proc/{path_pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def memory() -> dict:
    """Memory, processes, disk and descriptors of the stack's LocalStack and tenant PostgreSQL."""
    ls_pid = int(open(f"{STACK}/localstack/localstack.pid").read())
    pg_pid = int(open(f"{STACK}/tenant-pg/data/postmaster.pid").readline())
    pg = [pg_pid] + children(pg_pid)
    return {
        "localstack_rss_mib": kib(ls_pid, "Rss") / 1024,
        "tenant_pg_pss_mib": sum(kib(p, "Pss") for p in pg) / 1024,
        "tenant_pg_processes": len(pg),
        "tenant_pg_disk_mib": int(subprocess.check_output(["du", "-sk", f"{STACK}/tenant-pg/data"]).split()[0]) / 1024,
        "localstack_fds": len(os.listdir(f"/proc/{ls_pid}/fd")),
    }
