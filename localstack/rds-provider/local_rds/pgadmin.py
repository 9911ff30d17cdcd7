"""Creates and drops the instances' roles and databases in the tenant PostgreSQL server.

Work runs on a few worker threads, never on LocalStack's request threads. All work for one
instance goes to the same worker, so it runs in order (a delete issued while the instance is
still being created drops it after the create finished).
"""

from __future__ import annotations

import logging
import queue
import threading
import zlib
from collections.abc import Callable

import psycopg
from psycopg import sql

LOG = logging.getLogger(__name__)

# Every role and database the provider creates carries this prefix; anything with it that the
# provider does not know about (left by an earlier LocalStack run) is dropped at startup.
PREFIX = "lrds_"


class PgAdmin:
    def __init__(self, conninfo: str, workers: int = 2):
        self.conninfo = conninfo
        self.queues = [queue.Queue() for _ in range(max(1, workers))]
        for i, q in enumerate(self.queues):
            threading.Thread(target=self._run, args=(q,), name=f"local-rds-pg-{i}", daemon=True).start()

    def submit(self, key: str, fn: Callable[[psycopg.Connection], None]) -> None:
        self.queues[zlib.crc32(key.encode()) % len(self.queues)].put(fn)

    def _run(self, q: queue.Queue) -> None:
        conn = None
        while True:
            fn = q.get()
            for attempt in range(3):
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(self.conninfo, autocommit=True)
                    fn(conn)
                    break
                except psycopg.OperationalError as e:
                    # Lost connection (server restart): reconnect and retry.
                    LOG.warning("local RDS: admin connection problem (attempt %d): %s", attempt + 1, e)
                    if conn is not None:
                        conn.close()
                    conn = None
                except Exception:
                    LOG.exception("local RDS: admin task failed")
                    break

    # --- SQL, run on a worker's connection ---

    @staticmethod
    def create(conn: psycopg.Connection, name: str, password: str) -> None:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(password)))
        # FILE_COPY (PostgreSQL 15+): about half the time of the default WAL_LOG for a small
        # template and no WAL copy of the template per instance.
        strategy = " STRATEGY = FILE_COPY" if conn.info.server_version >= 150000 else ""
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}" + strategy).format(ident, ident))
        # Only the instance's own role may connect (roles are cluster-wide).
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident))

    @staticmethod
    def drop(conn: psycopg.Connection, name: str) -> None:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))

    def copy(self, conn: psycopg.Connection, source: str, target: str) -> None:
        """A snapshot's contents: database `target` made from `source` as it is now (its
        connections ended first, as the instance is going away), owned by the superuser so
        that dropping the instance's role later does not depend on it."""
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (source,),
        )
        strategy = " STRATEGY = FILE_COPY" if conn.info.server_version >= 150000 else ""
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}" + strategy).format(
                sql.Identifier(target), sql.Identifier(source)
            )
        )
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO CURRENT_USER").format(sql.Identifier(target)))
        with psycopg.connect(self.conninfo, dbname=target, autocommit=True) as inside:
            inside.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(sql.Identifier(source)))

    @staticmethod
    def drop_copy(conn: psycopg.Connection, name: str) -> None:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    @staticmethod
    def set_password(conn: psycopg.Connection, name: str, password: str) -> None:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(name), sql.Literal(password))
        )

    def drop_leftovers(self, keep: Callable[[str], bool]) -> None:
        """Drops prefixed databases and roles that `keep` does not claim."""

        def task(conn: psycopg.Connection) -> None:
            dbs = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (PREFIX + "%",))]
            roles = [r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (PREFIX + "%",))]
            stale = [n for n in dbs if not keep(n)]
            if stale:
                LOG.info("local RDS: dropping %d databases left by an earlier run", len(stale))
            for name in stale:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            for name in roles:
                if not keep(name):
                    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))

        self.submit("leftovers", task)
