"""Blue/Green deployments: Create/Describe/Switchover/DeleteBlueGreenDeployment.

CreateBlueGreenDeployment makes the green instance `<blue>-green-<6 random>` (the blue's class,
storage, windows, backups, CA, tags..., at TargetEngineVersion and the Target* settings), whose
database is a copy of the blue one kept in sync by logical replication (replication.py). The
deployment is PROVISIONING (tasks CREATING_READ_REPLICA_OF_SOURCE, DB_ENGINE_VERSION_UPGRADE
for another version, CONFIGURE_BACKUPS) until green is available, then AVAILABLE.

SwitchoverBlueGreenDeployment checks its guardrails first (both instances available,
replication healthy, green not behind while replication is paused) and refuses with
InvalidBlueGreenDeploymentStateFault; then, SWITCHOVER_IN_PROGRESS: both endpoints close and
their sessions end, green catches up with everything blue committed, sequences are copied,
replication ends, green takes the blue's identifier and endpoint (port) and the blue becomes
`<blue>-old1` (`-old2`... if taken) on the green's port, read-only until rebooted;
SWITCHOVER_COMPLETED. Not caught up within SwitchoverTimeout: everything is as before,
SWITCHOVER_FAILED (a later switchover may be tried).

All database work runs on the blue instance's admin queue; a switchover's waiting is a poll
re-queued every 100 ms, so no worker is held.
"""

from __future__ import annotations

import datetime
import logging
import random
import re
import string
import time
from dataclasses import dataclass, field

from moto.rds.models import rds_backends

from local_rds import replication
from local_rds.instance import Instance
from local_rds.paging import error, filters_of, page
from local_rds.quotas import QUOTAS

LOG = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9]*(-[a-zA-Z0-9]+)*$")
MONITOR_SECS = 0.5
POLL_SECS = 0.1
LOGICAL_REPLICATION_MESSAGE = (
    "Blue/Green Deployments require a DB instance with logical replication enabled. Before you create a "
    "Blue/Green Deployment for a DB instance, associate the DB instance with a custom DB instance parameter "
    "group that enables logical replication."
)


def _not_found(identifier: str):
    return error(
        "BlueGreenDeploymentNotFoundFault",
        f"BlueGreenDeploymentIdentifier {identifier} doesn't refer to an existing blue/green deployment.",
        404,
    )


def _invalid_state(message: str):
    return error("InvalidBlueGreenDeploymentStateFault", message)


def _random(n: int, alphabet: str = string.ascii_lowercase + string.digits) -> str:
    return "".join(random.choices(alphabet, k=n))


@dataclass
class Deployment:
    identifier: str
    name: str
    account: str
    region: str
    blue: Instance
    green: Instance
    target_version: str
    upgrade: bool  # green runs another version than blue
    key: str  # the admin queue of both members
    repl: str  # name of the publication, slot and subscription
    tags: list = field(default_factory=list)
    created: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc))
    status: str = "PROVISIONING"
    details: str | None = None
    copied: bool = False
    failed: str | None = None
    # replication, as the monitor last saw it
    paused: bool = False
    hidden: bool = False  # the guardrails do not see the pause (lag that grew after they looked)
    replication: dict = field(default_factory=dict)
    pending: int | None = 0
    degraded: str | None = None
    # switchover
    switching: bool = False
    switch_requested: float = 0.0
    closed_at: float = 0.0  # when the switchover closed both endpoints
    deadline: float = 0.0
    timeout: int = 300
    blue_gone: bool = False
    green_gone: bool = False

    def arn(self, member: str) -> str:
        """The member's ARN under its current (or, once deleted, last) identifier."""
        inst = self.blue if member == "blue" else self.green
        return f"arn:aws:rds:{self.region}:{self.account}:db:{inst.identifier}"


