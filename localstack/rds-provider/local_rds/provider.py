"""The `rds` provider: moto's RDS model for the API, real PostgreSQL databases for the data.

Every RDS operation goes to moto (bundled with LocalStack). For engine `postgres`, this provider
adds what moto lacks:
- CreateDBInstance creates a login role (the master password) and a database it owns in the
  tenant PostgreSQL server, and gives the instance an endpoint of its own (a relay port, see
  relay.py) that maps the master user and DBName onto them;
- statuses: `creating` until LOCAL_RDS_CREATING_SECS have passed and the database exists,
  `modifying` for LOCAL_RDS_MODIFYING_SECS after ModifyDBInstance, `failed` on request;
- DeleteDBInstance closes the endpoint and drops the database and role;
- ModifyDBInstance with MasterUserPassword changes the role's password;
- StopDBInstance/StartDBInstance: `stopping` (LOCAL_RDS_STOPPING_SECS), `stopped`, `starting`
  (LOCAL_RDS_STARTING_SECS), `available`; the endpoint refuses connections meanwhile;
- engine versions (versions.py), account quotas (quotas.py), automated backups, paged snapshots,
  and RDS's checks moto lacks (storage decrease, gp3 IOPS below 400 GiB, autoscaling limit,
  final snapshots of failed instances);
- Blue/Green deployments with real data (bluegreen.py, replication.py), CA certificates per
  instance (certificates.py, certs.py), engine upgrades, pending maintenance and the
  maintenance window (maintenance.py).
Statuses are computed from timestamps when a request looks at them; nothing sleeps.
"""

from __future__ import annotations

import datetime
import logging
import os
import random
import resource
import string
import threading
import time
import uuid

from localstack.aws.api import CommonServiceException, RequestContext
from localstack.aws.spec import load_service
from localstack.services.moto import call_moto, call_moto_with_request
from moto.rds.models import DBInstance, rds_backends

from local_rds import extensions, versions
from local_rds.bluegreen import BlueGreen
from local_rds.certificates import Certificates
from local_rds.faults import FAULTS
from local_rds.instance import OWNED_STATUSES, Instance, real_name_for
from local_rds.maintenance import Maintenance
from local_rds.paging import page
from local_rds.pgadmin import PgAdmin
from local_rds.quotas import QUOTAS
from local_rds.relay import RelayHub, Route, server_tls_context

LOG = logging.getLogger(__name__)

# RDS takes no final snapshot of instances in these statuses (DeleteDBInstance needs
# SkipFinalSnapshot); `storage-full` and others still get one.
NO_FINAL_SNAPSHOT_STATUSES = {"failed", "incompatible-restore", "incompatible-network"}


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


