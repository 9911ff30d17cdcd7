"""The `rds` provider: moto's RDS model for the API, real PostgreSQL databases for the data.

Every RDS operation goes to moto (bundled with LocalStack). For engine `postgres`, this provider
adds what moto lacks:
- CreateDBInstance creates a login role (the master password) and a database it owns in the
  tenant PostgreSQL server, and gives the instance an endpoint of its own (a relay port, see
  relay.py) that maps the master user and DBName onto them;
- statuses: `creating` until LOCAL_RDS_CREATING_SECS have passed and the database exists,
  `modifying` for LOCAL_RDS_MODIFYING_SECS after ModifyDBInstance, `failed` on request;
- DeleteDBInstance closes the endpoint and drops the database and role;
- ModifyDBInstance with MasterUserPassword changes the role's password.
Statuses are computed from timestamps when a request looks at them; nothing sleeps.
"""

from __future__ import annotations

import logging
import os
import re
import resource
import threading
import time
import uuid
from dataclasses import dataclass, field

from localstack.aws.api import CommonServiceException, RequestContext
from localstack.aws.spec import load_service
from localstack.services.moto import call_moto
from moto.rds.models import DBInstance, rds_backends

from local_rds.faults import FAULTS
from local_rds.pgadmin import PREFIX, PgAdmin
from local_rds.relay import RelayHub, Route

LOG = logging.getLogger(__name__)

# Statuses this provider computes; any other (e.g. `stopped`, set by moto) is left alone.
OWNED_STATUSES = {"available", "creating", "modifying", "failed", "backing-up"}


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass
class Instance:
    account: str
    region: str
    identifier: str
    real_name: str  # role and database in the tenant server
    port: int
    route: Route
    created: float
    creating_secs: float
    ready: bool = False  # database and role exist
    error: str | None = None
    forced_status: str | None = None
    modifying_until: float = 0.0
    info: dict = field(default_factory=dict)

    def status(self, now: float) -> str:
        if self.forced_status:
            return self.forced_status
        if self.error:
            return "failed"
        if not self.ready or now < self.created + self.creating_secs:
            return "creating"
        if now < self.modifying_until:
            return "modifying"
        return "available"

    def describe(self, now: float) -> dict:
        return {
            "account": self.account,
            "region": self.region,
            "identifier": self.identifier,
            "status": self.status(now),
            "port": self.port,
            "real_database": self.real_name,
            "real_role": self.real_name,
            "ready": self.ready,
            "error": self.error,
        }


def real_name_for(identifier: str) -> str:
    base = re.sub(r"[^a-z0-9_]", "_", identifier.lower())[:40]
    return f"{PREFIX}{base}_{uuid.uuid4().hex[:10]}"


class LocalRdsState:
    def __init__(self):
        self.lock = threading.RLock()
        self.instances: dict[tuple[str, str, str], Instance] = {}
        self.creating_secs = _env_float("LOCAL_RDS_CREATING_SECS", 5)
        self.modifying_secs = _env_float("LOCAL_RDS_MODIFYING_SECS", 2)
        self.endpoint_host = os.environ.get("LOCAL_RDS_ENDPOINT_HOST", "127.0.0.1")
        socket_dir = os.environ.get("LOCAL_RDS_PG_SOCKET_DIR") or None
        pg_port = int(os.environ.get("LOCAL_RDS_PG_PORT", "5432"))
        conninfo = os.environ.get("LOCAL_RDS_PG_ADMIN_DSN") or (
            f"host={socket_dir or '127.0.0.1'} port={pg_port} user=postgres dbname=postgres"
        )
        _raise_fd_limit()
        self.admin = PgAdmin(conninfo, workers=int(os.environ.get("LOCAL_RDS_ADMIN_WORKERS", "2")))
        self.relays = RelayHub(self.endpoint_host, socket_dir, pg_port)
        self.admin.drop_leftovers(self._is_live_name)
        _patch_moto_address()
        _patch_moto_windows()

    def _is_live_name(self, name: str) -> bool:
        with self.lock:
            return any(i.real_name == name for i in self.instances.values())

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
        for inst in self.instances.values():
            db = rds_backends[inst.account][inst.region].databases.get(inst.identifier)
            if db is not None and db.status in OWNED_STATUSES:
                db.status = inst.status(now)

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

        self.admin.submit(inst.real_name, task)


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


