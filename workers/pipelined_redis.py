"""One Redis connection shared by many coroutines, for the commands every call makes.

redis-py spends about 45 µs of CPU on each command it sends (pool, locks, retry wrapper,
packing, parsing) where the round trip itself costs Redis a few; a call makes four such
commands on its way (enqueue; claim, store; the completion it pushes), so on two cores redis-py
was a third of toolq's CPU per call. Here a command is packed into bytes and written at once,
and one protocol parses every reply with hiredis (Redis's own parser, the one redis-py uses)
and hands it to the command that waits for it: Redis answers a connection's commands in order.
About 12 µs a command, and commands from many calls share one write when they meet.

Only the hot path goes this way (the scripts of enqueue, claim and store, and the push of
completions); everything else stays on redis-py. Connection options come from the same
RedisSettings as arq's pool (host, port, database, user and password, TLS), so both reach the
same Redis the same way. Errors are redis-py's own exception types, so the callers' handling of
a Redis that is away (redis.exceptions.ConnectionError, TimeoutError) is unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

import hiredis
from arq.connections import RedisSettings
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: What a command's arguments may be.
Arg = bytes | str | int | float


def pack(args: Sequence[Arg]) -> bytes:
    """One command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            data = repr(float(arg)).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class Script:
    """A Lua script, sent by its SHA1 (loaded into Redis the first time it is missing)."""

    def __init__(self, source: str):
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


def tls_context(settings: RedisSettings) -> ssl.SSLContext | None:
    """The TLS context of a `rediss://` Redis, from the same options redis-py reads."""
    if not settings.ssl:
        return None
    context = ssl.create_default_context(cafile=settings.ssl_ca_certs, cadata=settings.ssl_ca_data)
    if settings.ssl_certfile:
        context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
    requirement = settings.ssl_cert_reqs
    if requirement in ("none", ssl.CERT_NONE):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.check_hostname = bool(settings.ssl_check_hostname)
        context.verify_mode = ssl.CERT_OPTIONAL if requirement == "optional" else ssl.CERT_REQUIRED
    return context


class _Replies(asyncio.Protocol):
    """Parses the connection's replies and hands each to the next waiting command.

    With a `timeout`, a connection on which commands have waited that long without any reply
    is given up (every waiting command fails with redis-py's TimeoutError): one timer per
    connection, not one per command.
    """

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self.reader = hiredis.Reader()
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._loop = asyncio.get_running_loop()
        self._last_reply = 0.0
        self._watch: asyncio.TimerHandle | None = None
        #: Commands written in this turn of the event loop, sent together at its end.
        self._outgoing: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, command: bytes, future: asyncio.Future[Any]) -> None:
        """Send a command whose reply `future` awaits. The commands of one turn of the event
        loop leave in one write (one system call, one wake-up of Redis), at the turn's end."""
        self.expect(future)
        if not self._outgoing:
            self._loop.call_soon(self._flush)
        self._outgoing.append(command)

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if self.transport is not None and self.lost is None:
            self.transport.write(b"".join(outgoing))

    def expect(self, future: asyncio.Future[Any]) -> None:
        """A command was written whose reply `future` awaits."""
        if not self.waiting:
            self._last_reply = self._loop.time()  # the clock runs while something waits
        self.waiting.append(future)
        if self.timeout is not None and self._watch is None:
            self._watch = self._loop.call_later(self.timeout, self._check)

    def _check(self) -> None:
        self._watch = None
        if not self.waiting or self.timeout is None:
            return
        silent = self._loop.time() - self._last_reply
        if silent < self.timeout:
            self._watch = self._loop.call_later(self.timeout - silent, self._check)
            return
        self.give_up(RedisTimeoutError(f"Redis did not answer within {self.timeout:g} s"))

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        self._last_reply = self._loop.time()
        while (reply := self.reader.gets()) is not False:
            if not self.waiting:
                continue  # nothing asked for it (cannot happen unless Redis misbehaves)
            future = self.waiting.popleft()
            if future.done():
                continue  # its caller gave up (cancelled): the reply is dropped, in order
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(_response_error(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.give_up(RedisConnectionError(f"connection to Redis lost ({exc or 'closed'})"))

    def give_up(self, error: Exception) -> None:
        """The connection is done with: every waiting command fails with `error`."""
        if self.lost is None:
            self.lost = error
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)
        self._writable.set()
        if self.transport is not None:
            with contextlib.suppress(RuntimeError):
                self.transport.abort()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    async def writable(self) -> None:
        await self._writable.wait()


def _response_error(message: str) -> ResponseError:
    return NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message)


