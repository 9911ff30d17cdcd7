"""RDS paging and errors shared by the operations this provider answers itself."""

from __future__ import annotations

from localstack.aws.api import CommonServiceException


def error(code: str, message: str, status: int = 400) -> CommonServiceException:
    return CommonServiceException(code, message, status_code=status, sender_fault=status < 500)


def page(items: list, request: dict, key: str) -> dict:
    """RDS paging: MaxRecords (20-100, default 100) and an opaque Marker."""
    max_records = request.get("MaxRecords")
    if max_records is not None and not 20 <= int(max_records) <= 100:
        raise error("InvalidParameterValue", f"Invalid value {max_records} for MaxRecords. Must be between 20 and 100")
    marker = str(request.get("Marker") or "")
    start = int(marker[2:]) if marker.startswith("m:") and marker[2:].isdigit() else 0
    size = int(max_records or 100)
    out = {key: items[start : start + size]}
    if start + size < len(items):
        out["Marker"] = f"m:{start + size}"
    return out


def filters_of(request: dict, known: set[str]) -> dict[str, list[str]]:
    """The request's Filters as {name: values}; an unknown name is InvalidParameterValue."""
    out: dict[str, list[str]] = {}
    for f in request.get("Filters") or []:
        name = f.get("Name")
        if name not in known:
            raise error("InvalidParameterValue", f"Unrecognized filter name: {name}")
        out.setdefault(name, []).extend(f.get("Values") or [])
    return out
