"""Talking to the facade: whether it is ready, which tools it lists, and the ready banner."""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.request
from email.message import Message
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

from facade.settings import named_token

PROTOCOL_VERSION = "2025-11-25"
#: The first line printed once everything answers; tests and scripts wait for it.
READY_LINE = "toolq is ready"


def toolq_version() -> str:
    try:
        return package_version("toolq")
    except PackageNotFoundError:
        return "0.0.0"


class FacadeProbe:
    """Just enough HTTP to tell whether the facade is ready and which tools it lists."""

    def __init__(self, mcp_url: str, token: str | None) -> None:
        self.mcp_url = mcp_url
        self.base_url = mcp_url.removesuffix("/mcp")
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}
        # Loopback never goes through an HTTP proxy from the environment.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _send(
        self, method: str, url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Message, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            **self.auth,
            **(headers or {}),
        }
        request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        try:
            with self.opener.open(request, timeout=2.0) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def readyz(self) -> int:
        return self._send("GET", f"{self.base_url}/readyz")[0]

    def list_tools(self) -> list[str]:
        """Names from tools/list, over a short-lived handshake-era session."""
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "toolq-local", "version": toolq_version()},
            },
        }
        status, headers, _ = self._send("POST", self.mcp_url, init)
        session = headers.get("Mcp-Session-Id")
        if status != 200 or not session:
            raise ValueError(f"initialize answered HTTP {status}")
        session_headers = {"Mcp-Session-Id": session, "MCP-Protocol-Version": PROTOCOL_VERSION}
        try:
            notice = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            self._send("POST", self.mcp_url, notice, session_headers)
            listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
            status, _, body = self._send("POST", self.mcp_url, listing, session_headers)
            if status != 200:
                raise ValueError(f"tools/list answered HTTP {status}")
            tools = json.loads(body).get("result", {}).get("tools", [])
            return [str(tool.get("name")) for tool in tools]
        finally:
            self._send("DELETE", self.mcp_url, headers=session_headers)


PROBE_ERRORS = (OSError, http.client.HTTPException, ValueError, AttributeError)


def first_token() -> str | None:
    """The secret of the first of TOOLQ_TOKENS (whose entries may be `name:secret`)."""
    tokens = [t.strip() for t in os.environ.get("TOOLQ_TOKENS", "").split(",") if t.strip()]
    return named_token(tokens[0])[1] if tokens else None


def ready_banner(mcp_url: str, tools: list[str], workers: int, authenticated: bool) -> str:
    auth_header = ' --header "Authorization: Bearer $TOKEN"' if authenticated else ""
    curl_auth = ' -H "Authorization: Bearer $TOKEN"' if authenticated else ""
    seed = '{"tool": "add", "params": {"a": 15, "b": 27}}'
    plural = "" if workers == 1 else "s"
    return "\n".join(
        [
            "",
            f"{READY_LINE}: tools {', '.join(sorted(tools))} on {workers} worker{plural}",
            f"  MCP endpoint:  {mcp_url}",
            f"  Claude Code:   claude mcp add --transport http toolq {mcp_url}{auth_header}",
            f"  Try it:        curl -s {mcp_url} -H 'Content-Type: application/json'{curl_auth} -d '{seed}'",
            '  With Claude:   ./toolq client "Tell me the weather of Delhi and add 15 and 27"'
            + ("" if mcp_url.endswith(":8000/mcp") else f" --url {mcp_url}")
            + " (needs ANTHROPIC_API_KEY)",
            "Press Ctrl-C to stop.",
            "",
        ]
    )
