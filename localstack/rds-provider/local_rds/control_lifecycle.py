"""Control endpoints for what RDS does by itself over an instance's life (see localstack/README.md):

GET    /_local_rds/certificates                            the CAs: bundle and server
                                                           certificate files, validity
GET    /_local_rds/blue-green-deployments                  deployments with their replication
GET    /_local_rds/blue-green-deployments/<id>             one
POST   /_local_rds/blue-green-deployments/<id>/replication {"paused": true|false,
                                                           "hidden": true|false}
POST   /_local_rds/instances/<id>/minor-upgrade            {"to": "16.9", "secs": 2, "force": false}
                                                           an automatic minor version upgrade
GET    /_local_rds/instances/<id>/pending-maintenance      pending modifications and actions
POST   /_local_rds/instances/<id>/pending-maintenance      {"action", "engine_version" |
                                                           "ca_certificate_identifier",
                                                           "description", "auto_applied_after",
                                                           "forced_apply_date"}
DELETE /_local_rds/instances/<id>/pending-maintenance      removes the actions
POST   /_local_rds/instances/<id>/maintenance-window       runs the maintenance window now
"""

from __future__ import annotations

import time

from localstack.http import Request, Response

from local_rds.control import _body, _find_one, _json


def _state():
    from local_rds.provider import state

    return state()


def certificates(request: Request) -> Response:
    return _json(_state().certs.view())


def _deployment(st, identifier: str):
    found = [d for (_, _, ident), d in st.bluegreen.deployments.items() if ident == identifier.lower()]
    return found[0] if found else None


def blue_green_list(request: Request) -> Response:
    st = _state()
    with st.lock:
        st.refresh()
        return _json({"deployments": [st.bluegreen.view(d) for d in st.bluegreen.deployments.values()]})


def blue_green_one(request: Request, identifier: str) -> Response:
    st = _state()
    with st.lock:
        st.refresh()
        d = _deployment(st, identifier)
        if d is None:
            return _json({"error": f"no blue/green deployment {identifier!r}"}, 404)
        return _json(st.bluegreen.view(d))


def blue_green_replication(request: Request, identifier: str) -> Response:
    st = _state()
    try:
        body = _body(request)
        unknown = set(body) - {"paused", "hidden"}
        if unknown or "paused" not in body:
            raise ValueError("give 'paused' (and optionally 'hidden'), booleans")
        for name in body:
            if not isinstance(body[name], bool):
                raise ValueError(f"'{name}' must be a boolean")
    except ValueError as e:
        return _json({"error": str(e)}, 400)
    with st.lock:
        st.refresh()
        d = _deployment(st, identifier)
        if d is None:
            return _json({"error": f"no blue/green deployment {identifier!r}"}, 404)
        if not d.copied or d.switching or d.status == "SWITCHOVER_COMPLETED":
            return _json({"error": f"{identifier} has no replication to pause or resume (status {d.status})"}, 409)
    # Waits for the admin worker: without the state lock, which the worker's work may take.
    st.bluegreen.set_replication(d, body["paused"], body.get("hidden", False))
    with st.lock:
        return _json(st.bluegreen.view(d))


def _instance(st, request: Request, identifier: str):
    try:
        body = _body(request)
    except ValueError as e:
        return None, None, _json({"error": str(e)}, 400)
    st.refresh()
    inst, err = _find_one(body, identifier)
    return inst, body, err


def minor_upgrade(request: Request, identifier: str) -> Response:
    st = _state()
    with st.lock:
        inst, body, err = _instance(st, request, identifier)
        if err is not None:
            return err
        secs = body.get("secs")
        if secs is not None and (not isinstance(secs, (int, float)) or isinstance(secs, bool) or secs < 0):
            return _json({"error": "'secs' must be a non-negative number"}, 400)
        try:
            version = st.maintenance.minor_upgrade(inst, body.get("to"), secs, bool(body.get("force")))
        except ValueError as e:
            return _json({"error": str(e)}, 400)
        except PermissionError as e:
            return _json({"error": str(e)}, 409)
        return _json({"identifier": inst.identifier, "upgrading_to": version, "status": "upgrading"})


def pending_maintenance(request: Request, identifier: str) -> Response:
    st = _state()
    with st.lock:
        inst, body, err = _instance(st, request, identifier)
        if err is not None:
            return err
        if request.method == "POST":
            try:
                st.maintenance.add_action(inst, body)
            except ValueError as e:
                return _json({"error": str(e)}, 400)
        elif request.method == "DELETE":
            inst.pending_actions = []
        return _json(st.maintenance.view(inst), 201 if request.method == "POST" else 200)


def maintenance_window(request: Request, identifier: str) -> Response:
    st = _state()
    with st.lock:
        inst, body, err = _instance(st, request, identifier)
        if err is not None:
            return err
        status = inst.status(time.monotonic())
        if status != "available":
            return _json({"error": f"{identifier!r} is {status}, not available"}, 409)
        applied = st.maintenance.run_window(inst)
        return _json(dict(st.maintenance.view(inst), applied=applied))


def register(router) -> None:
    router.add("/_local_rds/certificates", endpoint=certificates, methods=["GET"])
    router.add("/_local_rds/blue-green-deployments", endpoint=blue_green_list, methods=["GET"])
    router.add("/_local_rds/blue-green-deployments/<identifier>", endpoint=blue_green_one, methods=["GET"])
    router.add(
        "/_local_rds/blue-green-deployments/<identifier>/replication", endpoint=blue_green_replication, methods=["POST"]
    )
    router.add("/_local_rds/instances/<identifier>/minor-upgrade", endpoint=minor_upgrade, methods=["POST"])
    router.add(
        "/_local_rds/instances/<identifier>/pending-maintenance",
        endpoint=pending_maintenance,
        methods=["GET", "POST", "DELETE"],
    )
    router.add("/_local_rds/instances/<identifier>/maintenance-window", endpoint=maintenance_window, methods=["POST"])
