"""One local RDS instance: its database and role in the tenant server, its endpoint, and the
statuses RDS would show, computed from timestamps when a request looks (nothing sleeps)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from local_rds.certs import DEFAULT_CA
from local_rds.pgadmin import PREFIX
from local_rds.relay import Route

# Statuses this provider computes; any other (e.g. one set by moto) is left alone.
OWNED_STATUSES = {
    "available",
    "creating",
    "modifying",
    "failed",
    "backing-up",
    "stopping",
    "stopped",
    "starting",
    "upgrading",
    "maintenance",
    "rebooting",
}
# Statuses in which the endpoint refuses connections (the server is down or restarting).
DOWN_STATUSES = {"stopping", "stopped", "starting", "upgrading", "maintenance", "rebooting"}


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
    # Stop/start: "on", or "stopping"/"starting" since `power_since` (then `stopped`/running).
    power: str = "on"
    power_since: float = 0.0
    stopping_secs: float = 2.0
    starting_secs: float = 2.0
    info: dict = field(default_factory=dict)
    # The admin worker queue of its database work; the members of a Blue/Green deployment
    # share the blue instance's, so their work runs in one order.
    queue_key: str = ""
    ca: str = DEFAULT_CA  # CACertificateIdentifier
    # An activity with a status of its own (`upgrading`, `maintenance`, `rebooting`) from
    # `activity_start` for `activity_secs`; `on_activity_done` runs when it has passed.
    activity: str | None = None
    activity_start: float = 0.0
    activity_secs: float = 0.0
    on_activity_done: Callable[[], None] | None = None
    blocked: bool = False  # a switchover holds the endpoint closed
    read_only_until_reboot: bool = False  # the old blue after a switchover
    pending_values: dict = field(default_factory=dict)  # PendingModifiedValues
    pending_actions: list = field(default_factory=list)  # maintenance.PendingAction

    def __post_init__(self) -> None:
        self.queue_key = self.queue_key or self.real_name

    def status(self, now: float) -> str:
        if self.forced_status:
            return self.forced_status
        if self.error:
            return "failed"
        if not self.ready or now < self.created + self.creating_secs:
            return "creating"
        if self.activity and self.activity_start <= now < self.activity_start + self.activity_secs:
            return self.activity
        if self.power == "stopping":
            return "stopping" if now < self.power_since + self.stopping_secs else "stopped"
        if self.power == "starting" and now < self.power_since + self.starting_secs:
            return "starting"
        if now < self.modifying_until:
            return "modifying"
        return "available"

    def accepts_connections(self) -> bool:
        return not self.blocked and self.status(time.monotonic()) not in DOWN_STATUSES

    def stop(self, now: float) -> None:
        self.power, self.power_since = "stopping", now

    def start(self, now: float) -> None:
        self.power, self.power_since = "starting", now

    def begin(self, activity: str, start: float, secs: float, done: Callable[[], None] | None = None) -> None:
        """Starts an activity with its own status; `done` runs (under the state lock) when the
        first request after it looks."""
        self.activity, self.activity_start, self.activity_secs = activity, start, secs
        self.on_activity_done = done

    def finish_activity(self, now: float) -> None:
        if self.activity and now >= self.activity_start + self.activity_secs:
            done, self.on_activity_done, self.activity = self.on_activity_done, None, None
            if done is not None:
                done()

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
            "accepts_connections": self.accepts_connections(),
            "ca_certificate_identifier": self.ca,
            "pending_modified_values": dict(self.pending_values),
            "read_only_until_reboot": self.read_only_until_reboot,
        }


def real_name_for(identifier: str) -> str:
    base = re.sub(r"[^a-z0-9_]", "_", identifier.lower())[:40]
    return f"{PREFIX}{base}_{uuid.uuid4().hex[:10]}"
