"""The SQL of a Blue/Green deployment: the green database as a copy of the blue one, kept in
sync by logical replication inside the one tenant server, and the switchover's checks.

At creation, with the blue endpoint closed and its sessions ended (a few tens of ms): a
publication FOR ALL TABLES and a logical replication slot on the blue database, then
`CREATE DATABASE green TEMPLATE blue`. Nothing can commit on blue between the slot's consistent
point and the copy, so the copy plus the changes the slot decodes afterwards are exactly blue.
The green database gets its own role (with the blue role's password verifier) and a
subscription to the slot (no initial copy: the template was it). Sequences are not replicated
(as in PostgreSQL's logical replication); the switchover copies their values.

Every function runs on an admin worker's connection (pgadmin.py), never on a request thread.
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from local_rds.pgadmin import PgAdmin, drop_slot, drop_subscription

# Message types of pgoutput that carry a change (insert, update, delete, truncate).
CHANGE_TYPES = ("I", "U", "D", "T")


def copy_role(conn: psycopg.Connection, source: str, target: str) -> None:
    """A login role `target` with the same password (its SCRAM verifier) as `source`."""
    row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (source,)).fetchone()
    ident = sql.Identifier(target)
    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(row[0] if row else None)))


def end_sessions(conn: psycopg.Connection, databases: list[str]) -> None:
    """Ends the client sessions of these databases and waits for them to be gone (replication
    workers and walsenders are left alone)."""
    conn.execute(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
        "WHERE datname = ANY(%s) AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
        (databases,),
    )


def publish(admin: PgAdmin, blue: str, publication: str, slot: str) -> None:
    with admin.connect(blue) as c:
        c.execute(sql.SQL("CREATE PUBLICATION {} FOR ALL TABLES").format(sql.Identifier(publication)))
        c.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))


def clone(admin: PgAdmin, conn: psycopg.Connection, blue: str, green: str, publication: str) -> None:
    """Database `green` (owned by role `green`) as a copy of `blue`; blue has no sessions."""
    strategy = " STRATEGY = FILE_COPY" if conn.info.server_version >= 150000 else ""
    create = sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}" + strategy).format(
        sql.Identifier(green), sql.Identifier(blue), sql.Identifier(green)
    )
    for attempt in range(10):
        try:
            conn.execute(create)
            break
        except psycopg.errors.ObjectInUse:
            # "source database is being accessed by other users": a session that was ending.
            if attempt == 9:
                raise
            end_sessions(conn, [blue])
            time.sleep(0.05)
    conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(green)))
    with admin.connect(green) as inside:
        # Everything the blue master user owned is the green master user's; REASSIGN also hands
        # over the blue database itself (a shared object), given back below. DROP OWNED then
        # removes what still names the blue role in the copy (grants to it, default
        # privileges), so each role can be dropped with its own instance.
        inside.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(sql.Identifier(blue), sql.Identifier(green)))
        inside.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(blue)))
        inside.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(publication)))
    conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(blue), sql.Identifier(blue)))


def subscribe(admin: PgAdmin, green: str, subscription: str, blue: str, publication: str, slot: str) -> None:
    with admin.connect(green) as inside:
        inside.execute(
            sql.SQL(
                "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} "
                "WITH (create_slot = false, slot_name = {}, copy_data = false)"
            ).format(
                sql.Identifier(subscription),
                sql.Literal(admin.conninfo_for(blue)),
                sql.Identifier(publication),
                sql.Literal(slot),
            )
        )


def set_enabled(admin: PgAdmin, green: str, subscription: str, enabled: bool, slot: str | None = None) -> None:
    """Resumes or pauses the subscription. A pause returns once its worker has stopped and the
    slot is free: from then on, nothing blue commits reaches green."""
    with admin.connect(green) as inside:
        inside.execute(
            sql.SQL("ALTER SUBSCRIPTION {} " + ("ENABLE" if enabled else "DISABLE")).format(
                sql.Identifier(subscription)
            )
        )
        if enabled:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            busy = inside.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_subscription WHERE subname = %s AND pid IS NOT NULL) "
                "OR EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = %s AND active)",
                (subscription, slot or subscription),
            ).fetchone()[0]
            if not busy:
                return
            time.sleep(0.02)
        raise TimeoutError(f"the subscription {subscription} did not stop within 10 s")


def flush_wal(conn: psycopg.Connection) -> str:
    """Flushes the WAL (the server runs with synchronous_commit = off, so a commit a client was
    told about may not be flushed yet, and logical decoding reads only flushed WAL); returns
    the WAL position every earlier commit is before."""
    with conn.transaction():
        conn.execute("SET LOCAL synchronous_commit = on")
        lsn = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]
        # A commit flushes only when its transaction wrote WAL: a logical message (in this
        # database, so no slot of another database decodes it) is the smallest such write.
        conn.execute("SELECT pg_logical_emit_message(true, 'local_rds_flush', '')")
    return lsn


def state(conn: psycopg.Connection, subscription: str, slot: str) -> dict:
    """What the monitor reports: whether the subscription is enabled and its worker runs, how
    many changes it failed to apply, whether the slot is in use and how far it confirmed."""
    sub = conn.execute(
        "SELECT s.subenabled, (SELECT pid FROM pg_stat_subscription t WHERE t.subid = s.oid AND t.relid IS NULL), "
        "coalesce((SELECT apply_error_count FROM pg_stat_subscription_stats x WHERE x.subid = s.oid), 0) "
        "FROM pg_subscription s WHERE s.subname = %s",
        (subscription,),
    ).fetchone()
    slot_row = conn.execute(
        "SELECT active, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s", (slot,)
    ).fetchone()
    return {
        "subscription": sub is not None,
        "enabled": bool(sub and sub[0]),
        "worker": bool(sub and sub[1]),
        "apply_errors": int(sub[2]) if sub else 0,
        "slot": slot_row is not None,
        "slot_active": bool(slot_row and slot_row[0]),
        "confirmed_lsn": slot_row[1] if slot_row else None,
    }


def pending_changes(admin: PgAdmin, blue: str, slot: str, publication: str) -> int | None:
    """Changes on blue that green has not received: decoded from the slot without consuming
    them. Only while the slot is not streaming (replication paused); None if it is in use."""
    try:
        with admin.connect(blue) as c:
            return c.execute(
                "SELECT count(*) FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, "
                "'proto_version', '1', 'publication_names', %s) "
                "WHERE encode(substring(data FROM 1 FOR 1), 'escape') = ANY(%s)",
                (slot, publication, list(CHANGE_TYPES)),
            ).fetchone()[0]
    except psycopg.errors.ObjectInUse:
        return None


def caught_up(admin: PgAdmin, conn: psycopg.Connection, blue: str, slot: str, publication: str, target: str) -> bool:
    """Whether green has every change blue committed before WAL position `target`."""
    row = conn.execute(
        "SELECT active, confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots WHERE slot_name = %s",
        (target, slot),
    ).fetchone()
    if row is None:
        return False
    if row[0]:
        return bool(row[1])
    return pending_changes(admin, blue, slot, publication) == 0


def sync_sequences(admin: PgAdmin, blue: str, green: str) -> int:
    """Gives every sequence of green the value it has on blue; returns how many."""
    with admin.connect(blue) as c:
        rows = c.execute(
            "SELECT format('%I.%I', schemaname, sequencename), last_value FROM pg_sequences "
            "WHERE last_value IS NOT NULL"
        ).fetchall()
    if rows:
        with admin.connect(green) as c:
            for name, value in rows:
                c.execute("SELECT setval(%s::regclass, %s, true)", (name, value))
    return len(rows)


def teardown(
    admin: PgAdmin, conn: psycopg.Connection, green: str, subscription: str, blue: str, publication: str, slot: str
) -> None:
    """Ends the replication: the subscription (green), the slot and the publication (blue)."""
    exists = {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", ([green, blue],))}
    if green in exists:
        with admin.connect(green) as inside:
            if inside.execute("SELECT 1 FROM pg_subscription WHERE subname = %s", (subscription,)).fetchone():
                drop_subscription(inside, subscription)
    for name, pid in conn.execute(
        "SELECT slot_name, active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)
    ).fetchall():
        drop_slot(conn, name, pid)
    if blue in exists:
        with admin.connect(blue) as inside:
            inside.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(publication)))


def set_read_only(conn: psycopg.Connection, database: str, read_only: bool) -> None:
    """New sessions of `database` start read-only (the old blue after a switchover), or not."""
    ident = sql.Identifier(database)
    if read_only:
        conn.execute(sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(ident))
    else:
        conn.execute(sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(ident))