def _invalid_state(message: str) -> CommonServiceException:
    return CommonServiceException("InvalidDBInstanceState", message, status_code=400, sender_fault=True)


def _drop(conn, inst: Instance) -> None:
    started = time.monotonic()
    PgAdmin.drop(conn, inst.real_name)
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

    # --- operations that differ from moto ---

    def _op_CreateDBInstance(self, context: RequestContext, request: dict):
        if str(request.get("Engine", "")).lower() != "postgres":
            return call_moto(context)
        if not request.get("MasterUsername"):
            raise CommonServiceException(
                "InvalidParameterValue", "The parameter MasterUsername must be provided and must not be blank.", 400, True
            )
        if not request.get("MasterUserPassword") and not request.get("ManageMasterUserPassword"):
            raise CommonServiceException(
                "InvalidParameterValue", "The parameter MasterUserPassword must be provided and must not be blank.", 400, True
            )
        response = call_moto(context)
        st = self.state
        ident = request["DBInstanceIdentifier"]
        db = rds_backends[context.account_id][context.region].databases[ident]
        password = getattr(db, "_master_user_password", None) or request.get("MasterUserPassword")
        real = real_name_for(ident)
        route = Route(
            master_user=request["MasterUsername"],
            db_name=request.get("DBName"),
            real_role=real,
            real_db=real,
        )
        port = st.relays.open(route)
        db.port = port
        db._local_rds_address = st.endpoint_host
        inst = Instance(
            account=context.account_id,
            region=context.region,
            identifier=ident,
            real_name=real,
            port=port,
            route=route,
            created=time.monotonic(),
            creating_secs=st.creating_secs,
            info={"password": password},
        )
        st.instances[(inst.account, inst.region, ident)] = inst
        db.status = "creating"
        st.on_created(inst)
        out = response.get("DBInstance")
        if out is not None:
            out["DBInstanceStatus"] = "creating"
            out.pop("Endpoint", None)  # RDS has no endpoint until the instance is up
        return response

    def _op_ModifyDBInstance(self, context: RequestContext, request: dict):
        st = self.state
        ident = request.get("DBInstanceIdentifier")
        key = (context.account_id, context.region, ident)
        inst = st.instances.get(key)
        if inst is not None:
            status = inst.status(time.monotonic())
            if status not in ("available", "modifying"):
                raise _invalid_state(f"Database instance is not in available state (status: {status}).")
        response = call_moto(context)
        if inst is None:
            return response
        new_ident = request.get("NewDBInstanceIdentifier")
        if new_ident and new_ident != ident:
            st.instances.pop(key)
            inst.identifier = new_ident
            st.instances[(inst.account, inst.region, new_ident)] = inst
        if request.get("MasterUserPassword"):
            name, password = inst.real_name, request["MasterUserPassword"]
            st.admin.submit(name, lambda conn: PgAdmin.set_password(conn, name, password))
        inst.modifying_until = time.monotonic() + st.modifying_secs
        if st.modifying_secs > 0 and response.get("DBInstance") is not None:
            response["DBInstance"]["DBInstanceStatus"] = "modifying"
            db = rds_backends[inst.account][inst.region].databases.get(inst.identifier)
            if db is not None:
                db.status = "modifying"
        return response

    def _op_DeleteDBInstance(self, context: RequestContext, request: dict):
        st = self.state
        ident = request.get("DBInstanceIdentifier")
        if not request.get("SkipFinalSnapshot") and not request.get("FinalDBSnapshotIdentifier"):
            backend = rds_backends[context.account_id][context.region]
            if ident in backend.databases and not backend.databases[ident].deletion_protection:
                raise CommonServiceException(
                    "InvalidParameterCombination",
                    "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.",
                    400,
                    True,
                )
        response = call_moto(context)
        inst = st.instances.pop((context.account_id, context.region, ident), None)
        if inst is not None:
            st.relays.close(inst.port)
            st.admin.submit(inst.real_name, lambda conn: _drop(conn, inst))
        return response
