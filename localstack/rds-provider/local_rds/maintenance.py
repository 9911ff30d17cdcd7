"""An instance's engine version and CA over its life, and RDS's maintenance.

- ModifyDBInstance `EngineVersion` (checked against ValidUpgradeTarget; a new major needs
  `AllowMajorVersionUpgrade`) and `CACertificateIdentifier` (unknown: `CertificateNotFound`)
  apply now with `ApplyImmediately`, else they wait in `PendingModifiedValues` for the
  maintenance window. An engine upgrade shows `upgrading` and closes the endpoint meanwhile
  (the server restarts); the new EngineVersion is described once it is done. A CA rotation
  presents the new CA's certificate to new connections and ends open sessions (a restart)
  unless `CertificateRotationRestart=false`.
- Pending maintenance actions (set through the control endpoint), DescribePendingMaintenanceActions
  (filter `db-instance-id`, paging) and ApplyPendingMaintenanceAction (`immediate`,
  `next-maintenance`, `undo-opt-in`).
- The maintenance window, run on demand (control endpoint): pending modifications, opted-in
  actions and actions whose auto-apply or forced date has passed are applied.
- Automatic minor upgrades on demand (control endpoint), RebootDBInstance.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field

from local_rds.instance import Instance
from local_rds.paging import error, filters_of, page

ACTIONS = ("ca-certificate-rotation", "db-upgrade", "hardware-maintenance", "os-upgrade", "system-update")
OPT_IN_TYPES = ("immediate", "next-maintenance", "undo-opt-in")
DESCRIPTIONS = {
    "ca-certificate-rotation": "CA certificate rotation to {target}",
    "db-upgrade": "Automatic minor version upgrade to postgres {target}",
    "hardware-maintenance": "Hardware maintenance",
    "os-upgrade": "New Operating System upgrade is available",
    "system-update": "New Operating System update is available",
}
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def next_window(window: str | None, after: datetime.datetime) -> datetime.datetime:
    """The start of the first weekly maintenance window (e.g. `sun:04:00-sun:04:30`) at or after
    `after`."""
    try:
        day, hh, mm = (window or "").lower().split("-")[0].split(":")
        weekday, minutes = DAYS.index(day), int(hh) * 60 + int(mm)
    except (ValueError, IndexError):
        weekday, minutes = 6, 4 * 60
    start = after.replace(hour=0, minute=0, second=0, microsecond=0) + datetime.timedelta(minutes=minutes)
    start += datetime.timedelta(days=(weekday - after.weekday()) % 7)
    if start < after:
        start += datetime.timedelta(days=7)
    return start


@dataclass
class Change:
    """What a ModifyDBInstance asks of the engine version and the CA."""

    version: str | None = None
    ca: str | None = None
    restart: bool = True
    fields: set = field(default_factory=set)  # request fields moto must not see


@dataclass
class PendingAction:
    action: str
    description: str
    target: str | None = None  # db-upgrade: engine version; ca-certificate-rotation: CA
    auto_applied_after: datetime.datetime | None = None
    forced_apply: datetime.datetime | None = None
    opt_in: str | None = None

    def due(self, now: datetime.datetime) -> bool:
        return (
            self.opt_in == "next-maintenance"
            or (self.auto_applied_after is not None and self.auto_applied_after <= now)
            or (self.forced_apply is not None and self.forced_apply <= now)
        )

    def shape(self, window: str | None, now: datetime.datetime) -> dict:
        out = {"Action": self.action, "Description": self.description}
        if self.auto_applied_after:
            out["AutoAppliedAfterDate"] = self.auto_applied_after
        if self.forced_apply:
            out["ForcedApplyDate"] = self.forced_apply
        if self.opt_in:
            out["OptInStatus"] = self.opt_in
        current = None
        if self.opt_in == "immediate":
            current = now
        elif self.opt_in == "next-maintenance":
            current = next_window(window, now)
        else:
            if self.auto_applied_after:
                current = next_window(window, max(self.auto_applied_after, now))
            if self.forced_apply:
                current = min(current, self.forced_apply) if current else self.forced_apply
        if current:
            out["CurrentApplyDate"] = current
        return out


class Maintenance:
    def __init__(self, st):
        self.st = st

    # --- ModifyDBInstance ---

    def check_modify(self, inst: Instance, db, request: dict) -> Change:
        change = Change(
            fields={
                "EngineVersion",
                "AllowMajorVersionUpgrade",
                "CACertificateIdentifier",
                "CertificateRotationRestart",
            }
        )
        if request.get("EngineVersion"):
            target = self.st.catalog.check_upgrade(
                db.engine_version, str(request["EngineVersion"]), bool(request.get("AllowMajorVersionUpgrade"))
            )
            change.version = target if target != db.engine_version else None
        if request.get("CACertificateIdentifier"):
            ca = self.st.certs.check(request["CACertificateIdentifier"])
            change.ca = ca if ca != inst.ca else None
        change.restart = request.get("CertificateRotationRestart") is not False
        return change

    def apply_modify(self, inst: Instance, change: Change, immediately: bool) -> None:
        if change.version:
            inst.pending_values["EngineVersion"] = change.version
        if change.ca:
            inst.pending_values["CACertificateIdentifier"] = change.ca
        if immediately and inst.pending_values:
            # "the modifications in this request and any pending modifications"
            self._apply_pending(inst, restart=change.restart)

    def _apply_pending(self, inst: Instance, restart: bool = True) -> list[str]:
        applied = []
        ca = inst.pending_values.pop("CACertificateIdentifier", None)
        if ca:
            self.rotate_ca(inst, ca, restart)
            applied.append(f"CACertificateIdentifier={ca}")
        version = inst.pending_values.pop("EngineVersion", None)
        if version:
            self.start_upgrade(inst, version)
            applied.append(f"EngineVersion={version}")
        return applied

    # --- what changes an instance ---

    def start_upgrade(self, inst: Instance, version: str, secs: float | None = None) -> None:
        """`upgrading` (endpoint closed, sessions ended) for `secs`; then the new version."""
        st = self.st
        now = _monotonic()
        st.relays.drop_connections(inst.port)

        def done():
            db = st.db(inst)
            if db is not None:
                db.engine_version = version
            st.write_moto(inst)

        inst.begin("upgrading", now, st.modifying_secs if secs is None else secs, done)
        self._drop_actions(inst, "db-upgrade", lambda a: not a.target or _key(a.target) <= _key(version))
        st.write_moto(inst)
        db = st.db(inst)
        if db is not None:
            db.status = inst.status(now)

    def rotate_ca(self, inst: Instance, ca: str, restart: bool) -> None:
        inst.ca = ca
        inst.route.ca = ca
        if restart:
            self.st.relays.drop_connections(inst.port)
        self._drop_actions(inst, "ca-certificate-rotation", lambda a: True)
        self.st.write_moto(inst)

    def reboot(self, inst: Instance, now: float) -> None:
        st = self.st
        st.relays.drop_connections(inst.port)
        inst.begin("rebooting", now, st.modifying_secs)
        if inst.read_only_until_reboot:
            # The old blue of a switchover takes writes again once rebooted.
            from local_rds.replication import set_read_only

            inst.read_only_until_reboot = False
            name = inst.real_name
            st.admin.submit(inst.queue_key, lambda conn: set_read_only(conn, name, False))

    def minor_upgrade(self, inst: Instance, to: str | None, secs: float | None, force: bool) -> str:
        """An automatic minor version upgrade, as RDS applies one (control endpoint)."""
        st = self.st
        db = st.db(inst)
        current = db.engine_version
        target = to or st.catalog.auto_upgrade_target(current)
        if not target:
            raise ValueError(f"no newer minor of {current} to upgrade to")
        found = st.catalog.find(target)
        if found is None or found.status != "available":
            raise ValueError(f"{target} is not an available version")
        if found.major != current.split(".")[0] or _key(target) <= _key(current):
            raise ValueError(f"{target} is not a newer minor of {current}")
        if not db.auto_minor_version_upgrade and not force:
            raise PermissionError(f'{inst.identifier} has AutoMinorVersionUpgrade off (give "force": true)')
        status = inst.status(_monotonic())
        if status != "available":
            raise PermissionError(f"{inst.identifier} is {status}, not available")
        inst.pending_values.pop("EngineVersion", None)
        self.start_upgrade(inst, target, secs)
        return target

    # --- pending maintenance actions ---

    def add_action(self, inst: Instance, spec: dict) -> PendingAction:
        action = spec.get("action")
        if action not in ACTIONS:
            raise ValueError(f"'action' must be one of {list(ACTIONS)}")
        target = spec.get("engine_version") or spec.get("ca_certificate_identifier")
        if action == "db-upgrade":
            target = target or self.st.catalog.auto_upgrade_target(self.st.db(inst).engine_version)
            if not target or self.st.catalog.find(target) is None:
                raise ValueError("db-upgrade needs an 'engine_version' the catalog lists")
        if action == "ca-certificate-rotation":
            if not target or target not in self.st.certs.cas:
                raise ValueError(
                    f"ca-certificate-rotation needs a 'ca_certificate_identifier' of {list(self.st.certs.cas)}"
                )
        pending = PendingAction(
            action,
            spec.get("description") or DESCRIPTIONS[action].format(target=target),
            target,
            _date(spec.get("auto_applied_after")),
            _date(spec.get("forced_apply_date")),
        )
        inst.pending_actions = [a for a in inst.pending_actions if a.action != action] + [pending]
        return pending

    def _drop_actions(self, inst: Instance, action: str, which) -> None:
        inst.pending_actions = [a for a in inst.pending_actions if a.action != action or not which(a)]

    def _perform(self, inst: Instance, action: PendingAction) -> None:
        if action.action == "db-upgrade":
            self.start_upgrade(inst, action.target)
        elif action.action == "ca-certificate-rotation":
            self.rotate_ca(inst, action.target, restart=True)
        else:
            now = _monotonic()
            self.st.relays.drop_connections(inst.port)
            inst.begin("maintenance", now, self.st.modifying_secs)
            self._drop_actions(inst, action.action, lambda a: True)
        inst.pending_actions = [a for a in inst.pending_actions if a is not action]

    def run_window(self, inst: Instance) -> list[str]:
        """The maintenance window, now: what is pending and due is applied."""
        now = _utcnow()
        applied = self._apply_pending(inst)
        for action in [a for a in inst.pending_actions if a.due(now)]:
            self._perform(inst, action)
            applied.append(action.action)
        return applied

    def _shape(self, inst: Instance, now: datetime.datetime) -> dict:
        db = self.st.db(inst)
        return {
            "ResourceIdentifier": db.db_instance_arn,
            "PendingMaintenanceActionDetails": [
                a.shape(db.preferred_maintenance_window, now) for a in inst.pending_actions
            ],
        }

    def describe(self, account: str, region: str, request: dict) -> dict:
        filters = filters_of(request, {"db-instance-id", "db-cluster-id"})
        arn = request.get("ResourceIdentifier")
        now = _utcnow()
        items = []
        found = False
        for inst in sorted(self.st.instances.values(), key=lambda i: i.identifier):
            db = self.st.db(inst)
            if inst.account != account or inst.region != region or db is None:
                continue
            if arn and db.db_instance_arn != arn:
                continue
            found = True
            if "db-cluster-id" in filters:
                continue
            if "db-instance-id" in filters and not {inst.identifier, db.db_instance_arn} & set(
                filters["db-instance-id"]
            ):
                continue
            if inst.pending_actions:
                items.append(self._shape(inst, now))
        if arn and not found:
            raise error("ResourceNotFoundFault", f"The specified resource ID was not found: {arn}", 404)
        return page(items, request, "PendingMaintenanceActions")

    def apply(self, account: str, region: str, request: dict) -> dict:
        arn = request.get("ResourceIdentifier") or ""
        inst = next(
            (
                i
                for i in self.st.instances.values()
                if i.account == account and i.region == region and (db := self.st.db(i)) and db.db_instance_arn == arn
            ),
            None,
        )
        if inst is None:
            raise error("ResourceNotFoundFault", f"The specified resource ID was not found: {arn}", 404)
        name, opt_in = request.get("ApplyAction"), request.get("OptInType")
        if name not in ACTIONS:
            raise error(
                "InvalidParameterValue", f"Invalid value {name} for ApplyAction. Valid values: {', '.join(ACTIONS)}"
            )
        if opt_in not in OPT_IN_TYPES:
            raise error(
                "InvalidParameterValue",
                f"Invalid value {opt_in} for OptInType. Valid values: {', '.join(OPT_IN_TYPES)}",
            )
        action = next((a for a in inst.pending_actions if a.action == name), None)
        if action is None:
            raise error("InvalidParameterValue", f"There is no pending {name} action for {arn}.")
        now = _utcnow()
        if opt_in == "immediate":
            status = inst.status(_monotonic())
            if status != "available":
                raise error(
                    "InvalidDBInstanceState", f"Database instance is not in available state (status: {status})."
                )
            action.opt_in = "immediate"
            out = self._shape(inst, now)
            self._perform(inst, action)
            return {"ResourcePendingMaintenanceActions": out}
        action.opt_in = "next-maintenance" if opt_in == "next-maintenance" else None
        return {"ResourcePendingMaintenanceActions": self._shape(inst, now)}

    def view(self, inst: Instance) -> dict:
        now = _utcnow()
        db = self.st.db(inst)
        window = db.preferred_maintenance_window if db else None
        return {
            "identifier": inst.identifier,
            "pending_modified_values": dict(inst.pending_values),
            "pending_maintenance_actions": [dict(a.shape(window, now), Target=a.target) for a in inst.pending_actions],
        }


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def _monotonic() -> float:
    return time.monotonic()


def _date(value) -> datetime.datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError("dates are ISO 8601 strings, e.g. 2026-01-31T00:00:00Z")
    parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)
