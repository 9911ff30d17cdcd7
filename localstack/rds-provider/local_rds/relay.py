"""Per-instance PostgreSQL endpoints: one listening port per RDS instance, all served by one
asyncio loop in one thread of the LocalStack process.

A relay reads the client's startup message, renames the master user and the instance's database
name to the instance's real role and database in the shared tenant server, and from then on
copies bytes both ways. Authentication is done by PostgreSQL itself (SCRAM: the server checks
the role named in the startup message and ignores the name inside the SCRAM exchange), so a
wrong password fails with 28P01 exactly as on RDS.

TLS: with a certificate for the route's CA (certificates.py: one server certificate per RDS CA
identifier, made by localstack/up), the relay answers SSLRequest with 'S' and does the TLS
handshake, as an RDS endpoint does; without one it answers 'N'. Plain clients (no SSLRequest)
are served either way. GSSENCRequest gets 'N'.

A port serves whichever route it holds when a client connects: a Blue/Green switchover swaps
the routes of two ports (the green database takes over the blue endpoint).

A route's `gate` says whether the endpoint takes connections now (a stopped instance does not):
when closed, a new connection is reset at once, as an unreachable endpoint would be.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

LOG = logging.getLogger(__name__)

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_3 = 3 << 16
MAX_STARTUP_LEN = 10_000


@dataclass
class Route:
    """Where one instance's endpoint leads. Mutable: ModifyDBInstance may change it."""

    master_user: str
    db_name: str | None
    real_role: str
    real_db: str
    connections: set = field(default_factory=set)
    gate: Callable[[], bool] = lambda: True  # False: refuse new connections
    ca: str | None = None  # the CA identifier whose server certificate the endpoint presents

    def rewrite(self, params: dict[str, str]) -> dict[str, str]:
        out = dict(params)
        user = params.get("user", "")
        # Without `database`, PostgreSQL uses the user name; resolve that before renaming.
        database = params.get("database") or user
        if user == self.master_user:
            out["user"] = self.real_role
        # On RDS an instance has the DBName database and `postgres`; both lead to the
        # instance's one real database here. Any other name passes through (and fails there).
        if database in {self.db_name, "postgres"} or (not self.db_name and database == user):
            out["database"] = self.real_db
        else:
            out["database"] = database
        return out


def parse_startup(body: bytes) -> dict[str, str]:
    parts = body.split(b"\0")
    params: dict[str, str] = {}
    for i in range(0, len(parts) - 1, 2):
        if not parts[i]:
            break
        params[parts[i].decode()] = parts[i + 1].decode()
    return params


def build_startup(params: dict[str, str]) -> bytes:
    body = struct.pack("!i", PROTOCOL_3)
    for key, value in params.items():
        body += key.encode() + b"\0" + value.encode() + b"\0"
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


def server_tls_context(cert_file: str | None, key_file: str | None) -> ssl.SSLContext | None:
    if not cert_file or not key_file:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


class RelayHub:
    def __init__(
        self,
        host: str,
        upstream_socket: str | None,
        upstream_port: int,
        tls: Callable[[str | None], ssl.SSLContext | None] | ssl.SSLContext | None = None,
    ):
        self.host = host
        # The TLS context for a route's CA (or one context for all).
        self.tls_for = tls if callable(tls) else (lambda _ca, ctx=tls: ctx)
        self.upstream_socket = upstream_socket
        self.upstream_port = upstream_port
        self.servers: dict[int, tuple[asyncio.AbstractServer, Route]] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="local-rds-relay", daemon=True)
        self.thread.start()

    # --- called from request threads ---

    def open(self, route: Route) -> int:
        """Listens on a free loopback port for this route; returns the port."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.host, 0))
        sock.listen(128)
        sock.setblocking(False)
        port = sock.getsockname()[1]
        self.servers[port] = (None, route)
        fut = asyncio.run_coroutine_threadsafe(self._serve(sock, port), self.loop)
        self.servers[port] = (fut.result(timeout=10), route)
        return port

    def swap(self, port_a: int, port_b: int) -> None:
        """Each port serves the other's route from the next connection on."""
        (server_a, route_a), (server_b, route_b) = self.servers[port_a], self.servers[port_b]
        self.servers[port_a], self.servers[port_b] = (server_a, route_b), (server_b, route_a)

    def close(self, port: int) -> None:
        entry = self.servers.pop(port, None)
        if entry:
            asyncio.run_coroutine_threadsafe(self._close(*entry), self.loop).result(timeout=10)

    # --- on the loop ---

    async def _serve(self, sock: socket.socket, port: int) -> asyncio.AbstractServer:
        async def on_client(reader, writer):
            entry = self.servers.get(port)
            if entry is None:
                writer.transport.abort()
                return
            await self._handle(reader, writer, entry[1])

        return await asyncio.start_server(on_client, sock=sock)

    def drop_connections(self, port: int) -> None:
        """Ends every open connection of an endpoint (the server behind it went away)."""
        entry = self.servers.get(port)
        if entry:
            asyncio.run_coroutine_threadsafe(self._drop(entry[1]), self.loop).result(timeout=10)

    async def _close(self, server: asyncio.AbstractServer, route: Route) -> None:
        server.close()
        await self._drop(route)

    async def _drop(self, route: Route) -> None:
        for writer in list(route.connections):
            writer.transport.abort()
        route.connections.clear()

    async def _connect_upstream(self):
        if self.upstream_socket:
            return await asyncio.open_unix_connection(
                f"{self.upstream_socket}/.s.PGSQL.{self.upstream_port}"
            )
        return await asyncio.open_connection("127.0.0.1", self.upstream_port)

    async def _handle(self, reader, writer, route: Route) -> None:
        if not route.gate():
            writer.transport.abort()
            return
        route.connections.add(writer)
        up_writer = None
        tls_done = False
        try:
            while True:
                length, code = struct.unpack("!ii", await reader.readexactly(8))
                if length < 8 or length > MAX_STARTUP_LEN:
                    return
                body = await reader.readexactly(length - 8)
                tls = self.tls_for(route.ca) if code == SSL_REQUEST else None
                if tls is not None and not tls_done:
                    writer.write(b"S")
                    await writer.drain()
                    # The StreamWriter's transport is replaced; the reader reads decrypted data.
                    route.connections.discard(writer)
                    await writer.start_tls(tls)
                    route.connections.add(writer)
                    tls_done = True
                    continue
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    writer.write(b"N")
                    await writer.drain()
                    continue
                if code == CANCEL_REQUEST:
                    up_reader, up_writer = await self._connect_upstream()
                    up_writer.write(struct.pack("!ii", length, code) + body)
                    await up_writer.drain()
                    return
                if code == PROTOCOL_3:
                    break
                return
            params = route.rewrite(parse_startup(body))
            up_reader, up_writer = await self._connect_upstream()
            route.connections.add(up_writer)
            up_writer.write(build_startup(params))
            await up_writer.drain()
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ssl.SSLError):
            pass
        except Exception:
            LOG.exception("local RDS relay connection failed")
        finally:
            route.connections.discard(writer)
            writer.close()
            if up_writer is not None:
                route.connections.discard(up_writer)
                up_writer.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            writer.close()
