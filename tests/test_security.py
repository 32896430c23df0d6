"""Who may call /mcp: Origin, Host, bearer tokens, and where the facade agrees to listen."""

from __future__ import annotations

import os
import subprocess
import sys

from mcp_http import McpHttp

from facade.security import AccessPolicy
from facade.settings import FacadeSettings, named_token

PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


async def test_a_foreign_origin_is_403(mcp: McpHttp):
    status, _, _ = await mcp.post(PING, headers={"Origin": "https://evil.example"})
    assert status == 403


async def test_loopback_origins_are_allowed(mcp: McpHttp):
    for origin in ("http://localhost:6274", "http://127.0.0.1:8000", "http://[::1]:3000"):
        status, _, _ = await mcp.post(PING, headers={"Origin": origin})
        assert status == 200, origin


async def test_configured_origins_are_allowed(make_facade):
    client = await make_facade(allowed_origins=("https://app.example",))
    await client.initialize()
    status, _, _ = await client.post(PING, headers={"Origin": "https://app.example"})
    assert status == 200
    status, _, _ = await client.post(PING, headers={"Origin": "https://other.example"})
    assert status == 403


async def test_a_foreign_host_on_loopback_is_421(mcp: McpHttp):
    status, _, _ = await mcp.post(PING, headers={"Host": "attacker.example:8000"})
    assert status == 421


async def test_tokens_are_required_when_configured(make_facade):
    client = await make_facade(tokens=("alpha", "beta"))
    status, body, headers = await client.post(PING, session=False)
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Bearer realm="toolq"'
    assert body["error"] == "unauthorized"
    status, _, headers = await client.post(PING, session=False, headers={"Authorization": "Bearer gamma"})
    assert status == 401
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    status, _, _ = await client.post(
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}},
        session=False,
        headers={"Authorization": "Bearer beta"},
    )
    assert status == 200


async def test_health_endpoints_need_no_token(make_facade):
    client = await make_facade(tokens=("alpha",))
    assert (await client.client.get("/healthz")).status == 200
    ready = await client.client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["status"] == "ready"


async def test_an_observer_token_reads_metrics_and_status_but_calls_nothing(make_facade, start_worker):
    await start_worker()
    client = await make_facade(tokens=("alice:call-secret",), observer_tokens=("prometheus:scrape-secret",))
    observer = {"Authorization": "Bearer scrape-secret"}
    caller = {"Authorization": "Bearer call-secret"}
    for path in ("/metrics", "/status"):
        assert (await client.client.get(path)).status == 401, path
        assert (await client.client.get(path, headers=observer)).status == 200, path
    params = {"protocolVersion": "2025-11-25"}
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
    status, body, headers = await client.post(initialize, session=False, headers=observer)
    assert status == 403
    assert body["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in headers["WWW-Authenticate"]
    status, _, _ = await client.post(initialize, session=False, headers=caller)
    assert status == 200, "the call token still works"
    assert (await client.client.get("/metrics", headers=caller)).status == 200


def test_observer_tokens_without_call_tokens_are_refused_at_start():
    refusal = FacadeSettings(observer_tokens=("prometheus:s",)).check_exposure()
    assert refusal is not None and "TOOLQ_TOKENS" in refusal
    assert FacadeSettings(tokens=("t",), observer_tokens=("prometheus:s",)).check_exposure() is None


def test_token_check_accepts_only_exact_bearer_tokens():
    policy = AccessPolicy(FacadeSettings(tokens=("t0ken",)))
    assert policy.authenticate("Bearer t0ken") is not False
    assert policy.authenticate("bearer t0ken") is not False
    assert policy.authenticate("Bearer t0ke") is False
    assert policy.authenticate("Bearer t0ken0") is False
    assert policy.authenticate("Basic t0ken") is False
    assert policy.authenticate(None) is False


def test_listening_beyond_loopback_without_tokens_is_refused():
    assert FacadeSettings(host="0.0.0.0").check_exposure() is not None
    assert FacadeSettings(host="0.0.0.0", tokens=("t",)).check_exposure() is None
    assert FacadeSettings(host="0.0.0.0", allow_unauthenticated=True).check_exposure() is None
    assert FacadeSettings(host="127.0.0.1").check_exposure() is None
    assert FacadeSettings(host="::1").check_exposure() is None


def test_the_facade_process_refuses_to_expose_itself():
    done = subprocess.run(
        [sys.executable, "-m", "facade", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert "TOOLQ_TOKENS" in done.stderr


async def test_a_session_belongs_to_the_token_that_opened_it(make_facade, start_worker):
    await start_worker(["add"])
    client = await make_facade(tokens=("alice:alpha-secret", "bob:beta-secret"))
    alice = {"Authorization": "Bearer alpha-secret"}
    bob = {"Authorization": "Bearer beta-secret"}
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25"},
    }
    status, _, headers = await client.post(initialize, session=False, headers=alice)
    assert status == 200
    session = {"Mcp-Session-Id": headers["Mcp-Session-Id"], "MCP-Protocol-Version": "2025-11-25"}
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 1, "b": 1}},
    }
    status, body, _ = await client.post(call, session=False, headers={**session, **bob})
    assert (status, body["error"]["code"]) == (404, -32001)  # as if it did not exist
    response = await client.client.delete("/mcp", headers={**session, **bob})
    assert response.status == 404  # nor can another token end it
    status, body, _ = await client.post(call, session=False, headers={**session, **alice})
    assert (status, body["result"]["structuredContent"]["sum"]) == (200, 2)