class LocalRdsState:
    def __init__(self):
        self.lock = threading.RLock()
        self.instances: dict[tuple[str, str, str], Instance] = {}
        self.creating_secs = _env_float("LOCAL_RDS_CREATING_SECS", 5)
        self.modifying_secs = _env_float("LOCAL_RDS_MODIFYING_SECS", 2)
        self.stopping_secs = _env_float("LOCAL_RDS_STOPPING_SECS", 2)
        self.starting_secs = _env_float("LOCAL_RDS_STARTING_SECS", 2)
        self.catalog = versions.Catalog(versions.load())
        # (account, region) -> automated backups kept after DeleteDBInstance(DeleteAutomatedBackups=false)
        self.retained_backups: dict[tuple[str, str], list[dict]] = {}
        # (account, region, snapshot id) -> the database holding a final snapshot's contents
        # (a copy of the instance's database taken at its deletion; dropped with the snapshot).
        self.snapshot_copies: dict[tuple[str, str, str], str] = {}
        self.endpoint_host = os.environ.get("LOCAL_RDS_ENDPOINT_HOST", "127.0.0.1")
        socket_dir = os.environ.get("LOCAL_RDS_PG_SOCKET_DIR") or None
        pg_port = int(os.environ.get("LOCAL_RDS_PG_PORT", "5432"))
        conninfo = os.environ.get("LOCAL_RDS_PG_ADMIN_DSN") or (
            f"host={socket_dir or '127.0.0.1'} port={pg_port} user=postgres dbname=postgres"
        )
        _raise_fd_limit()
        self.admin = PgAdmin(conninfo, workers=int(os.environ.get("LOCAL_RDS_ADMIN_WORKERS", "2")))
        fallback = server_tls_context(os.environ.get("LOCAL_RDS_TLS_CERT"), os.environ.get("LOCAL_RDS_TLS_KEY"))
        self.certs = Certificates(os.environ.get("LOCAL_RDS_TLS_DIR") or None, fallback)
        self.relays = RelayHub(self.endpoint_host, socket_dir, pg_port, self.certs.tls_context)
        self.bluegreen = BlueGreen(self)
        self.maintenance = Maintenance(self)
        self.admin.drop_leftovers(self._is_live_name)
        _patch_moto_address()
        _patch_moto_windows()
        _patch_moto_performance_insights()

    def _is_live_name(self, name: str) -> bool:
        with self.lock:
            return any(i.real_name == name for i in self.instances.values()) or name in self.snapshot_copies.values()

    def db(self, inst: Instance):
        """moto's record of a local instance (None once deleted)."""
        return rds_backends[inst.account][inst.region].databases.get(inst.identifier)

    def register(self, db, master_user: str, db_name: str | None, ca: str, info: dict, queue_key: str = "") -> Instance:
        """Gives moto's new instance `db` its endpoint (a relay port) and local state; the
        caller queues the work that makes its database."""
        real = real_name_for(db.db_instance_identifier)
        route = Route(master_user=master_user, db_name=db_name, real_role=real, real_db=real, ca=ca)
        port = self.relays.open(route)
        db.port = port
        db._local_rds_address = self.endpoint_host
        db.dbi_resource_id = _dbi_resource_id()  # moto gives every instance the same one
        db._local_rds_backup_arn = f"arn:aws:rds:{db.region}:{db.account_id}:auto-backup:ab-{uuid.uuid4().hex[:26]}"
        inst = Instance(
            account=db.account_id,
            region=db.region,
            identifier=db.db_instance_identifier,
            real_name=real,
            port=port,
            route=route,
            created=time.monotonic(),
            creating_secs=self.creating_secs,
            stopping_secs=self.stopping_secs,
            starting_secs=self.starting_secs,
            info=info,
            queue_key=queue_key,
            ca=ca,
        )
        route.gate = inst.accepts_connections
        self.instances[(inst.account, inst.region, inst.identifier)] = inst
        db.status = "creating"
        self.write_moto(inst)
        return inst

    def write_moto(self, inst: Instance, response: dict | None = None) -> None:
        """What moto describes of the parts this provider keeps: the CA and its server
        certificate, pending modifications, the status. Also into a response moto made."""
        db = self.db(inst)
        details = self.certs.details(inst.ca)
        pending = dict(inst.pending_values)
        if db is not None:
            db.ca_certificate_identifier = inst.ca
            db.certificate_details = details
            db.pending_modified_values = pending or None
        out = (response or {}).get("DBInstance")
        if out is not None:
            out["CACertificateIdentifier"] = inst.ca
            out["CertificateDetails"] = details
            if db is not None:
                out["EngineVersion"] = db.engine_version
            if pending:
                out["PendingModifiedValues"] = pending
            else:
                out.pop("PendingModifiedValues", None)

    def unregister(self, inst: Instance) -> None:
        """The instance is gone: its endpoint closes now, its database and role are dropped
        after the work queued before (on its queue)."""
        self.instances.pop((inst.account, inst.region, inst.identifier), None)
        self.relays.close(inst.port)
        self.bluegreen.on_deleted(inst)
        self.admin.submit(inst.queue_key, lambda conn: _drop(conn, inst, self.admin))

    def find(self, identifier: str, account: str | None = None, region: str | None = None) -> list[Instance]:
        with self.lock:
            return [
                i
                for (a, r, ident), i in self.instances.items()
                if ident == identifier and account in (None, a) and region in (None, r)
            ]

    def refresh(self) -> None:
        """Writes the computed statuses into moto's model before moto answers."""
        now = time.monotonic()
        for inst in list(self.instances.values()):
            inst.finish_activity(now)
            db = rds_backends[inst.account][inst.region].databases.get(inst.identifier)
            if db is not None and db.status in OWNED_STATUSES:
                db.status = inst.status(now)
            if inst.power == "starting" and now >= inst.power_since + inst.starting_secs:
                inst.power = "on"
        self.bluegreen.refresh(now)

    def on_created(self, inst: Instance) -> None:
        def task(conn):
            with self.lock:
                if self.instances.get((inst.account, inst.region, inst.identifier)) is not inst:
                    return  # deleted before it was created; the drop follows
            started = time.monotonic()
            try:
                PgAdmin.create(conn, inst.real_name, inst.info["password"])
            except Exception as e:
                # Shown as `failed` unless a retry (after a lost connection) succeeds.
                LOG.error("local RDS: creating %s failed: %s", inst.identifier, e)
                inst.error = str(e)
                raise
            inst.error = None
            inst.info.pop("password", None)
            inst.ready = True
            LOG.info(
                "local RDS: %s ready as %s on port %d (%.0f ms)",
                inst.identifier,
                inst.real_name,
                inst.port,
                (time.monotonic() - started) * 1000,
            )

        self.admin.submit(inst.queue_key, task)


