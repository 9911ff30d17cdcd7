"""HTTP control endpoints on the LocalStack gateway, under /_local_rds (see localstack/README.md).

  GET    /_local_rds/faults                      list pending faults
  POST   /_local_rds/faults                      add one: {"operation", "count", "code", "status",
                                                 "message", "latency_ms", "match"}
  DELETE /_local_rds/faults                      remove all
  DELETE /_local_rds/faults/<id>                 remove one
  GET    /_local_rds/instances                   the provider's instances (real names, ports, status)
  POST   /_local_rds/instances/<id>/status       {"status": "failed"} forces a status;
                                                 {"status": null} or "available" lifts it
  POST   /_local_rds/instances/<id>/auto-start   starts a stopped instance by itself (RDS does
                                                 after 7 days): `starting`, then `available`
  GET    /_local_rds/quotas?account=&region=     an account's quotas (Max) and usage (Used)
  POST   /_local_rds/quotas                      {"account", "region", "DBInstances",
                                                 "AllocatedStorage", "ManualSnapshots"} sets them;
                                                 {"account", "region", "reset": true} restores defaults
  GET    /_local_rds/snapshots/<id>/contents     where a final snapshot's contents are kept: a
                                                 database in the tenant server (?account=)
  GET    /_local_rds/secrets-deletion-delay      delays of Secrets Manager forced deletions
  POST   /_local_rds/secrets-deletion-delay      {"account", "seconds", "region"?}
and, in control_lifecycle.py, Blue/Green replication, minor upgrades, pending maintenance, CAs.
"""

from __future__ import annotations

import json
import time

from localstack.http import Request, Response
from localstack.services.edge import ROUTER

from local_rds.faults import FAULTS

_REGISTERED = False


def _json(body, status: int = 200) -> Response:
    text = json.dumps(body, indent=1, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))
    return Response(text, status=status, mimetype="application/json")


def _body(request: Request) -> dict:
    data = request.get_data()
    if not data:
        return {}
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def faults(request: Request) -> Response:
    if request.method == "GET":
        return _json({"faults": FAULTS.list()})
    if request.method == "DELETE":
        return _json({"removed": FAULTS.clear()})
    try:
        fault = FAULTS.add(_body(request))
    except (ValueError, TypeError) as e:
        return _json({"error": str(e)}, 400)
    return _json({"id": fault.id}, 201)


def fault(request: Request, fault_id: str) -> Response:
    if not fault_id.isdigit() or not FAULTS.remove(int(fault_id)):
        return _json({"error": f"no fault {fault_id}"}, 404)
    return _json({"removed": 1})


def instances(request: Request) -> Response:
    from local_rds.provider import state

    st = state()
    now = time.monotonic()
    with st.lock:
        return _json({"instances": [i.describe(now) for i in st.instances.values()]})


def instance_status(request: Request, identifier: str) -> Response:
    from local_rds.provider import state

    try:
        body = _body(request)
    except ValueError as e:
        return _json({"error": str(e)}, 400)
    if "status" not in body:
        return _json({"error": "give 'status' (e.g. \"failed\"; null to lift it)"}, 400)
    status = body["status"]
    if status is not None and (not isinstance(status, str) or not status):
        return _json({"error": "'status' must be a non-empty string or null"}, 400)
    st = state()
    with st.lock:
        found = st.find(identifier, body.get("account"), body.get("region"))
        if not found:
            return _json({"error": f"no instance {identifier!r}"}, 404)
        if len(found) > 1:
            return _json({"error": f"{identifier!r} exists in several accounts/regions: give 'region'"}, 409)
        inst = found[0]
        inst.forced_status = None if status in (None, "available") else status
        st.refresh()
        # `refresh` leaves statuses it does not own alone: write a forced one directly.
        from moto.rds.models import rds_backends

        db = rds_backends[inst.account][inst.region].databases.get(inst.identifier)
        if db is not None:
            db.status = inst.status(time.monotonic())
        return _json(inst.describe(time.monotonic()))


def _find_one(body: dict, identifier: str):
    from local_rds.provider import state

    st = state()
    found = st.find(identifier, body.get("account"), body.get("region"))
    if not found:
        return None, _json({"error": f"no instance {identifier!r}"}, 404)
    if len(found) > 1:
        return None, _json({"error": f"{identifier!r} exists in several accounts/regions: give 'region'"}, 409)
    return found[0], None


