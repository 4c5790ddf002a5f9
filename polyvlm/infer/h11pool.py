"""A lean keep-alive HTTP/1.1 transport for the retrying client (`polyvlm.infer.client`): h11 (the protocol state
machine httpx itself uses) over asyncio streams, one connection per concurrency slot.

Why not httpx directly: at hundreds of requests per second httpx + httpcore + anyio cost about 1-1.7 ms of
CPU per request on this class of machine, against about 0.3 ms here, and a synth job is bound by that CPU
long before the model server is (see benchmarks/synth_throughput.py). `transport="httpx"` in the client
switches back (proxies from the environment, HTTP/2 and the like are only there).
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

import h11


class HTTPError(Exception):
    """Transport failure; `code` is `timeout` or `connection`."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.used = False

    def close(self) -> None:
        self.writer.close()


class H11Pool:
    """`size` connection slots to one origin; `post` blocks until a slot is free (the concurrency limit)."""

    def __init__(self, base_url: str, size: int, timeout: float, headers: dict[str, str]):
        u = urlsplit(base_url.rstrip("/"))
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"base_url {base_url!r} is not an http(s) URL")
        self.host, self.prefix = u.hostname, u.path
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.tls = ssl.create_default_context() if u.scheme == "https" else None
        self.timeout = timeout
        host_header = self.host if u.port is None else f"{self.host}:{u.port}"
        self.headers = [("Host", host_header), *headers.items()]
        self._idle: asyncio.Queue[_Conn | None] = asyncio.Queue()
        for _ in range(max(1, size)):
            self._idle.put_nowait(None)
        self._open: set[_Conn] = set()

    async def _connect(self) -> _Conn:
        reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self.tls, limit=1 << 22)
        conn = _Conn(reader, writer)
        self._open.add(conn)
        return conn

    async def _exchange(self, conn: _Conn, path: str, body: bytes,
                        headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        c = conn.h11
        req = h11.Request(method="POST", target=self.prefix + path,
                          headers=[*self.headers, *headers.items(), ("Content-Length", str(len(body)))])
        conn.writer.write(c.send(req) + c.send(h11.Data(data=body)) + c.send(h11.EndOfMessage()))
        await conn.writer.drain()
        status, chunks, got = 0, [], {}
        while True:
            ev = c.next_event()
            if ev is h11.NEED_DATA:
                data = await conn.reader.read(1 << 16)
                c.receive_data(data)  # b"" marks EOF; h11 then raises if the response is incomplete
                continue
            if isinstance(ev, h11.Response):
                status = ev.status_code
                got = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in ev.headers}
            elif isinstance(ev, h11.Data):
                chunks.append(bytes(ev.data))
            elif isinstance(ev, h11.EndOfMessage):
                return status, got, b"".join(chunks)
            elif isinstance(ev, h11.ConnectionClosed):
                raise h11.RemoteProtocolError("connection closed before the response ended")

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """POST `body`; returns (status, response headers with lower-case names, response body).
        Raises HTTPError on time-out or transport failure."""
        conn = await self._idle.get()
        try:
            async with asyncio.timeout(self.timeout):
                for fresh_try in (False, True):
                    reused = conn is not None and conn.used
                    try:
                        if conn is None:
                            conn = await self._connect()
                        status, got, data = await self._exchange(conn, path, body, headers)
                    except (OSError, h11.ProtocolError, asyncio.IncompleteReadError) as e:
                        if conn is not None:
                            self._drop(conn)
                        conn = None
                        if reused and not fresh_try:  # the server closed an idle keep-alive connection
                            continue
                        raise HTTPError(f"{type(e).__name__}: {e}", "connection") from None
                    conn.used = True
                    if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
                        conn.h11.start_next_cycle()
                    else:
                        self._drop(conn)
                        conn = None
                    return status, got, data
                raise HTTPError("unreachable", "connection")
        except TimeoutError:
            if conn is not None:
                self._drop(conn)
                conn = None
            raise HTTPError(f"timed out after {self.timeout}s", "timeout") from None
        except BaseException:
            if conn is not None:
                self._drop(conn)
                conn = None
            raise
        finally:
            self._idle.put_nowait(conn)

    def _drop(self, conn: _Conn) -> None:
        self._open.discard(conn)
        conn.close()

    async def close(self) -> None:
        for conn in list(self._open):
            self._drop(conn)