_STATE: LocalRdsState | None = None
_STATE_LOCK = threading.Lock()


def state() -> LocalRdsState:
    global _STATE
    with _STATE_LOCK:
        if _STATE is None:
            _STATE = LocalRdsState()
        return _STATE


def _raise_fd_limit() -> None:
    # Each instance holds a listening socket, each client connection two sockets.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 20, hard))
        except (ValueError, OSError):
            pass


def _patch_moto_address() -> None:
    """moto computes Endpoint.Address from the identifier; let an instance carry its own."""
    original = DBInstance.address
    if getattr(original, "_local_rds", False):
        return

    def address(self):
        return getattr(self, "_local_rds_address", None) or original.fget(self)

    prop = property(address)
    prop.fget._local_rds = True
    DBInstance.address = prop


_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAY = 24 * 60
_WEEK = 7 * _DAY


def windows_overlap(backup: str, maintenance: str) -> bool:
    """True when the daily backup window and the weekly maintenance window share a minute.

    Windows that only touch (03:00-04:00 and sun:04:00-sun:05:00) do not overlap, as on RDS;
    moto counts them as overlapping.
    """
    b_start, b_end = (int(h) * 60 + int(m) for h, m in (t.split(":") for t in backup.split("-")))
    if b_end <= b_start:
        b_end += _DAY
    (sd, sh, sm), (ed, eh, em) = (t.split(":") for t in maintenance.lower().split("-"))
    m_start = _DAYS.index(sd) * _DAY + int(sh) * 60 + int(sm)
    m_end = _DAYS.index(ed) * _DAY + int(eh) * 60 + int(em)
    if m_end <= m_start:
        m_end += _WEEK
    for day in range(-1, 8):
        for shift in (-_WEEK, 0, _WEEK):
            start, end = day * _DAY + b_start, day * _DAY + b_end
            if min(end, m_end + shift) - max(start, m_start + shift) > 0:
                return True
    return False


