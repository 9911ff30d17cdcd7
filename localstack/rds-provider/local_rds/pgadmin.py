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
from psycopg import conninfo as pg_conninfo
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

    def submit_later(self, key: str, delay: float, fn: Callable[[psycopg.Connection], None]) -> None:
        """Queues `fn` after `delay` seconds (a poll that must not hold a worker meanwhile)."""
        timer = threading.Timer(delay, self.submit, args=(key, fn))
        timer.daemon = True
        timer.start()

    def call(self, key: str, fn: Callable[[psycopg.Connection], object], timeout: float = 30.0):
        """Runs `fn` on the key's worker, in order with its other work, and returns its result
        (raises what it raised). Never call it while holding a lock the work may need."""
        done = threading.Event()
        box: dict = {}

        def task(conn):
            try:
                box["value"] = fn(conn)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                box["error"] = e
            finally:
                done.set()

        self.submit(key, task)
        if not done.wait(timeout):
            raise TimeoutError(f"the admin worker did not finish within {timeout} s")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def connect(self, dbname: str) -> psycopg.Connection:
        """A superuser connection to one database of the tenant server (autocommit)."""
        return psycopg.connect(self.conninfo, dbname=dbname, autocommit=True)

    def conninfo_for(self, dbname: str) -> str:
        """A libpq connection string to `dbname` as the superuser (for a subscription)."""
        params = pg_conninfo.conninfo_to_dict(self.conninfo)
        params["dbname"] = dbname
        return pg_conninfo.make_conninfo(**params)

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

    def drop(self, conn: psycopg.Connection, name: str) -> None:
        ident = sql.Identifier(name)
        self.detach_replication(conn, name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))

    def detach_replication(self, conn: psycopg.Connection, database: str) -> None:
        """Drops the subscriptions in `database` and the replication slots on it (a Blue/Green
        deployment's), which DROP DATABASE refuses to drop with it, even WITH (FORCE)."""
        subs = [
            r[0]
            for r in conn.execute(
                "SELECT s.subname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = %s",
                (database,),
            )
        ]
        if subs:
            with self.connect(database) as inside:
                for sub in subs:
                    drop_subscription(inside, sub)
        for slot, pid in conn.execute(
            "SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = %s", (database,)
        ).fetchall():
            drop_slot(conn, slot, pid)

    def copy(self, conn: psycopg.Connection, source: str, target: str) -> None:
        """A snapshot's contents: database `target` made from `source` as it is now (its
        connections ended first, as the instance is going away), owned by the superuser so
        that dropping the instance's role later does not depend on it."""
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (source,),
        )
        strategy = " STRATEGY = FILE_COPY" if conn.info.server_version >= 150000 else ""
        create = sql.SQL("CREATE DATABASE {} TEMPLATE {}" + strategy).format(
            sql.Identifier(target), sql.Identifier(source)
        )
        for attempt in range(10):
            try:
                conn.execute(create)
                break
            except psycopg.errors.ObjectInUse:
                # A session (e.g. a Blue/Green deployment's walsender) that had not ended yet.
                if attempt == 9:
                    raise
                conn.execute(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (source,),
                )
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO CURRENT_USER").format(sql.Identifier(target)))
        with psycopg.connect(self.conninfo, dbname=target, autocommit=True) as inside:
            inside.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(sql.Identifier(source)))

    def drop_copy(self, conn: psycopg.Connection, name: str) -> None:
        self.detach_replication(conn, name)
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
                self.drop_copy(conn, name)
            for slot, pid in conn.execute(
                "SELECT slot_name, active_pid FROM pg_replication_slots WHERE slot_name LIKE %s", (PREFIX + "%",)
            ).fetchall():
                drop_slot(conn, slot, pid)
            for name in roles:
                if not keep(name):
                    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))

        self.submit("leftovers", task)


def drop_subscription(conn: psycopg.Connection, name: str) -> None:
    """Drops a subscription of the current database without asking its publisher to drop the
    slot (the publisher may be gone); the slot is dropped on its own."""
    ident = sql.Identifier(name)
    conn.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident))
    conn.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(ident))
    conn.execute(sql.SQL("DROP SUBSCRIPTION IF EXISTS {}").format(ident))


def drop_slot(conn: psycopg.Connection, slot: str, active_pid: int | None) -> None:
    if active_pid:
        conn.execute("SELECT pg_terminate_backend(%s, 5000)", (active_pid,))
    try:
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        )
    except psycopg.errors.ObjectInUse:
        # Its walsender had not exited yet: once more after it did.
        conn.execute(
            "SELECT pg_terminate_backend(active_pid, 5000) FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        )
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        )