def test_tokens_are_named_or_named_after_their_digest():
    assert named_token("alice:s3cret") == ("alice", "s3cret")
    name, secret = named_token("s3cret")
    assert secret == "s3cret"
    assert name.startswith("token-") and "s3cret" not in name
    assert named_token("s3cret") == (name, secret)  # the same name after a restart
    assert named_token("a b:c") == (named_token("a b:c")[0], "a b:c")  # not a name: all of it is the secret


async def test_what_a_client_says_about_itself_is_kept_short(make_facade, redis):
    client = await make_facade()
    huge = {"name": "n" * 100_000, "version": "1", "padding": "p" * 500_000}
    capabilities = {"sampling": {"deep": "d" * 100_000}, **{f"cap{i}": {} for i in range(1000)}}
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize"}
    initialize["params"] = {"protocolVersion": "2025-11-25", "clientInfo": huge, "capabilities": capabilities}
    status, _, _ = await client.post(initialize, session=False)
    assert status == 200
    (key,) = await redis.keys("toolq:session:*")
    assert len(await redis.get(key)) < 4096


async def test_a_principal_keeps_a_bounded_number_of_sessions(make_facade, redis):
    client = await make_facade(max_sessions_per_principal=3, session_recheck_seconds=0)
    sessions = []
    for _ in range(5):
        await client.initialize()
        sessions.append(client.session_id)
    statuses = []
    for session_id in sessions:
        client.session_id = session_id
        statuses.append((await client.post({"jsonrpc": "2.0", "id": 9, "method": "ping"}))[0])
    assert statuses == [404, 404, 200, 200, 200]  # the least recently used made room
    assert len(await redis.keys("toolq:session:*")) == 3


def test_settings_that_cannot_be_served_are_a_clear_error_at_start_up():
    facade = subprocess.run(
        [sys.executable, "-m", "facade"],
        env={**os.environ, "TOOLQ_PORT": "abc", "TOOLQ_PAGE_SIZE": "0", "TOOLQ_MAX_CALL_SECONDS": "-1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert facade.returncode == 2, facade.stderr
    for variable in ("TOOLQ_PORT='abc'", "TOOLQ_PAGE_SIZE='0'", "TOOLQ_MAX_CALL_SECONDS='-1'"):
        assert variable in facade.stderr
    assert "Traceback" not in facade.stderr
    worker = subprocess.run(
        [sys.executable, "-m", "workers", "--concurrency", "0", "--list"],
        env={**os.environ, "TOOLQ_JOB_LEASE_SECONDS": "0.5"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert worker.returncode == 2, worker.stderr
    assert "TOOLQ_JOB_LEASE_SECONDS='0.5'" in worker.stderr and "Traceback" not in worker.stderr