def _patch_moto_windows() -> None:
    """Let windows that only touch pass, as RDS does; moto's other checks still apply."""
    import moto.rds.models as models

    original = models.valid_preferred_maintenance_window
    if getattr(original, "_local_rds", False):
        return

    def valid(maintenance_window, backup_window):
        try:
            if backup_window and windows_overlap(backup_window, maintenance_window):
                return "The backup window and maintenance window must not overlap."
        except (ValueError, IndexError):
            return original(maintenance_window, backup_window)
        return original(maintenance_window, None)

    valid._local_rds = True
    models.valid_preferred_maintenance_window = valid


def _patch_moto_performance_insights() -> None:
    """moto keeps EnablePerformanceInsights but never describes PerformanceInsightsEnabled."""
    if getattr(DBInstance, "_local_rds_pi", False):
        return

    def enabled(self):
        return bool(getattr(self, "enable_performance_insights", False))

    DBInstance.performance_insights_enabled = property(enabled)
    DBInstance._local_rds_pi = True


def _error(code: str, message: str, status: int = 400) -> CommonServiceException:
    return CommonServiceException(code, message, status_code=status, sender_fault=status < 500)


def _invalid_state(message: str) -> CommonServiceException:
    return _error("InvalidDBInstanceState", message)


def _dbi_resource_id() -> str:
    return "db-" + "".join(random.choices(string.ascii_uppercase + string.digits, k=26))


_page = page


def _check_storage_settings(
    engine: str, storage_type: str | None, allocated: int, request: dict, current_max: int | None, creating: bool
) -> None:
    """RDS's rules for gp3 IOPS/throughput and storage autoscaling that moto does not apply."""
    if (storage_type or "gp2") == "gp3" and allocated < 400 and (request.get("Iops") or request.get("StorageThroughput")):
        raise _error(
            "InvalidParameterCombination",
            f"You can't specify IOPS or storage throughput for engine {engine} and a storage size less than 400.",
        )
    max_storage = request.get("MaxAllocatedStorage")
    if max_storage is None:
        return
    max_storage = int(max_storage)
    if creating and max_storage <= allocated:
        raise _error("InvalidParameterCombination", "Max storage size must be greater than storage size")
    if allocated < max_storage < allocated * 1.1:
        raise _error(
            "InvalidParameterCombination", "The maximum allocated storage must be increased by at least 10 percent."
        )


def _automated_backup(db, account: str, region: str, status: str, arn: str | None = None) -> dict:
    created = getattr(db, "created", None) or datetime.datetime.now(datetime.timezone.utc)
    out = {
        "DBInstanceArn": db.db_instance_arn,
        "DbiResourceId": db.dbi_resource_id,
        "Region": region,
        "DBInstanceIdentifier": db.db_instance_identifier,
        "RestoreWindow": {"EarliestTime": created, "LatestTime": datetime.datetime.now(datetime.timezone.utc)},
        "AllocatedStorage": int(db.allocated_storage or 0),
        "Status": status,
        "Port": int(getattr(db, "_local_rds_port", None) or 5432),
        "AvailabilityZone": db.availability_zone,
        "InstanceCreateTime": created,
        "MasterUsername": db.master_username,
        "Engine": db.engine,
        "EngineVersion": db.engine_version,
        "LicenseModel": "postgresql-license",
        "StorageType": db.storage_type,
        "Encrypted": bool(db.storage_encrypted),
        "IAMDatabaseAuthenticationEnabled": False,
        "BackupRetentionPeriod": int(db.backup_retention_period or 0),
        "DBInstanceAutomatedBackupsArn": arn
        or f"arn:aws:rds:{region}:{account}:auto-backup:ab-{uuid.uuid4().hex[:26]}",
        "BackupTarget": "region",
    }
    if db.kms_key_id:
        out["KmsKeyId"] = db.kms_key_id
    if db.iops:
        out["Iops"] = int(db.iops)
    if db.storage_throughput:
        out["StorageThroughput"] = int(db.storage_throughput)
    return out


