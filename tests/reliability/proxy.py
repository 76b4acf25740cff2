"""A small asyncio TCP proxy between a client and the test PostgreSQL, for fault injection.

It listens on an ephemeral loopback port (never a fixed one) and relays bytes both ways. It
knows just enough of the PostgreSQL wire protocol (startup packets are untyped; every later
frontend message is a type byte and a 4-byte length) to spot a ``COMMIT`` sent by the client.

Faults, switched on by the test while traffic flows:

- :meth:`hang`: stop relaying in both directions but keep every socket open (a server that
  stopped answering: no RST, no FIN, nothing); every message the clients still send is
  dropped and its first 32 bytes recorded in :attr:`PgProxy.sent_while_hung` (what teardown
  tried to say to a dead peer); a relayed connection is unusable after :meth:`resume`;
- :meth:`cut_next_commit`: relay the next ``COMMIT``, wait until the server has answered it
  (so the transaction IS committed), then drop the client's connection without relaying the
  answer: the client cannot know the outcome;
- :meth:`drop_all`: close every relayed connection now (a network cut / backend gone);
- :meth:`sever`: end every server side now but leave the client sides open and silent until the
  client next sends something, which then gets its connection reset (the backend is gone and
  the client cannot know before it tries: a killed backend whose FIN has not arrived yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["PgProxy", "pg_proxy"]

_UNTYPED_CODES = {80877103, 80877104, 80877102}  # SSLRequest, GSSENCRequest, CancelRequest


class _Relay:
    def __init__(
        self,
        proxy: PgProxy,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        server_reader: asyncio.StreamReader,
        server_writer: asyncio.StreamWriter,
    ) -> None:
        self.proxy = proxy
        self.client_reader, self.client_writer = client_reader, client_writer
        self.server_reader, self.server_writer = server_reader, server_writer
        self.commit_cut = asyncio.Event()  # set: the server answered the cut COMMIT
        self.severed = False
        self.ended = asyncio.Event()

    async def client_to_server(self) -> None:
        reader, writer = self.client_reader, self.server_writer
        started = False
        while True:
            if not started:  # untyped: int32 length, int32 code, body
                head = await reader.readexactly(8)
                length, code = struct.unpack("!ii", head)
                body = await reader.readexactly(length - 8)
                started = code not in _UNTYPED_CODES
                message, kind, payload = head + body, b"", b""
            else:
                head = await reader.readexactly(5)
                kind = head[:1]
                (length,) = struct.unpack("!i", head[1:])
                payload = await reader.readexactly(length - 4)
                message = head + payload
            if self.severed:
                self.close()  # the client spoke to a backend that is gone: reset
                return
            if not self.proxy._flowing.is_set():  # hung: a black hole that takes notes
                self.proxy.sent_while_hung.append(message[:32])
                continue
            cut = self.proxy._commit_armed and _is_commit(kind, payload)
            if cut:
                self.proxy._commit_armed = False
                self.proxy._cutting.add(self)
            writer.write(message)
            await writer.drain()
            if cut:
                await self.commit_cut.wait()
                self.close()
                self.proxy.commits_cut += 1
                return

    async def server_to_client(self) -> None:
        reader, writer = self.server_reader, self.client_writer
        while True:
            data = await reader.read(65536)
            if not data:
                if self.severed:
                    await self.ended.wait()  # keep the client side open and silent
                return
            if not self.proxy._flowing.is_set():
                continue  # hung: the client hears nothing
            if self in self.proxy._cutting:
                # swallow the answer to the COMMIT; once ReadyForQuery arrived it is done
                if b"Z\x00\x00\x00\x05" in data:
                    self.commit_cut.set()
                    return
                continue
            writer.write(data)
            await writer.drain()

    def close(self) -> None:
        self.ended.set()
        for w in (self.client_writer, self.server_writer):
            with contextlib.suppress(Exception):
                w.transport.abort()


def _is_commit(kind: bytes, payload: bytes) -> bool:
    if kind not in (b"Q", b"P"):
        return False
    text = payload.upper()
    if kind == b"P":  # Parse: statement name \0 query \0 ...
        text = text.split(b"\x00", 2)[1] if text.count(b"\x00") >= 2 else text
    return text.lstrip().startswith((b"COMMIT", b"END"))


class PgProxy:
    """See the module docstring. ``port`` is the listening port once started."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.connections = 0
        self.commits_cut = 0
        self.sent_while_hung: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._relays: set[_Relay] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._cutting: set[_Relay] = set()
        self._commit_armed = False
        self._flowing = asyncio.Event()
        self._relays_changed = asyncio.Condition()
        self._flowing.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def hang(self) -> None:
        """Stop relaying (both ways); sockets stay open."""
        self._flowing.clear()

    async def connections_closed(self, *, keep: int = 0) -> None:
        """Wait until at most ``keep`` relayed connections are still open (the others' clients
        hung up or were cut)."""
        async with self._relays_changed:
            await self._relays_changed.wait_for(lambda: len(self._relays) <= keep)

    def resume(self) -> None:
        self._flowing.set()

    def cut_next_commit(self) -> None:
        self._commit_armed = True

    def drop_all(self) -> None:
        for relay in list(self._relays):
            relay.close()

    def sever(self) -> None:
        for relay in list(self._relays):
            relay.severed = True
            with contextlib.suppress(Exception):
                relay.server_writer.transport.abort()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        relay = _Relay(self, reader, writer, up_reader, up_writer)
        self._relays.add(relay)
        pumps = [
            asyncio.create_task(relay.client_to_server()),
            asyncio.create_task(relay.server_to_client()),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            relay.close()  # one side ended: end the other (a cut COMMIT was answered already)
            await asyncio.wait(pumps)
            for p in pumps:
                with contextlib.suppress(BaseException):
                    p.result()
            relay.close()
            self._relays.discard(relay)
            self._cutting.discard(relay)
            self._tasks.difference_update(pumps)
            async with self._relays_changed:
                self._relays_changed.notify_all()

    async def close(self) -> None:
        self._flowing.set()
        if self._server is not None:
            self._server.close()
        self.drop_all()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        if self._server is not None:
            await self._server.wait_closed()


@asynccontextmanager
async def pg_proxy(host: str, port: int) -> AsyncIterator[PgProxy]:
    proxy = PgProxy(host, port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
