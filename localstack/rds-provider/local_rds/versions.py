"""PostgreSQL engine versions the local RDS offers, and DescribeDBEngineVersions.

RDS only creates instances of versions it lists as `available`; it refuses any other version with
`InvalidParameterCombination: Cannot find version X for postgres`. A major version alone ("16")
means that major's default minor; no EngineVersion at all means the engine's default (the newest
major's default). Each major has exactly one default minor.

ValidUpgradeTarget as RDS lists it: every newer available minor of the same major
(IsMajorVersionUpgrade false; AutoUpgrade true only on the minor RDS's automatic minor upgrades
move to, the major's default), and the minors of higher majors (up to four above) released on
or after the source minor (IsMajorVersionUpgrade true, AutoUpgrade false): 15.7 (May 2024)
goes to 16.3 or later, not to 16.2 (February 2024). PostgreSQL's own release dates are used.

The list below is a realistic snapshot (not necessarily today's). LOCAL_RDS_ENGINE_VERSIONS_FILE
may name a JSON file to replace it:
  {"versions": [{"version": "16.8", "default": true, "released": "2025-02-20"},
                {"version": "16.2", "status": "deprecated"}, ...]}
(a version without "released" is a major upgrade target of every lower minor).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from localstack.aws.api import CommonServiceException


# PostgreSQL's release dates of the minors in the built-in list (a minor of each major is
# released on the same day).
RELEASED = {
    "2023-11-09": ["16.1"],
    "2024-02-08": ["16.2"],
    "2024-05-09": ["13.15", "14.12", "15.7", "16.3"],
    "2024-08-08": ["13.16", "14.13", "15.8", "16.4"],
    "2024-11-14": ["16.5", "17.1"],
    "2024-11-21": ["13.18", "14.15", "15.10", "16.6", "17.2"],
    "2025-02-20": ["13.20", "14.17", "15.12", "16.8", "17.4"],
    "2025-05-08": ["13.21", "14.18", "15.13", "16.9", "17.5"],
}
RELEASE_DATE = {v: day for day, versions in RELEASED.items() for v in versions}


@dataclass(frozen=True)
class EngineVersion:
    version: str
    status: str = "available"  # or "deprecated": listed only with IncludeAll, not creatable
    default: bool = False  # the default minor of its major
    released: str | None = None  # YYYY-MM-DD

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
            out.append(
                EngineVersion(v, "deprecated" if v in deprecated else "available", v == default, RELEASE_DATE.get(v))
            )
    return out


def load() -> list[EngineVersion]:
    path = os.environ.get("LOCAL_RDS_ENGINE_VERSIONS_FILE")
    if not path:
        return _builtin()
    with open(path) as f:
        data = json.load(f)
    versions = [
        EngineVersion(
            str(v["version"]),
            v.get("status", "available"),
            bool(v.get("default", False)),
            v.get("released", RELEASE_DATE.get(str(v["version"]))),
        )
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

    def find(self, version: str) -> EngineVersion | None:
        return next((v for v in self.versions if v.version == version), None)

    def upgrade_targets(self, v: EngineVersion) -> list[tuple[EngineVersion, bool]]:
        """(target, AutoUpgrade) pairs of ValidUpgradeTarget, in version order."""
        out = []
        default = self.default_of(v.major)
        for t in self.versions:
            if t.status != "available" or t.key() <= v.key():
                continue
            if t.major == v.major:
                out.append((t, default is not None and t == default))
            elif int(t.major) <= int(v.major) + 4 and (
                not (t.released and v.released) or t.released >= v.released
            ):
                out.append((t, False))
        return out

    def auto_upgrade_target(self, current: str) -> str | None:
        """The minor RDS's automatic minor upgrades move `current` to, if any."""
        v = self.find(current)
        if v is None:
            return None
        return next((t.version for t, auto in self.upgrade_targets(v) if auto), None)

    def check_upgrade(self, current: str, requested: str, allow_major: bool) -> str:
        """The version ModifyDBInstance or a Blue/Green deployment moves `current` to (a major
        alone means its default minor), or RDS's error."""
        target = self.resolve(requested)
        if target == current:
            return target
        source = self.find(current)
        valid = [t.version for t, _ in self.upgrade_targets(source)] if source else []
        if target not in valid:
            raise CommonServiceException(
                "InvalidParameterCombination", f"Cannot upgrade postgres from {current} to {target}", 400, True
            )
        if target.split(".")[0] != current.split(".")[0] and not allow_major:
            raise CommonServiceException(
                "InvalidParameterCombination",
                "The AllowMajorVersionUpgrade flag must be present when upgrading to a new major version.",
                400,
                True,
            )
        return target

    def _shape(self, v: EngineVersion) -> dict:
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
                    "AutoUpgrade": auto,
                    "IsMajorVersionUpgrade": t.major != v.major,
                }
                for t, auto in self.upgrade_targets(v)
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
