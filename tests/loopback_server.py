"""A real aiohttp server on a free port of 127.0.0.1: the base of every stand-in for an
outside service in the tests (Open-Meteo, the Anthropic Messages API)."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from aiohttp import web


class LoopbackServer:
    """Subclasses add their routes in `routes()`; `async with` starts and stops the server."""

    name = "server"

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def on_start(self) -> None:
        """Runs once the server listens."""

    async def on_stop(self) -> None:
        """Runs before the server shuts down (release handlers that are waiting)."""

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`, once started."""
        if self._base_url is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._base_url

    async def start(self) -> str:
        """Listen on a free port of 127.0.0.1; returns the base URL."""
        if self._runner is not None:
            return self.base_url
        app = web.Application()
        self.routes(app)
        runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._runner = runner
        self._base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        await self.on_start()
        return self._base_url

    async def stop(self) -> None:
        await self.on_stop()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
