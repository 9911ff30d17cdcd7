"""DescribeEngineDefaultParameters for the postgres families: the parameters tenantd reads, as
RDS documents them. `rds.extensions` lists, in its AllowedValues, the extensions a family
supports (what `SHOW rds.extensions` says on an instance of it); `rds.logical_replication` is
the static parameter a Blue/Green deployment to a new major needs on the blue instance.

The extension lists are a realistic subset of RDS's: the contrib extensions and a few popular
ones. `adminpack` is in 13-16 and not in 17 (PostgreSQL 17 removed it), as on RDS, so an
upgrade precheck has a real difference to find.
"""

from __future__ import annotations

COMMON = [
    "amcheck", "bloom", "btree_gin", "btree_gist", "citext", "cube", "dblink", "dict_int",
    "earthdistance", "fuzzystrmatch", "hstore", "intarray", "isn", "lo", "ltree", "pageinspect",
    "pg_buffercache", "pg_freespacemap", "pg_prewarm", "pg_stat_statements", "pg_trgm",
    "pg_visibility", "pgcrypto", "pgrowlocks", "pgstattuple", "plpgsql", "postgis",
    "postgres_fdw", "seg", "tablefunc", "tcn", "tsm_system_rows", "tsm_system_time",
    "unaccent", "uuid-ossp", "vector",
]
ONLY_BEFORE_17 = ["adminpack"]


def extensions_of(major: int) -> list[str]:
    names = COMMON + (ONLY_BEFORE_17 if major < 17 else [])
    return sorted(names)


def _parameter(name: str, value: str | None, allowed: str, kind: str, description: str) -> dict:
    p = {
        "ParameterName": name,
        "Description": description,
        "Source": "engine-default",
        "ApplyType": kind,
        "DataType": "string" if kind == "dynamic" else "boolean",
        "AllowedValues": allowed,
        "IsModifiable": True,
        "ApplyMethod": "pending-reboot",
    }
    if value is not None:
        p["ParameterValue"] = value
    return p


def describe(family: str) -> dict | None:
    """The engine defaults of `family` (`postgres13` ... `postgres17`), or None for another."""
    if not family.startswith("postgres") or not family[8:].isdigit():
        return None
    major = int(family[8:])
    if not 13 <= major <= 17:
        return None
    return {
        "EngineDefaults": {
            "DBParameterGroupFamily": family,
            "Parameters": [
                _parameter(
                    "rds.extensions",
                    None,
                    ",".join(extensions_of(major)),
                    "dynamic",
                    "List of extensions that are available for use in this PostgreSQL version",
                ),
                _parameter(
                    "rds.logical_replication",
                    "0",
                    "0,1",
                    "static",
                    "Enables logical decoding.",
                ),
            ],
        }
    }