class BlueGreen:
    def __init__(self, st):
        self.st = st
        self.deployments: dict[tuple[str, str, str], Deployment] = {}
        self.monitoring = False

    # --- lookups ---

    def _get(self, context, identifier: str | None) -> Deployment:
        d = self.deployments.get((context.account_id, context.region, (identifier or "").lower()))
        if d is None:
            raise _not_found(identifier or "")
        return d

    def of(self, inst: Instance) -> Deployment | None:
        """The unfinished deployment the instance is a member of."""
        for d in self.deployments.values():
            if d.status != "SWITCHOVER_COMPLETED" and inst in (d.blue, d.green):
                return d
        return None

    def check_not_switching(self, inst: Instance) -> None:
        d = self.of(inst)
        if d is not None and d.switching:
            raise error(
                "InvalidDBInstanceState",
                f"DB instance {inst.identifier} is being switched over by blue/green deployment {d.identifier}.",
            )

    # --- CreateBlueGreenDeployment ---

    def create(self, context, request: dict) -> dict:
        st = self.st
        account, region = context.account_id, context.region
        name = request.get("BlueGreenDeploymentName") or ""
        if not NAME_PATTERN.match(name) or len(name) > 60:
            raise error("InvalidParameterValue", f"The parameter BlueGreenDeploymentName is not a valid name: {name}")
        if any(d.name == name for (a, r, _), d in self.deployments.items() if (a, r) == (account, region)):
            raise error(
                "BlueGreenDeploymentAlreadyExistsFault", f"A blue/green deployment with the name {name} already exists."
            )
        source = request.get("Source") or ""
        m = re.fullmatch(r"arn:aws[a-z-]*:rds:([^:]+):(\d{12}):db:([A-Za-z][A-Za-z0-9-]*)", source)
        if m is None:
            raise error("InvalidParameterValue", f"The parameter Source is not a valid DB instance ARN: {source}")
        backend = rds_backends[account][region]
        ident = m.group(3).lower()
        db = backend.databases.get(ident)
        if db is None or (m.group(1), m.group(2)) != (region, account):
            raise error("DBInstanceNotFound", f"DBInstance {ident} not found.", 404)
        blue = st.instances.get((account, region, ident))
        if blue is None:
            raise error(
                "SourceDatabaseNotSupportedFault",
                f"The source DB instance {ident} isn't supported for a blue/green deployment.",
            )
        if hasattr(db, "master_user_secret"):
            raise error(
                "SourceDatabaseNotSupportedFault",
                "Blue/green deployments don't support managing master user passwords with AWS Secrets Manager.",
            )
        status = blue.status(time.monotonic())
        if status != "available":
            raise error(
                "InvalidDBInstanceState", f"The source DB instance {ident} must be available (status: {status})."
            )
        other = self.of(blue)
        if other is not None:
            raise error(
                "InvalidDBInstanceState",
                f"DB instance {ident} is already part of blue/green deployment {other.identifier}.",
            )
        target = st.catalog.check_upgrade(
            db.engine_version, str(request.get("TargetEngineVersion") or db.engine_version), True
        )
        major = target.split(".")[0] != db.engine_version.split(".")[0]
        if major and not self._logical_replication(backend, db):
            raise error("SourceDatabaseNotSupportedFault", LOGICAL_REPLICATION_MESSAGE)
        group = self._target_group(backend, db, request.get("TargetDBParameterGroupName"), target, major)
        storage = int(request.get("TargetAllocatedStorage") or db.allocated_storage or 20)
        QUOTAS.check_new_instance(account, region, storage)

        green_id = f"{ident[:50]}-green-{_random(6)}"
        kwargs = {
            "db_instance_identifier": green_id,
            "engine": "postgres",
            "engine_version": target,
            "db_instance_class": request.get("TargetDBInstanceClass") or db.db_instance_class,
            "allocated_storage": storage,
            "max_allocated_storage": db.max_allocated_storage,
            "storage_type": request.get("TargetStorageType") or db.storage_type,
            "iops": request.get("TargetIops") or db.iops,
            "storage_throughput": request.get("TargetStorageThroughput") or db.storage_throughput,
            "backup_retention_period": db.backup_retention_period,
            "preferred_backup_window": db.preferred_backup_window,
            "preferred_maintenance_window": db.preferred_maintenance_window,
            "auto_minor_version_upgrade": db.auto_minor_version_upgrade,
            "copy_tags_to_snapshot": db.copy_tags_to_snapshot,
            "master_username": db.master_username,
            "master_user_password": getattr(db, "_master_user_password", None),
            "multi_az": db.multi_az,
            "storage_encrypted": db.storage_encrypted,
            "kms_key_id": db.kms_key_id,
            "tags": [dict(t) for t in db.tags],  # RDS copies the blue's tags to green
            # Not copied: green starts without deletion protection (users of tools that switch
            # over by themselves report it off on the new production instance).
            "deletion_protection": False,
            "db_parameter_group_name": group,
            "ca_certificate_identifier": blue.ca,
            "availability_zone": db.availability_zone,
            "db_subnet_group_name": db._db_subnet_group_name,
            "vpc_security_group_ids": list(db.vpc_security_group_ids),
            "publicly_accessible": db.publicly_accessible,
            "db_name": db.db_name,
            "enable_cloudwatch_logs_exports": list(db.enabled_cloudwatch_logs_exports),
        }
        green_db = backend.create_db_instance(kwargs)
        if getattr(db, "enable_performance_insights", False):
            green_db.enable_performance_insights = True
            green_db.performance_insights_retention_period = db.performance_insights_retention_period
        green = st.register(green_db, db.master_username, db.db_name, blue.ca, {}, queue_key=blue.queue_key)
        d = Deployment(
            identifier=f"bgd-{_random(16)}",
            name=name,
            account=account,
            region=region,
            blue=blue,
            green=green,
            target_version=target,
            upgrade=target != db.engine_version,
            key=blue.queue_key,
            repl=f"lrds_bg_{_random(12)}",
            tags=[dict(t) for t in request.get("Tags") or []],
        )
        self.deployments[(account, region, d.identifier)] = d
        st.admin.submit(d.key, lambda conn: self._make_green(conn, d))
        return {"BlueGreenDeployment": self._shape(d)}

    @staticmethod
    def _logical_replication(backend, db) -> bool:
        name = db.db_parameter_group_name
        group = backend.db_parameter_groups.get(name) if name and not name.startswith("default.") else None
        if group is None:
            return False
        return str(group.parameters.get("rds.logical_replication", {}).get("ParameterValue")) == "1"

    @staticmethod
    def _target_group(backend, db, requested: str | None, target: str, major: bool) -> str | None:
        family = f"postgres{target.split('.')[0]}"
        if requested:
            group = backend.db_parameter_groups.get(requested.lower())
            if group is None:
                raise error("DBParameterGroupNotFound", f"DBParameterGroup not found: {requested}", 404)
            if group.family != family:
                raise error(
                    "InvalidParameterCombination",
                    f"The parameter group {requested} with DBParameterGroupFamily {group.family} can't be used for "
                    f"this instance. Use a parameter group with DBParameterGroupFamily {family}.",
                )
            return group.name
        # Same major: the blue's group; a new major: the new family's default.
        return None if major else db.db_parameter_group_name

    def _make_green(self, conn, d: Deployment) -> None:
        """The green database: a copy of blue with its own role, subscribed to blue's changes.
        Blue refuses connections while it is copied."""
        st = self.st
        blue, green = d.blue, d.green
        with st.lock:
            if st.instances.get((green.account, green.region, green.identifier)) is not green:
                return  # green deleted before it was made
            if st.instances.get((blue.account, blue.region, blue.identifier)) is not blue:
                d.failed = "the source DB instance was deleted"
                green.error = d.failed
                return
        started = time.monotonic()
        try:
            replication.copy_role(conn, blue.real_name, green.real_name)
            with st.lock:
                blue.blocked = True
            try:
                st.relays.drop_connections(blue.port)
                replication.end_sessions(conn, [blue.real_name])
                replication.publish(st.admin, blue.real_name, d.repl, d.repl)
                replication.clone(st.admin, conn, blue.real_name, green.real_name, d.repl)
            finally:
                with st.lock:
                    blue.blocked = False
            closed_ms = (time.monotonic() - started) * 1000
            replication.subscribe(st.admin, green.real_name, d.repl, blue.real_name, d.repl, d.repl)
        except Exception as e:
            LOG.exception("local RDS: blue/green %s: making green %s failed", d.identifier, green.identifier)
            with st.lock:
                d.failed = f"creating the green DB instance failed: {e}"
                green.error = str(e)
            try:  # a slot nobody reads would keep blue's WAL forever
                replication.teardown(st.admin, conn, green.real_name, d.repl, blue.real_name, d.repl, d.repl)
            except Exception:
                LOG.exception("local RDS: blue/green %s: cleaning up after the failure", d.identifier)
            return
        with st.lock:
            green.ready = True
            d.copied = True
            if d.upgrade:
                start = max(time.monotonic(), green.created + green.creating_secs)
                green.begin("upgrading", start, st.modifying_secs)
        LOG.info(
            "local RDS: blue/green %s: green %s copied from %s (blue closed %.0f ms)",
            d.identifier,
            green.identifier,
            blue.identifier,
            closed_ms,
        )
        self._start_monitor()

    # --- the monitor: replication health and lag, for the guardrails and the control endpoint ---

    def _start_monitor(self) -> None:
        with self.st.lock:
            if self.monitoring:
                return
            self.monitoring = True
        self.st.admin.submit("blue-green-monitor", self._monitor_round)

    def _monitor_round(self, conn) -> None:
        st = self.st
        with st.lock:
            watched = [
                d
                for d in self.deployments.values()
                if d.copied
                and not d.switching
                and d.status in ("PROVISIONING", "AVAILABLE", "SWITCHOVER_FAILED")
                and not (d.blue_gone or d.green_gone)
            ]
            if not watched:
                self.monitoring = False
                return
        for d in watched:
            try:
                self.observe(conn, d)
            except Exception as e:  # a member dropped meanwhile, a lost connection: next round
                LOG.debug("local RDS: blue/green %s: monitor: %s", d.identifier, e)
        st.admin.submit_later("blue-green-monitor", MONITOR_SECS, self._monitor_round)

    def observe(self, conn, d: Deployment) -> None:
        seen = replication.state(conn, d.repl, d.repl)
        pending = 0
        if seen["slot"] and not seen["slot_active"]:
            pending = replication.pending_changes(self.st.admin, d.blue.real_name, d.repl, d.repl)
        with self.st.lock:
            d.replication = seen
            d.pending = pending
            if seen["apply_errors"] and not d.degraded:
                d.degraded = (
                    f"Replication degraded: the green DB instance failed to apply {seen['apply_errors']} change(s) "
                    "from blue (a DDL change or a table green lacks)."
                )

    # --- DescribeBlueGreenDeployments ---

    def refresh(self, now: float) -> None:
        for d in self.deployments.values():
            if d.status in ("SWITCHOVER_COMPLETED",) or d.switching:
                continue
            if d.failed:
                d.status, d.details = "INVALID_CONFIGURATION", d.failed
            elif d.blue_gone or d.green_gone:
                d.status = "INVALID_CONFIGURATION"
                d.details = (
                    "The source DB instance was deleted." if d.blue_gone else "The target DB instance was deleted."
                )
            elif d.status == "SWITCHOVER_FAILED":
                continue
            elif d.copied and d.green.status(now) == "available":
                d.status, d.details = "AVAILABLE", d.degraded
            else:
                d.status = "PROVISIONING"

    def _tasks(self, d: Deployment) -> list[dict]:
        now = time.monotonic()
        green_status = d.green.status(now) if not d.green_gone else "deleted"
        copy_done = d.copied and green_status != "creating"
        failed = "FAILED" if d.failed else None
        tasks = [("CREATING_READ_REPLICA_OF_SOURCE", failed or ("COMPLETED" if copy_done else "IN_PROGRESS"))]
        if d.upgrade:
            upgrading = "IN_PROGRESS" if green_status == "upgrading" else ("COMPLETED" if copy_done else "PENDING")
            tasks.append(("DB_ENGINE_VERSION_UPGRADE", failed or upgrading))
        tasks.append(("CONFIGURE_BACKUPS", failed or ("COMPLETED" if d.status != "PROVISIONING" else "PENDING")))
        return [{"Name": n, "Status": s} for n, s in tasks]

    def _member_status(self, d: Deployment) -> str:
        if d.blue_gone and d.status != "SWITCHOVER_COMPLETED":
            return "MISSING_SOURCE"
        if d.green_gone and d.status != "SWITCHOVER_COMPLETED":
            return "MISSING_TARGET"
        return d.status if d.status != "INVALID_CONFIGURATION" else "AVAILABLE"

    def _shape(self, d: Deployment, status: str | None = None) -> dict:
        out = {
            "BlueGreenDeploymentIdentifier": d.identifier,
            "BlueGreenDeploymentName": d.name,
            "Source": d.arn("blue"),
            "Target": d.arn("green"),
            "SwitchoverDetails": [
                {
                    "SourceMember": d.arn("blue"),
                    "TargetMember": d.arn("green"),
                    "Status": self._member_status(d),
                }
            ],
            "Tasks": self._tasks(d),
            "Status": status or d.status,
            "CreateTime": d.created,
            "TagList": [dict(t) for t in d.tags],
        }
        if d.details and not status:
            out["StatusDetails"] = d.details
        return out

    def describe(self, context, request: dict) -> dict:
        account, region = context.account_id, context.region
        wanted = request.get("BlueGreenDeploymentIdentifier")
        if wanted:
            self._get(context, wanted)
        filters = filters_of(
            request, {"blue-green-deployment-identifier", "blue-green-deployment-name", "source", "target"}
        )
        items = []
        for (a, r, _), d in sorted(self.deployments.items(), key=lambda kv: kv[1].created):
            if (a, r) != (account, region) or (wanted and d.identifier != wanted.lower()):
                continue
            shaped = self._shape(d)
            checks = {
                "blue-green-deployment-identifier": d.identifier,
                "blue-green-deployment-name": d.name,
                "source": shaped["Source"],
                "target": shaped["Target"],
            }
            if all(checks[k] in v for k, v in filters.items()):
                items.append(shaped)
        return page(items, request, "BlueGreenDeployments")

    # --- SwitchoverBlueGreenDeployment ---

    def switchover(self, context, request: dict) -> dict:
        d = self._get(context, request.get("BlueGreenDeploymentIdentifier"))
        timeout = int(request.get("SwitchoverTimeout") or 300)
        if not 30 <= timeout <= 3600:
            raise error(
                "InvalidParameterValue",
                f"Invalid value {timeout} for SwitchoverTimeout: must be between 30 and 3600 seconds.",
            )
        if d.switching or d.status not in ("AVAILABLE", "SWITCHOVER_FAILED"):
            raise _invalid_state(
                f"The blue/green deployment {d.identifier} can't be switched over in its state ({d.status})."
            )
        now = time.monotonic()
        for member, inst in (("source", d.blue), ("target", d.green)):
            status = inst.status(now)
            if status != "available":
                raise _invalid_state(
                    f"Switchover can't start: the {member} DB instance {inst.identifier} is {status}, not available."
                )
        if d.degraded:
            raise _invalid_state(f"Switchover can't start: {d.degraded}")
        if d.paused and not d.hidden and d.pending != 0:
            behind = "an unknown number of" if d.pending is None else str(d.pending)
            raise _invalid_state(
                f"Switchover can't start: the replica lag of the green DB instance {d.green.identifier} is too high "
                f"for a switchover within {timeout} seconds ({behind} changes not replicated)."
            )
        d.switching, d.timeout, d.deadline, d.switch_requested = True, timeout, now + timeout, now
        d.status, d.details = "SWITCHOVER_IN_PROGRESS", None
        self.st.admin.submit(d.key, lambda conn: self._begin_switchover(conn, d))
        return {"BlueGreenDeployment": self._shape(d)}

    def _begin_switchover(self, conn, d: Deployment) -> None:
        st = self.st
        with st.lock:
            d.blue.blocked = d.green.blocked = True
            d.closed_at = time.monotonic()
        try:
            for inst in (d.blue, d.green):
                st.relays.drop_connections(inst.port)
            replication.end_sessions(conn, [d.blue.real_name, d.green.real_name])
            target = replication.flush_wal(conn)
        except Exception as e:
            LOG.exception("local RDS: blue/green %s: switchover failed", d.identifier)
            self._roll_back(d, f"Switchover failed: {e}")
            return
        self._poll_switchover(conn, d, target)

    def _poll_switchover(self, conn, d: Deployment, target: str) -> None:
        try:
            synced = replication.caught_up(self.st.admin, conn, d.blue.real_name, d.repl, d.repl, target)
        except Exception as e:
            LOG.warning("local RDS: blue/green %s: checking replication: %s", d.identifier, e)
            synced = False
        if synced:
            self._complete_switchover(conn, d)
        elif time.monotonic() >= d.deadline:
            self._roll_back(
                d,
                f"Switchover timed out after {d.timeout} seconds: the green DB instance {d.green.identifier} did not "
                "catch up with the blue one. No changes were made to either environment.",
            )
        else:
            self.st.admin.submit_later(d.key, POLL_SECS, lambda c: self._poll_switchover(c, d, target))

    def _roll_back(self, d: Deployment, details: str) -> None:
        with self.st.lock:
            d.blue.blocked = d.green.blocked = False
            d.switching = False
            d.status, d.details = "SWITCHOVER_FAILED", details
        LOG.info("local RDS: blue/green %s: %s", d.identifier, details)
        self._start_monitor()

    def _complete_switchover(self, conn, d: Deployment) -> None:
        st = self.st
        blue, green = d.blue, d.green
        try:
            replication.sync_sequences(st.admin, blue.real_name, green.real_name)
            replication.teardown(st.admin, conn, green.real_name, d.repl, blue.real_name, d.repl, d.repl)
            # The previous production instance only takes reads until it is rebooted.
            replication.set_read_only(conn, blue.real_name, True)
        except Exception as e:
            LOG.exception("local RDS: blue/green %s: switchover failed", d.identifier)
            d.degraded = d.degraded or f"Replication degraded: the switchover failed at its last step ({e})."
            self._roll_back(d, f"Switchover failed: {e}. No changes were made to either environment's identifiers.")
            return
        with st.lock:
            backend = rds_backends[d.account][d.region]
            name = blue.identifier
            n = 1
            while f"{name}-old{n}" in backend.databases:
                n += 1
            old = f"{name}-old{n}"
            blue_db, green_db = backend.databases.pop(blue.identifier), backend.databases.pop(green.identifier)
            st.instances.pop((blue.account, blue.region, blue.identifier), None)
            st.instances.pop((green.account, green.region, green.identifier), None)
            blue_db.db_instance_identifier, green_db.db_instance_identifier = old, name
            backend.databases[old], backend.databases[name] = blue_db, green_db
            # The green database takes over the blue endpoint; the old blue gets the green's.
            blue_db.port, green_db.port = green_db.port, blue_db.port
            st.relays.swap(blue.port, green.port)
            blue.port, green.port = green.port, blue.port
            blue.identifier, green.identifier = old, name
            st.instances[(blue.account, blue.region, old)] = blue
            st.instances[(green.account, green.region, name)] = green
            blue.read_only_until_reboot = True
            blue.blocked = green.blocked = False
            d.switching = False
            d.status, d.details = "SWITCHOVER_COMPLETED", "Switchover completed"
        now = time.monotonic()
        LOG.info(
            "local RDS: blue/green %s: switched over in %.0f ms (endpoints closed %.0f ms), %s is now %s",
            d.identifier,
            (now - d.switch_requested) * 1000,
            (now - d.closed_at) * 1000,
            name,
            green.real_name,
        )

    # --- DeleteBlueGreenDeployment ---

    def delete(self, context, request: dict) -> dict:
        st = self.st
        d = self._get(context, request.get("BlueGreenDeploymentIdentifier"))
        delete_target = bool(request.get("DeleteTarget"))
        if d.switching:
            raise _invalid_state(
                f"The blue/green deployment {d.identifier} is being switched over and can't be deleted."
            )
        if delete_target and d.status == "SWITCHOVER_COMPLETED":
            raise _invalid_state(
                f"You can't specify DeleteTarget for blue/green deployment {d.identifier}: "
                "its status is SWITCHOVER_COMPLETED."
            )
        backend = rds_backends[d.account][d.region]
        green_db = backend.databases.get(d.green.identifier) if delete_target and not d.green_gone else None
        if green_db is not None and green_db.deletion_protection:
            raise error(
                "InvalidParameterCombination",
                f"Cannot delete protected DB Instance {green_db.db_instance_identifier}, please disable deletion "
                "protection and try again.",
            )
        shaped = self._shape(d, status="DELETING")
        shaped["DeleteTime"] = datetime.datetime.now(datetime.timezone.utc)
        del self.deployments[(d.account, d.region, d.identifier)]
        if d.status != "SWITCHOVER_COMPLETED":
            blue, green = d.blue.real_name, d.green.real_name
            st.admin.submit(
                d.key, lambda conn: replication.teardown(st.admin, conn, green, d.repl, blue, d.repl, d.repl)
            )
        if green_db is not None:
            backend.delete_db_instance(d.green.identifier, skip_final_snapshot=True)
            if st.instances.get((d.account, d.region, d.green.identifier)) is d.green:
                st.unregister(d.green)
        return {"BlueGreenDeployment": shaped}

    def on_deleted(self, inst: Instance) -> None:
        """DeleteDBInstance of a member: the deployment is left without it, and its replication
        ends (a slot nobody reads would keep blue's WAL forever)."""
        st = self.st
        for d in self.deployments.values():
            if d.status == "SWITCHOVER_COMPLETED" or inst not in (d.blue, d.green):
                continue
            if inst is d.blue:
                d.blue_gone = True
            else:
                d.green_gone = True
            blue, green = d.blue.real_name, d.green.real_name
            st.admin.submit(
                d.key,
                lambda conn, d=d, blue=blue, green=green: replication.teardown(
                    st.admin, conn, green, d.repl, blue, d.repl, d.repl
                ),
            )

    # --- tags of deployments (arn:aws:rds:<region>:<account>:deployment:bgd-...) ---

    def owns_arn(self, arn: str | None) -> bool:
        return bool(arn) and ":deployment:" in arn

    def _by_arn(self, context, arn: str) -> Deployment:
        return self._get(context, arn.rsplit(":", 1)[-1])

    def list_tags(self, context, arn: str) -> dict:
        return {"TagList": [dict(t) for t in self._by_arn(context, arn).tags]}

    def add_tags(self, context, arn: str, tags: list[dict]) -> dict:
        d = self._by_arn(context, arn)
        keys = {t["Key"] for t in tags}
        d.tags = [t for t in d.tags if t["Key"] not in keys] + [dict(t) for t in tags]
        return {}

    def remove_tags(self, context, arn: str, keys: list[str]) -> dict:
        d = self._by_arn(context, arn)
        d.tags = [t for t in d.tags if t["Key"] not in set(keys)]
        return {}

    # --- control endpoint ---

    def view(self, d: Deployment) -> dict:
        return {
            "identifier": d.identifier,
            "name": d.name,
            "account": d.account,
            "region": d.region,
            "status": d.status,
            "status_details": d.details,
            "source": d.blue.identifier,
            "target": d.green.identifier,
            "source_database": d.blue.real_name,
            "target_database": d.green.real_name,
            "replication": {
                "name": d.repl,
                "copied": d.copied,
                "paused": d.paused,
                "hidden": d.hidden,
                "pending_changes": d.pending,
                "degraded": d.degraded,
                "observed": d.replication,
            },
        }

    def set_replication(self, d: Deployment, paused: bool, hidden: bool) -> None:
        """Pauses or resumes the replication to green (green lags behind blue's writes while
        paused); `hidden`: the switchover's guardrails do not see it, as if the lag grew after
        they looked. Runs on the deployment's queue and waits for it (never call it holding the
        state lock)."""
        green, repl = d.green.real_name, d.repl
        self.st.admin.call(d.key, lambda conn: replication.set_enabled(self.st.admin, green, repl, not paused))
        d.paused, d.hidden = paused, paused and hidden
        # Observed at once, so the guardrails see the new state without waiting a round.
        self.st.admin.call(d.key, lambda conn: self.observe(conn, d))
