"""PostgreSQL engine versions the local RDS offers, and DescribeDBEngineVersions.

RDS only creates instances of versions it lists as `available`; it refuses any other version with
`InvalidParameterCombination: Cannot find version X for postgres`. A major version alone ("16")
means that major's default minor; no EngineVersion at all means the engine's default (the newest
major's default). Each major has exactly one default minor.

The list below is a realistic snapshot (not necessarily today's). LOCAL_RDS_ENGINE_VERSIONS_FILE
may name a JSON file to replace it:
  {"versions": [{"version": "16.8", "default": true}, {"version": "16.2", "status": "deprecated"}, ...]}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from localstack.aws.api import CommonServiceException


@dataclass(frozen=True)
class EngineVersion:
    version: str
    status: str = "available"  # or "deprecated": listed only with IncludeAll, not creatable
    default: bool = False  # the default minor of its major

    @property
    def major(self) -> str:
        return self.version.split(".")[0]

    def key(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.version.split(".") if p.isdigit())


def _builtin() -> list[EngineVersion]:
    spec = {
        # major: (minors, default minor, deprecated minors)
        "13": (["13.15", "13.16", "13.18", "13.20", "13.21"], "13.20", []),
        "14": (["14.12", "14.13", "14.15", "14.17", "14.18"], "14.17", []),
        "15": (["15.7", "15.8", "15.10", "15.12", "15.13"], "15.12", []),
        "16": (["16.1", "16.2", "16.3", "16.4", "16.5", "16.6", "16.8", "16.9"], "16.8", ["16.1", "16.2"]),
        "17": (["17.1", "17.2", "17.4", "17.5"], "17.4", []),
    }
    out = []
    for minors, default, deprecated in spec.values():
        for v in minors:
            out.append(EngineVersion(v, "deprecated" if v in deprecated else "available", v == default))
    return out


def load() -> list[EngineVersion]:
    path = os.environ.get("LOCAL_RDS_ENGINE_VERSIONS_FILE")
    if not path:
        return _builtin()
    with open(path) as f:
        data = json.load(f)
    versions = [
        EngineVersion(str(v["version"]), v.get("status", "available"), bool(v.get("default", False)))
        for v in data["versions"]
    ]
    for major in {v.major for v in versions}:
        defaults = [v for v in versions if v.major == major and v.default]
        if len(defaults) != 1:
            raise ValueError(f"{path}: major {major} needs exactly one default version, has {len(defaults)}")
    return versions


def _cannot_find(version: str) -> CommonServiceException:
    return CommonServiceException(
        "InvalidParameterCombination", f"Cannot find version {version} for postgres", 400, True
    )


def _invalid(message: str) -> CommonServiceException:
    return CommonServiceException("InvalidParameterValue", message, 400, True)


class Catalog:
    def __init__(self, versions: list[EngineVersion]):
        self.versions = sorted(versions, key=EngineVersion.key)

    def majors(self) -> list[str]:
        return sorted({v.major for v in self.versions}, key=int)

    def default_of(self, major: str) -> EngineVersion | None:
        return next((v for v in self.versions if v.major == major and v.default), None)

    def engine_default(self) -> EngineVersion:
        for major in reversed(self.majors()):
            d = self.default_of(major)
            if d is not None and d.status == "available":
                return d
        raise ValueError("no available default engine version")

    def resolve(self, requested: str | None) -> str:
        """The full version CreateDBInstance gets for a requested EngineVersion, or the RDS error."""
        if not requested:
            return self.engine_default().version
        if "." not in requested:
            d = self.default_of(requested)
            if d is None or d.status != "available":
                raise _cannot_find(requested)
            return d.version
        found = next((v for v in self.versions if v.version == requested), None)
        if found is None or found.status != "available":
            raise _cannot_find(requested)
        return found.version

    # --- DescribeDBEngineVersions ---

    def describe(self, request: dict) -> dict:
        engine = request.get("Engine")
        wanted = request.get("EngineVersion")
        family = request.get("DBParameterGroupFamily")
        include_all = bool(request.get("IncludeAll"))
        filters = {f["Name"]: f.get("Values") or [] for f in request.get("Filters") or []}
        max_records = request.get("MaxRecords")
        if max_records is not None and not 20 <= int(max_records) <= 100:
            raise _invalid(f"Invalid value {max_records} for MaxRecords. Must be between 20 and 100")
        if engine and engine != "postgres":
            return {"DBEngineVersions": []}
        if "engine" in filters and "postgres" not in filters["engine"]:
            return {"DBEngineVersions": []}

        def keep(v: EngineVersion) -> bool:
            if wanted and wanted not in (v.version, v.major):
                return False
            if family and family != f"postgres{v.major}":
                return False
            if "db-parameter-group-family" in filters and f"postgres{v.major}" not in filters["db-parameter-group-family"]:
                return False
            if "engine-version" in filters and not (
                v.version in filters["engine-version"] or v.major in filters["engine-version"]
            ):
                return False
            if "status" in filters:
                return v.status in filters["status"]
            return include_all or v.status == "available"

        selected = [v for v in self.versions if keep(v)]
        if request.get("DefaultOnly"):
            if wanted or family:
                selected = [v for v in selected if v.default]
            else:
                # The default of the engine, not one per major.
                default = self.engine_default()
                selected = [v for v in selected if v == default]
        start = int(request.get("Marker") or 0) if str(request.get("Marker") or "0").isdigit() else 0
        size = int(max_records or 100)
        page = selected[start : start + size]
        out: dict = {"DBEngineVersions": [self._shape(v) for v in page]}
        if start + size < len(selected):
            out["Marker"] = str(start + size)
        return out

    def _shape(self, v: EngineVersion) -> dict:
        targets = [
            t
            for t in self.versions
            if t.status == "available" and t.key() > v.key() and int(t.major) <= int(v.major) + 4
        ]
        return {
            "Engine": "postgres",
            "EngineVersion": v.version,
            "DBParameterGroupFamily": f"postgres{v.major}",
            "DBEngineDescription": "PostgreSQL",
            "DBEngineVersionDescription": f"PostgreSQL {v.version}-R1",
            "MajorEngineVersion": v.major,
            "Status": v.status,
            "ValidUpgradeTarget": [
                {
                    "Engine": "postgres",
                    "EngineVersion": t.version,
                    "Description": f"PostgreSQL {t.version}-R1",
                    "AutoUpgrade": False,
                    "IsMajorVersionUpgrade": t.major != v.major,
                }
                for t in targets
            ],
            "ExportableLogTypes": ["postgresql", "upgrade"],
            "SupportsLogExportsToCloudwatchLogs": True,
            "SupportsReadReplica": True,
            "SupportedFeatureNames": ["Lambda", "s3Export", "s3Import"],
            "SupportsParallelQuery": False,
            "SupportsGlobalDatabases": False,
            "SupportsBabelfish": False,
            "SupportsCertificateRotationWithoutRestart": True,
            "SupportedCACertificateIdentifiers": [
                "rds-ca-ecc384-g1",
                "rds-ca-rsa2048-g1",
                "rds-ca-rsa4096-g1",
            ],
            "SupportsLimitlessDatabase": False,
            "SupportsIntegrations": False,
            "SupportsLocalWriteForwarding": False,
        }