class PipelinedRedis:
    """Commands from any number of coroutines on one connection, each answered in order.

    Connects on first use and again after the connection is lost; a command sent on a lost
    connection fails with redis-py's ConnectionError (its caller retries as it would with
    redis-py). With a `timeout`, commands that wait that long with no reply on the connection
    fail with redis-py's TimeoutError, and the connection is dropped (a late reply would
    otherwise be matched to the wrong command).
    """

    def __init__(self, settings: RedisSettings, *, timeout: float | None = 5.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self._replies: _Replies | None = None
        self._connecting = asyncio.Lock()

    async def execute(self, *args: Arg) -> Any:
        """One command; its reply (bytes, int, list, None), or redis-py's error for an error reply."""
        replies = self._replies
        if replies is None or replies.lost is not None:
            replies = await self._connect()
        if not replies._writable.is_set():
            await replies.writable()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        replies.send(pack(args), future)
        return await future

    async def run_script(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        """EVALSHA, and EVAL (which caches the script) when Redis does not have it yet."""
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.execute("EVAL", script.source, len(keys), *keys, *args)

    async def close(self) -> None:
        if self._replies is not None:
            self._drop(self._replies)
            self._replies = None

    async def _connect(self) -> _Replies:
        async with self._connecting:
            if self._replies is not None and self._replies.lost is None:
                return self._replies
            settings = self.settings
            host = settings.host if isinstance(settings.host, str) else settings.host[0][0]
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(max(1.0, float(settings.conn_timeout))):
                    _, replies = await loop.create_connection(
                        lambda: _Replies(self.timeout), host, settings.port, ssl=tls_context(settings)
                    )
            except TimeoutError:
                raise RedisTimeoutError("timed out connecting to Redis") from None
            except OSError as exc:
                raise RedisConnectionError(f"cannot connect to Redis ({exc.strerror or exc})") from None
            self._replies = replies
            try:
                if settings.password:
                    user = [settings.username] if settings.username else []
                    await self.execute("AUTH", *user, settings.password)
                if settings.database:
                    await self.execute("SELECT", settings.database)
            except BaseException:
                self._drop(replies)
                raise
            self._replies = replies
            return replies

    def _drop(self, replies: _Replies) -> None:
        replies.give_up(RedisConnectionError("connection to Redis closed"))


class HotPath(Protocol):
    """The hot path's commands and scripts: a PipelinedRedis, or redis-py where there is no
    socket to share."""

    async def execute(self, *args: Arg) -> Any: ...

    async def run_script(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> Any: ...

    async def close(self) -> None: ...


class RedisPyCommands:
    """The hot path on a redis-py client: for an in-process fake Redis (the fast tests), which
    has no socket a PipelinedRedis could share, and for Redis behind Sentinel."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def execute(self, *args: Arg) -> Any:
        return await self.redis.execute_command(*args)  # type: ignore[no-untyped-call]

    async def run_script(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        try:
            return await self.redis.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
        except NoScriptError:
            return await self.redis.execute_command("EVAL", script.source, len(keys), *keys, *args)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        """The client is its owner's to close."""


def hot_path(settings: RedisSettings | None, redis: Redis, *, timeout: float | None = 5.0) -> HotPath:
    """A PipelinedRedis to the Redis of `settings`; redis-py's `redis` when there are no settings
    (a client handed in, as tests do) or the Redis is reached through Sentinel. `timeout` bounds
    each command's wait (None for blocking commands)."""
    if settings is None or settings.sentinel:
        return RedisPyCommands(redis)
    return PipelinedRedis(settings, timeout=timeout)
