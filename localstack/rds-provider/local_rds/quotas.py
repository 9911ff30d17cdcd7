"""Account quotas per account and region, as RDS keeps them, and DescribeAccountAttributes.

Every account gets RDS's default quotas (40 instances, 100,000 GiB, 100 manual snapshots, ...),
except the LocalStack default account 000000000000: the shared test stack runs many tests in
parallel there, so it gets limits no test reaches unless a test sets them through
POST /_local_rds/quotas. Tests of quotas use an account of their own (a 12-digit access key id).
"""

from __future__ import annotations

import threading

from localstack.aws.api import CommonServiceException
from moto.rds.models import rds_backends

DEFAULT_ACCOUNT = "000000000000"

# RDS's default quotas (DescribeAccountAttributes of a new account).
RDS_DEFAULTS = {
    "DBInstances": 40,
    "ReservedDBInstances": 40,
    "AllocatedStorage": 100000,
    "DBSecurityGroups": 25,
    "AuthorizationsPerDBSecurityGroup": 20,
    "DBParameterGroups": 50,
    "ManualSnapshots": 100,
    "EventSubscriptions": 20,
    "DBSubnetGroups": 50,
    "OptionGroups": 20,
    "SubnetsPerDBSubnetGroup": 20,
    "ReadReplicasPerMaster": 15,
    "DBClusters": 40,
    "DBClusterParameterGroups": 50,
    "DBClusterRoles": 5,
    "DBInstanceRoles": 5,
    "CustomEndpointsPerDBCluster": 5,
    "ManualClusterSnapshots": 100,
}
# What the shared default account gets unless a test sets its quotas.
DEFAULT_ACCOUNT_LIMITS = {"DBInstances": 1_000_000, "AllocatedStorage": 1_000_000_000, "ManualSnapshots": 1_000_000}

SETTABLE = ("DBInstances", "AllocatedStorage", "ManualSnapshots")


class QuotaStore:
    def __init__(self):
        self._lock = threading.Lock()
        self._set: dict[tuple[str, str], dict[str, int]] = {}

    def limits(self, account: str, region: str) -> dict[str, int]:
        out = dict(RDS_DEFAULTS)
        if account == DEFAULT_ACCOUNT:
            out.update(DEFAULT_ACCOUNT_LIMITS)
        with self._lock:
            out.update(self._set.get((account, region), {}))
        return out

    def set(self, account: str, region: str, values: dict[str, int]) -> None:
        with self._lock:
            self._set.setdefault((account, region), {}).update(values)

    def reset(self, account: str, region: str) -> None:
        with self._lock:
            self._set.pop((account, region), None)

    # --- usage, from moto's model ---

    @staticmethod
    def used(account: str, region: str) -> dict[str, int]:
        backend = rds_backends[account][region]
        dbs = list(backend.databases.values())
        return {
            "DBInstances": len(dbs),
            "AllocatedStorage": sum(int(getattr(d, "allocated_storage", 0) or 0) for d in dbs),
            "ManualSnapshots": sum(1 for s in backend.database_snapshots.values() if s.snapshot_type == "manual"),
            "DBSubnetGroups": len(backend.subnet_groups),
            "DBParameterGroups": len(backend.db_parameter_groups),
            "OptionGroups": len(backend.option_groups),
            "DBClusters": len(backend.clusters),
            "ManualClusterSnapshots": sum(
                1 for s in backend.cluster_snapshots.values() if getattr(s, "snapshot_type", "manual") == "manual"
            ),
            "EventSubscriptions": len(getattr(backend, "event_subscriptions", {})),
        }

    def describe(self, account: str, region: str) -> dict:
        limits = self.limits(account, region)
        used = self.used(account, region)
        return {
            "AccountQuotas": [
                {"AccountQuotaName": name, "Used": used.get(name, 0), "Max": limit} for name, limit in limits.items()
            ]
        }

    def view(self, account: str, region: str) -> dict:
        limits = self.limits(account, region)
        used = self.used(account, region)
        return {
            "account": account,
            "region": region,
            "quotas": {name: {"Max": limits[name], "Used": used.get(name, 0)} for name in SETTABLE},
        }

    # --- checks ---

    def check_new_instance(self, account: str, region: str, storage: int) -> None:
        limits, used = self.limits(account, region), self.used(account, region)
        if used["DBInstances"] + 1 > limits["DBInstances"]:
            raise CommonServiceException("InstanceQuotaExceeded", "DB Instance quota exceeded", 400, True)
        self.check_storage(account, region, storage, limits, used)

    def check_storage(self, account: str, region: str, extra: int, limits=None, used=None) -> None:
        limits = limits or self.limits(account, region)
        used = used or self.used(account, region)
        if extra > 0 and used["AllocatedStorage"] + extra > limits["AllocatedStorage"]:
            raise CommonServiceException(
                "StorageQuotaExceeded",
                "The request would result in the user exceeding the allowed amount of storage available "
                "across all DB instances.",
                400,
                True,
            )

    def check_manual_snapshot(self, account: str, region: str) -> None:
        if self.used(account, region)["ManualSnapshots"] + 1 > self.limits(account, region)["ManualSnapshots"]:
            raise CommonServiceException(
                "SnapshotQuotaExceeded",
                "The request would result in the user exceeding the allowed number of DB snapshots.",
                400,
                True,
            )


QUOTAS = QuotaStore()