def _drop(conn, inst: Instance, admin: PgAdmin) -> None:
    started = time.monotonic()
    admin.drop(conn, inst.real_name)
    LOG.info(
        "local RDS: %s deleted, dropped %s (%.0f ms)",
        inst.identifier,
        inst.real_name,
        (time.monotonic() - started) * 1000,
    )


class LocalRdsProvider:
    service = "rds"

    def __init__(self, st: LocalRdsState):
        self.state = st

    def dispatch_table(self) -> dict:
        table = {}
        for op in load_service("rds").operation_names:
            table[op] = self._handler(op)
        return table

    def _handler(self, op: str):
        special = getattr(self, f"_op_{op}", None)

        def handle(context: RequestContext, request: dict):
            FAULTS.apply(op, request or {})
            with self.state.lock:
                self.state.refresh()
                if special is not None:
                    return special(context, request or {})
                return call_moto(context)

        return handle

    def _backend(self, context: RequestContext):
        return rds_backends[context.account_id][context.region]

    def _instance(self, context: RequestContext, ident: str | None) -> Instance | None:
        return self.state.instances.get((context.account_id, context.region, (ident or "").lower()))

    # --- operations that differ from moto ---

    def _op_DescribeDBEngineVersions(self, context: RequestContext, request: dict):
        return self.state.catalog.describe(request)

    def _op_DescribeEngineDefaultParameters(self, context: RequestContext, request: dict):
        found = extensions.describe(request.get("DBParameterGroupFamily") or "")
        return found if found is not None else call_moto(context)

    def _op_DescribeAccountAttributes(self, context: RequestContext, request: dict):
        return QUOTAS.describe(context.account_id, context.region)

    # --- Blue/Green deployments (bluegreen.py), CAs (certificates.py), maintenance (maintenance.py) ---

    def _op_CreateBlueGreenDeployment(self, context: RequestContext, request: dict):
        return self.state.bluegreen.create(context, request)

    def _op_DescribeBlueGreenDeployments(self, context: RequestContext, request: dict):
        return self.state.bluegreen.describe(context, request)

    def _op_SwitchoverBlueGreenDeployment(self, context: RequestContext, request: dict):
        return self.state.bluegreen.switchover(context, request)

    def _op_DeleteBlueGreenDeployment(self, context: RequestContext, request: dict):
        return self.state.bluegreen.delete(context, request)

    def _op_ListTagsForResource(self, context: RequestContext, request: dict):
        arn = request.get("ResourceName")
        if self.state.bluegreen.owns_arn(arn):
            return self.state.bluegreen.list_tags(context, arn)
        return call_moto(context)

    def _op_AddTagsToResource(self, context: RequestContext, request: dict):
        arn = request.get("ResourceName")
        if self.state.bluegreen.owns_arn(arn):
            return self.state.bluegreen.add_tags(context, arn, request.get("Tags") or [])
        return call_moto(context)

    def _op_RemoveTagsFromResource(self, context: RequestContext, request: dict):
        arn = request.get("ResourceName")
        if self.state.bluegreen.owns_arn(arn):
            return self.state.bluegreen.remove_tags(context, arn, request.get("TagKeys") or [])
        return call_moto(context)

    def _op_DescribeCertificates(self, context: RequestContext, request: dict):
        return self.state.certs.describe(context.account_id, context.region, request)

    def _op_ModifyCertificates(self, context: RequestContext, request: dict):
        return self.state.certs.modify(context.account_id, context.region, request)

    def _op_DescribePendingMaintenanceActions(self, context: RequestContext, request: dict):
        return self.state.maintenance.describe(context.account_id, context.region, request)

    def _op_ApplyPendingMaintenanceAction(self, context: RequestContext, request: dict):
        return self.state.maintenance.apply(context.account_id, context.region, request)

    def _op_CreateDBInstance(self, context: RequestContext, request: dict):
        engine = str(request.get("Engine", "")).lower()
        allocated = int(request.get("AllocatedStorage") or 20)
        QUOTAS.check_new_instance(context.account_id, context.region, allocated)
        if engine != "postgres":
            return call_moto(context)
        if not request.get("MasterUsername"):
            raise CommonServiceException(
                "InvalidParameterValue", "The parameter MasterUsername must be provided and must not be blank.", 400, True
            )
        if not request.get("MasterUserPassword") and not request.get("ManageMasterUserPassword"):
            raise CommonServiceException(
                "InvalidParameterValue", "The parameter MasterUserPassword must be provided and must not be blank.", 400, True
            )
        st = self.state
        version = st.catalog.resolve(request.get("EngineVersion"))
        ca = (
            st.certs.check(request["CACertificateIdentifier"])
            if request.get("CACertificateIdentifier")
            else st.certs.default_for(context.account_id, context.region)
        )
        storage_type = request.get("StorageType") or ("io1" if request.get("Iops") else "gp2")
        _check_storage_settings("postgres", storage_type, allocated, request, None, creating=True)
        if request.get("EngineVersion") != version:
            request = dict(request, EngineVersion=version)
            response = call_moto_with_request(context, request)
        else:
            response = call_moto(context)
        ident = request["DBInstanceIdentifier"]
        db = rds_backends[context.account_id][context.region].databases[ident]
        # moto drops these at create (it keeps them only from ModifyDBInstance).
        if request.get("EnablePerformanceInsights"):
            db.enable_performance_insights = True
            db.performance_insights_retention_period = int(request.get("PerformanceInsightsRetentionPeriod") or 7)
        password = getattr(db, "_master_user_password", None) or request.get("MasterUserPassword")
        inst = st.register(db, request["MasterUsername"], request.get("DBName"), ca, {"password": password})
        st.on_created(inst)
        out = response.get("DBInstance")
        if out is not None:
            out["DBInstanceStatus"] = "creating"
            out["DbiResourceId"] = db.dbi_resource_id
            out.pop("Endpoint", None)  # RDS has no endpoint until the instance is up
        st.write_moto(inst, response)
        return response

    def _op_ModifyDBInstance(self, context: RequestContext, request: dict):
        st = self.state
        ident = request.get("DBInstanceIdentifier")
        inst = self._instance(context, ident)
        db = self._backend(context).databases.get(ident) if ident else None
        if inst is not None:
            st.bluegreen.check_not_switching(inst)
            status = inst.status(time.monotonic())
            if status not in ("available", "modifying"):
                raise _invalid_state(f"Database instance is not in available state (status: {status}).")
        if db is not None:
            current = int(db.allocated_storage or 0)
            new = int(request.get("AllocatedStorage") or current)
            if new < current:
                raise _error(
                    "InvalidParameterCombination",
                    f"Invalid storage size for engine name {db.engine} and storage type {db.storage_type}: {new}",
                )
            QUOTAS.check_storage(context.account_id, context.region, new - current)
            _check_storage_settings(
                db.engine, request.get("StorageType") or db.storage_type, new, request, None, creating=False
            )
        if inst is None or db is None:
            return call_moto(context)
        # Engine version and CA: checked here, applied now or in the maintenance window (moto
        # would apply them at once).
        change = st.maintenance.check_modify(inst, db, request)
        response = call_moto_with_request(context, {k: v for k, v in request.items() if k not in change.fields})
        new_ident = request.get("NewDBInstanceIdentifier")
        if new_ident and new_ident.lower() != inst.identifier:
            st.instances.pop((inst.account, inst.region, inst.identifier))
            inst.identifier = new_ident.lower()
            st.instances[(inst.account, inst.region, inst.identifier)] = inst
        if request.get("MasterUserPassword"):
            name, password = inst.real_name, request["MasterUserPassword"]
            st.admin.submit(inst.queue_key, lambda conn: PgAdmin.set_password(conn, name, password))
        inst.modifying_until = time.monotonic() + st.modifying_secs
        st.maintenance.apply_modify(inst, change, bool(request.get("ApplyImmediately")))
        if st.modifying_secs > 0 or inst.activity:
            self._write_status(inst, response)
        st.write_moto(inst, response)
        return response

    def _op_RebootDBInstance(self, context: RequestContext, request: dict):
        inst = self._instance(context, request.get("DBInstanceIdentifier"))
        if inst is None:
            return call_moto(context)
        now = time.monotonic()
        status = inst.status(now)
        if status not in ("available", "modifying"):
            raise _invalid_state(f"Database instance is not in available state (status: {status}).")
        response = call_moto(context)
        self.state.maintenance.reboot(inst, now)
        self._write_status(inst, response)
        return response

    def _op_StopDBInstance(self, context: RequestContext, request: dict):
        ident = request.get("DBInstanceIdentifier")
        inst = self._instance(context, ident)
        if inst is None:
            return call_moto(context)
        now = time.monotonic()
        if inst.status(now) != "available":
            raise _invalid_state(f"Instance {inst.identifier} is not in available state.")
        if request.get("DBSnapshotIdentifier"):
            QUOTAS.check_manual_snapshot(context.account_id, context.region)
        response = call_moto(context)
        inst.stop(now)
        self.state.relays.drop_connections(inst.port)
        self._write_status(inst, response)
        return response

    def _op_StartDBInstance(self, context: RequestContext, request: dict):
        ident = request.get("DBInstanceIdentifier")
        inst = self._instance(context, ident)
        if inst is None:
            return call_moto(context)
        now = time.monotonic()
        if inst.status(now) != "stopped":
            raise _invalid_state(f"Instance {inst.identifier} is not stopped, it cannot be started.")
        response = call_moto(context)
        inst.start(now)
        self._write_status(inst, response)
        return response

    def _write_status(self, inst: Instance, response: dict | None = None) -> None:
        status = inst.status(time.monotonic())
        db = rds_backends[inst.account][inst.region].databases.get(inst.identifier)
        if db is not None:
            db.status = status
        if response is not None and response.get("DBInstance") is not None:
            response["DBInstance"]["DBInstanceStatus"] = status

    def _op_CreateDBSnapshot(self, context: RequestContext, request: dict):
        QUOTAS.check_manual_snapshot(context.account_id, context.region)
        return call_moto(context)

    def _op_DeleteDBSnapshot(self, context: RequestContext, request: dict):
        response = call_moto(context)
        key = (context.account_id, context.region, request.get("DBSnapshotIdentifier") or "")
        with self.state.lock:
            copy = self.state.snapshot_copies.pop(key, None)
        if copy is not None:
            self.state.admin.submit(copy, lambda conn: self.state.admin.drop_copy(conn, copy))
        return response

    def _op_DescribeDBSnapshots(self, context: RequestContext, request: dict):
        if request.get("MaxRecords") is None and not request.get("Marker"):
            return call_moto(context)
        rest = {k: v for k, v in request.items() if k not in ("MaxRecords", "Marker")}
        response = call_moto_with_request(context, rest)
        return _page(response.get("DBSnapshots") or [], request, "DBSnapshots")

    def _op_DescribeDBInstanceAutomatedBackups(self, context: RequestContext, request: dict):
        account, region = context.account_id, context.region
        backend = self._backend(context)
        items = [
            _automated_backup(db, account, region, "active", getattr(db, "_local_rds_backup_arn", None))
            for db in backend.databases.values()
            if int(db.backup_retention_period or 0) > 0
        ]
        items += [dict(b) for b in self.state.retained_backups.get((account, region), [])]
        filters = {f["Name"]: f.get("Values") or [] for f in request.get("Filters") or []}
        ident = (request.get("DBInstanceIdentifier") or "").lower()
        resource = request.get("DbiResourceId")
        arn = request.get("DBInstanceAutomatedBackupsArn")

        def keep(b: dict) -> bool:
            if ident and b["DBInstanceIdentifier"] != ident:
                return False
            if resource and b["DbiResourceId"] != resource:
                return False
            if arn and b["DBInstanceAutomatedBackupsArn"] != arn:
                return False
            if "db-instance-id" in filters and not (
                {b["DBInstanceIdentifier"], b["DBInstanceArn"]} & {v.lower() if not v.startswith("arn:") else v for v in filters["db-instance-id"]}
            ):
                return False
            if "dbi-resource-id" in filters and b["DbiResourceId"] not in filters["dbi-resource-id"]:
                return False
            if "status" in filters and b["Status"] not in filters["status"]:
                return False
            return True

        items = [b for b in items if keep(b)]
        if not items and (ident or resource or arn):
            raise _error("DBInstanceAutomatedBackupNotFound", "No automated backup for this DB instance was found.", 404)
        return _page(items, request, "DBInstanceAutomatedBackups")

    def _op_DeleteDBInstanceAutomatedBackup(self, context: RequestContext, request: dict):
        kept = self.state.retained_backups.get((context.account_id, context.region), [])
        resource = request.get("DbiResourceId")
        arn = request.get("DBInstanceAutomatedBackupsArn")
        for b in kept:
            if (resource and b["DbiResourceId"] == resource) or (arn and b["DBInstanceAutomatedBackupsArn"] == arn):
                kept.remove(b)
                return {"DBInstanceAutomatedBackup": dict(b, Status="deleting")}
        raise _error("DBInstanceAutomatedBackupNotFound", "No automated backup for this DB instance was found.", 404)

    def _op_DeleteDBInstance(self, context: RequestContext, request: dict):
        st = self.state
        ident = request.get("DBInstanceIdentifier")
        backend = self._backend(context)
        db = backend.databases.get(ident) if ident else None
        inst = self._instance(context, ident)
        if inst is not None:
            st.bluegreen.check_not_switching(inst)
        final = request.get("FinalDBSnapshotIdentifier")
        if not request.get("SkipFinalSnapshot") and db is not None and not db.deletion_protection:
            if not final:
                raise CommonServiceException(
                    "InvalidParameterCombination",
                    "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.",
                    400,
                    True,
                )
            status = inst.status(time.monotonic()) if inst is not None else db.status
            if status in NO_FINAL_SNAPSHOT_STATUSES:
                raise _invalid_state(
                    f"Instance {db.db_instance_identifier} is in the {status} state: a final snapshot can't be "
                    "taken. Delete it with SkipFinalSnapshot."
                )
            QUOTAS.check_manual_snapshot(context.account_id, context.region)
        keep_backups = request.get("DeleteAutomatedBackups") is False
        retained = None
        if db is not None and keep_backups and int(db.backup_retention_period or 0) > 0:
            retained = _automated_backup(
                db, context.account_id, context.region, "retained", getattr(db, "_local_rds_backup_arn", None)
            )
        response = call_moto(context)
        if retained is not None:
            st.retained_backups.setdefault((context.account_id, context.region), []).append(retained)
        if final and not request.get("SkipFinalSnapshot"):
            snap = backend.database_snapshots.get(final)
            if snap is not None:
                snap.tags = [dict(t) for t in snap.tags]  # its own copy, not the instance's list
                if inst is not None and inst.ready:
                    # The snapshot keeps the database's contents (readable through the control
                    # endpoint; restoring is not emulated).
                    copy = real_name_for("snap")
                    with st.lock:
                        st.snapshot_copies[(context.account_id, context.region, final)] = copy
                    source = inst.real_name
                    st.admin.submit(inst.queue_key, lambda conn: st.admin.copy(conn, source, copy))
        if inst is not None:
            st.unregister(inst)
        return response