def instance_auto_start(request: Request, identifier: str) -> Response:
    from local_rds.provider import state

    try:
        body = _body(request)
    except ValueError as e:
        return _json({"error": str(e)}, 400)
    st = state()
    with st.lock:
        st.refresh()
        inst, error = _find_one(body, identifier)
        if error is not None:
            return error
        now = time.monotonic()
        status = inst.status(now)
        if status != "stopped":
            return _json({"error": f"{identifier!r} is {status}, not stopped"}, 409)
        inst.start(now)
        from moto.rds.models import rds_backends

        db = rds_backends[inst.account][inst.region].databases.get(inst.identifier)
        if db is not None:
            db.status = inst.status(now)
        return _json(inst.describe(now))


def _int_field(body: dict, name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"'{name}' must be a non-negative integer")
    return value


def quotas(request: Request) -> Response:
    from local_rds.provider import state
    from local_rds.quotas import DEFAULT_ACCOUNT, QUOTAS, SETTABLE

    st = state()
    if request.method == "GET":
        account = request.args.get("account", DEFAULT_ACCOUNT)
        region = request.args.get("region", "us-east-1")
        with st.lock:
            return _json(QUOTAS.view(account, region))
    try:
        body = _body(request)
        account = str(body.get("account") or DEFAULT_ACCOUNT)
        region = str(body.get("region") or "us-east-1")
        unknown = set(body) - {"account", "region", "reset", *SETTABLE}
        if unknown:
            raise ValueError(f"unknown fields: {sorted(unknown)}; settable: {list(SETTABLE)}")
        values = {name: v for name in SETTABLE if (v := _int_field(body, name)) is not None}
    except ValueError as e:
        return _json({"error": str(e)}, 400)
    with st.lock:
        if body.get("reset"):
            QUOTAS.reset(account, region)
        QUOTAS.set(account, region, values)
        return _json(QUOTAS.view(account, region))


def secrets_deletion_delay(request: Request) -> Response:
    from local_rds.secrets import DELAYS

    if request.method == "GET":
        return _json(DELAYS.view())
    try:
        body = _body(request)
        account = body.get("account")
        seconds = body.get("seconds")
        if not isinstance(account, str) or not account:
            raise ValueError("'account' is required")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            raise ValueError("'seconds' must be a non-negative number")
    except ValueError as e:
        return _json({"error": str(e)}, 400)
    DELAYS.set(account, float(seconds), body.get("region"))
    return _json(DELAYS.view())


def snapshot_contents(request: Request, identifier: str) -> Response:
    """Where a final snapshot's contents are: the database (in the tenant PostgreSQL server,
    readable with LOCAL_RDS_ADMIN_URL) holding a copy of the instance's database as it was
    deleted. ?account= narrows the search to one account."""
    from local_rds.provider import state

    st = state()
    account = request.args.get("account")
    with st.lock:
        found = [
            {"account": a, "region": r, "database": db}
            for (a, r, snap), db in st.snapshot_copies.items()
            if snap == identifier and account in (None, a)
        ]
    if not found:
        return _json({"error": f"no contents kept for snapshot {identifier}"}, 404)
    return _json(found[0])


def register() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    _REGISTERED = True
    ROUTER.add("/_local_rds/faults", endpoint=faults, methods=["GET", "POST", "DELETE"])
    ROUTER.add("/_local_rds/faults/<fault_id>", endpoint=fault, methods=["DELETE"])
    ROUTER.add("/_local_rds/instances", endpoint=instances, methods=["GET"])
    ROUTER.add("/_local_rds/instances/<identifier>/status", endpoint=instance_status, methods=["POST"])
    ROUTER.add("/_local_rds/instances/<identifier>/auto-start", endpoint=instance_auto_start, methods=["POST"])
    ROUTER.add("/_local_rds/quotas", endpoint=quotas, methods=["GET", "POST"])
    ROUTER.add("/_local_rds/snapshots/<identifier>/contents", endpoint=snapshot_contents, methods=["GET"])
    ROUTER.add("/_local_rds/secrets-deletion-delay", endpoint=secrets_deletion_delay, methods=["GET", "POST"])
    from local_rds import control_lifecycle

    control_lifecycle.register(ROUTER)
