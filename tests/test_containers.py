"""The container setup, verified without a Docker engine.

The Dockerfile is parsed by Docker's own parser and linted by hadolint; docker-compose.yml is
validated against the Compose Specification's JSON schema and linted by compose-lint for its
security points; and every service of the compose file runs as a local process from its own
command and environment (tests/compose_as_processes.py), with the weather pool scaled to 3.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from compose_as_processes import (
    COMPOSE_FILE,
    DOCKERFILE,
    DOCKERIGNORE,
    ENV_EXAMPLE,
    ComposeAsProcesses,
    InterpolationError,
    compose_services,
    dockerfile_stages,
    duration_seconds,
    host_environment,
    image_config,
    interpolate,
    load_compose,
    local_command,
    read_env_file,
    variables_used,
)
from fake_open_meteo import FakeOpenMeteo
from real_processes import ROOT, live_workers, wait_until

if importlib.util.find_spec("dockerfile") is None:
    if platform.machine().lower() in ("aarch64", "arm64") and sys.platform == "linux":
        pytest.skip(
            "the 'dockerfile' package (Docker's Dockerfile parser) has no wheel for Linux on ARM "
            "and building it needs Go; the container tests run on x86_64",
            allow_module_level=True,
        )
    pytest.fail("the 'dockerfile' package is missing: install the dev extra (pip install -e '.[dev]')")

TOKEN = "test-token-" + "x" * 24
WEATHER_REPLICAS = 3
WEATHER_CALLS = 60
WORKER_SERVICES = ("worker-weather", "worker-add")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE|CREDENTIAL", re.IGNORECASE)


def tool(name: str) -> str:
    """A lint tool installed with the dev extra, next to this interpreter."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: install the dev extra (pip install -e '.[dev]')")
    return found


def compose_env(**overrides: str) -> dict[str, str]:
    """What `docker compose` would interpolate from: .env.example, a token, and overrides."""
    return {**read_env_file(ENV_EXAMPLE), "TOOLQ_TOKENS": TOKEN, **overrides}


@pytest.fixture(scope="module")
def stages() -> list[Any]:
    return dockerfile_stages()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose(compose_env())


# --- the Dockerfile ---------------------------------------------------------------------------------


def test_dockerfile_builds_in_two_stages_from_a_pinned_slim_python(stages):
    assert len(stages) >= 2
    for stage in stages:
        image, _, tag = stage.base.partition(":")
        assert image == "python", stage.base
        assert re.match(r"3\.1\d+(\.\d+)?-slim", tag), f"pin a slim Python version tag: {stage.base}"
    assert stages[-1].base == stages[0].base, "build and run on the same Python"


def test_dockerfile_builds_wheels_from_pyproject_and_installs_only_those(stages):
    build, final = stages[0], stages[-1]
    copied = [i.value[:-1] for i in build.all("COPY")]
    assert ("pyproject.toml", "README.md") in copied
    build_runs = " ".join(i.value[0] for i in build.all("RUN"))
    assert "pip wheel --wheel-dir /wheels ." in build_runs
    assert not final.all("COPY") and not final.all("ADD"), "the final stage takes nothing but the wheels"
    (install,) = [i for i in final.all("RUN") if "pip install" in i.value[0]]
    assert "--no-index" in install.value[0] and "/wheels" in install.value[0]
    assert f"from={build.name}" in ",".join(install.flags)


def test_dockerfile_final_stage_runs_as_a_non_root_user(stages):
    users = stages[-1].all("USER")
    assert users, "the final stage must switch to a non-root USER"
    user = users[-1].value[0].split(":")[0]
    assert user not in ("root", "0"), user
    assert user.isdigit(), "a numeric user lets Kubernetes' runAsNonRoot verify it"


def test_dockerfile_healthcheck_asks_the_facade_readiness_endpoint():
    image = image_config()
    assert image.healthcheck is not None and image.healthcheck[0] == "CMD"
    assert local_command(image.healthcheck[1:])  # plain `python`: no curl in a slim image
    assert "/readyz" in " ".join(image.healthcheck)
    flags = dict(flag.lstrip("-").split("=", 1) for flag in image.healthcheck_flags)
    assert {"interval", "timeout", "start-period", "retries"} <= set(flags)


def test_dockerfile_stops_with_sigterm_and_serves_the_facade_by_default():
    image = image_config()
    assert image.stopsignal == "SIGTERM"
    assert image.entrypoint + image.cmd == ["python", "-m", "facade"]
    assert image.env["TOOLQ_HOST"] == "0.0.0.0"
    assert image.env["TOOLQ_PORT"] in image.exposed


def test_dockerfile_bakes_in_no_secrets(stages):
    for stage in stages:
        for instruction in stage.instructions:
            if instruction.cmd == "ENV":
                names = instruction.value[0::2]
            elif instruction.cmd == "ARG":
                names = tuple(v.split("=")[0] for v in instruction.value)
            else:
                names = ()
            assert not [n for n in names if SECRET_NAME.search(n)], instruction.original
            if instruction.cmd in ("COPY", "ADD"):
                assert not any(".env" in source for source in instruction.value[:-1]), instruction.original


def _run_dockerfile_line(command: str, wheels: Path, python: str, cwd: Path, env: dict[str, str]) -> None:
    """A RUN line of the Dockerfile on this machine: its `pip` is `python -m pip`, /wheels a tmp dir."""
    command = re.sub(r"\bpip (?=wheel|install)", f"{python} -m pip ", command).replace("/wheels", str(wheels))
    result = subprocess.run(
        ["/bin/sh", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"


def test_image_build_steps_install_a_toolq_that_runs_outside_the_source_tree(stages, tmp_path):
    """The Dockerfile's pip steps, run here: wheels built from pyproject.toml (deps from PyPI),
    then installed with --no-index into a fresh venv, which serves both roles."""
    build, final = stages[0], stages[-1]
    context, wheels, app = tmp_path / "src", tmp_path / "wheels", tmp_path / "app"
    app.mkdir()
    context.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for instruction in build.all("COPY"):
        *sources, target = instruction.value
        for source in sources:
            destination = context / target if target not in ("./", ".") else context / source
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, destination, ignore=ignore)
            else:
                shutil.copy(ROOT / source, context / source)
    env = {**host_environment(), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for instruction in build.all("RUN"):
        _run_dockerfile_line(instruction.value[0], wheels, sys.executable, context, env)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    for instruction in final.all("RUN"):
        if "pip install" in instruction.value[0]:
            assert "type=bind,from=build,source=/wheels,target=/wheels" in ",".join(instruction.flags)
            _run_dockerfile_line(instruction.value[0], wheels, python, app, env)

    listed = subprocess.run(
        [python, "-m", "workers", "--list"], cwd=app, env=env, capture_output=True, text=True, check=False
    )
    assert listed.returncode == 0, listed.stderr
    assert {line.split("\t")[0] for line in listed.stdout.splitlines()} >= {"add", "weather"}
    test_double = subprocess.run(
        [python, "-c", "import fakeredis"], cwd=app, env=env, capture_output=True, check=False
    )
    assert test_double.returncode != 0, "the image must not ship fakeredis, a test double"
    refused = subprocess.run(
        [python, "-m", "facade"],
        cwd=app,
        env={**env, **image_config().env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2 and "refusing to listen on 0.0.0.0" in refused.stderr, refused.stderr


def test_hadolint_finds_nothing_in_the_dockerfile():
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or a parent decides."""

    def matches(pattern: str, candidate: str) -> bool:
        regex = re.escape(pattern.strip("/")).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        return re.fullmatch(regex, candidate) is not None

    parents = [str(Path(*Path(path).parts[: n + 1])) for n in range(len(Path(path).parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if any(matches(pattern.lstrip("!"), candidate) for candidate in parents):
            ignored = not negated
    return ignored


def test_dockerignore_sends_only_the_sources_to_the_build(stages):
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for secret_or_heavy in (".env", ".venv/bin/python", ".git/config", ".toolq/cache", "tests/conftest.py"):
        assert dockerignored(secret_or_heavy, patterns), secret_or_heavy
    assert dockerignored("facade/__pycache__/app.cpython-312.pyc", patterns)
    for instruction in stages[0].all("COPY"):
        for source in instruction.value[:-1]:
            for path in [source] if (ROOT / source).is_file() else [f"{source}/__init__.py"]:
                assert not dockerignored(path, patterns), f"{path} is COPY'd but .dockerignore drops it"


# --- docker-compose.yml: shape and security -------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification_schema(tmp_path):
    # check-jsonschema ships the Compose Specification's own schema (compose-spec.json).
    resolved = tmp_path / "docker-compose.resolved.yml"
    resolved.write_text(json.dumps(load_compose(compose_env())))
    for path in (COMPOSE_FILE, resolved):
        result = subprocess.run(
            [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_compose_spec_schema_check_catches_a_misspelt_key(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("    ports:\n", "    prots:\n", 1))
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1 and "prots" in result.stdout, result.stdout


# The findings compose-lint may report, each with the reason it is accepted.
COMPOSE_LINT_ACCEPTED = {
    "CL-0019": {
        "facade": "toolq's image is built locally by `docker compose up --build`: no digest exists before",
        "worker-weather": "the same locally built toolq image",
        "worker-add": "the same locally built toolq image",
        "redis": "the official image's 7.4 tag follows patch releases; production pins a digest",
        "prometheus": "monitoring profile: a pinned release of the official image; production pins a digest",
        "grafana": "monitoring profile: a pinned release of the official image; production pins a digest",
    },
}


def test_compose_lint_finds_no_security_issue(tmp_path):
    config = tmp_path / ".compose-lint.yml"
    config.write_text(
        json.dumps(
            {"rules": {rule: {"exclude_services": why} for rule, why in COMPOSE_LINT_ACCEPTED.items()}}
        )
    )
    result = subprocess.run(
        [
            tool("compose-lint"), "check", "--no-env", "--strict-config", "--skip-suppressed",
            "--fail-on", "low", "--format", "json", "--config", str(config), str(COMPOSE_FILE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_redis_is_the_official_image_with_a_healthcheck_and_stated_persistence(compose):
    redis = compose["services"]["redis"]
    assert re.fullmatch(r"redis:\d+\.\d+[\w.-]*", redis["image"]), redis["image"]
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes", "persistence: append-only file"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert "ports" not in redis, "Redis has no password: it must not be published"


def test_facade_waits_for_a_healthy_redis_and_publishes_port_8000(compose):
    facade = compose["services"]["facade"]
    assert facade["depends_on"]["redis"]["condition"] == "service_healthy"
    (published,) = facade["ports"]
    assert published.rsplit(":", 2)[-2:] == ["8000", "8000"]
    assert published.startswith("127.0.0.1:"), "published on the host's loopback unless told otherwise"
    assert facade["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def test_facade_bearer_tokens_come_from_the_environment_and_are_required():
    raw = load_compose()["services"]["facade"]["environment"]["TOOLQ_TOKENS"]
    assert raw.startswith("${TOOLQ_TOKENS:?"), raw
    with pytest.raises(InterpolationError, match="TOOLQ_TOKENS"):
        load_compose(read_env_file(ENV_EXAMPLE))
    assert load_compose(compose_env())["services"]["facade"]["environment"]["TOOLQ_TOKENS"] == TOKEN
    assert "TOOLQ_ALLOW_UNAUTHENTICATED" not in COMPOSE_FILE.read_text()


def test_worker_pools_are_separate_services_that_scale_independently(compose):
    services = compose_services(compose_env())
    pools = set()
    for name in WORKER_SERVICES:
        service = services[name]
        env = service.environment
        assert service.argv == ["python", "-m", "workers"], service.argv
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert "TOOLQ_WORKER_ID" not in env, "replicas would share one id; the default is host-pid"
        assert "container_name" not in service.config and "ports" not in service.config, (
            "--scale needs both absent"
        )
        assert service.config["depends_on"]["redis"]["condition"] == "service_healthy"
        pools.add(env["TOOLQ_POOL"])
    assert len(pools) == len(WORKER_SERVICES)
    assert services["worker-weather"].environment["TOOLQ_TOOLS"] == "weather"
    assert services["worker-add"].environment["TOOLQ_TOOLS"] == "add"
    assert int(services["worker-weather"].environment["TOOLQ_CONCURRENCY"]) >= 50, (
        "I/O-bound: high concurrency"
    )


def test_workers_have_a_liveness_check_of_their_own_pool(compose):
    services = compose_services(compose_env())
    for name in WORKER_SERVICES:
        assert services[name].healthcheck == ["python", "-m", "workers", "--check"]
    assert services["facade"].healthcheck == image_config().healthcheck[1:]  # type: ignore[index]


def test_services_get_longer_to_stop_than_they_take_to_drain(compose):
    services = compose_services(compose_env())
    for name in WORKER_SERVICES:
        drain = float(services[name].environment["TOOLQ_DRAIN_SECONDS"])
        assert services[name].stop_grace_seconds >= drain + 5, name
    assert services["facade"].stop_grace_seconds > 10, "aiohttp's shutdown_timeout is 10 s"
    assert duration_seconds("1m30s") == 90


def test_no_service_is_privileged_or_reaches_the_host(compose):
    for name, service in compose["services"].items():
        assert not service.get("privileged"), name
        assert service.get("network_mode") not in ("host",), name
        assert not service.get("cap_add"), name
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert service.get("read_only") is True, name
        for volume in service.get("volumes", []):
            assert not str(volume).startswith(("/", ".")), f"{name}: no host paths ({volume})"


def test_no_secret_value_is_written_in_the_compose_file():
    for name, service in load_compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert str(value).startswith("${"), f"{name}.{key} must come from the environment"


def test_env_example_covers_every_variable_the_compose_file_uses():
    used = variables_used(COMPOSE_FILE.read_text())
    documented = read_env_file(ENV_EXAMPLE)
    assert used, "the compose file takes its configuration from the environment"
    assert sorted(used - set(documented)) == []
    assert documented["TOOLQ_TOKENS"] == "", ".env.example must not carry a usable token"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "1"),
        ("$A-$B", "1-"),
        ("${B:-x}", "x"),
        ("${E:-x}", "x"),
        ("${E-x}", ""),
        ("${A:+y}", "y"),
        ("${B:+y}", ""),
        ("${B:-${A}}", "1"),
        ("$$A", "$A"),
    ],
)
def test_interpolation_follows_the_compose_specification(text, expected):
    assert interpolate(text, {"A": "1", "E": ""}) == expected


# --- the compose file, run as processes -------------------------------------------------------------


class McpSession:
    """A raw MCP client over aiohttp: initialize, then calls with the Mcp-Session-Id header."""

    def __init__(self, http: aiohttp.ClientSession, url: str, token: str | None):
        self.http = http
        self.url = url
        self.headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"
        self._ids = itertools.count(1)

    async def post(self, message: dict[str, Any]) -> tuple[int, Any, Any]:
        async with self.http.post(self.url, json=message, headers=self.headers) as response:
            body = await response.json() if response.content_type == "application/json" else None
            return response.status, body, response.headers

    async def initialize(self) -> None:
        status, body, headers = await self.post(
            {
                "jsonrpc": "2.0",
                "id": next(self._ids),
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "toolq-container-tests", "version": "1"},
                },
            }
        )
        assert status == 200, body
        self.headers["Mcp-Session-Id"] = headers["Mcp-Session-Id"]
        self.headers["MCP-Protocol-Version"] = body["result"]["protocolVersion"]
        status, _, _ = await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert status == 202

    async def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        message = {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        }
        status, body, _ = await self.post(message)
        assert status == 200 and "result" in body, (status, body)
        return body["result"]  # type: ignore[no-any-return]


def wait_for_workers(stack: ComposeAsProcesses) -> None:
    expected = {stack.worker_id(p) for name, p in stack.each() if name in WORKER_SERVICES}

    def registered() -> bool:
        for _, process in stack.each():
            assert process.alive(), process.output()
        return expected <= live_workers(stack.redis.url)

    wait_until(registered, 30, f"workers {sorted(expected)} to register")


@pytest.fixture
async def composed(tmp_path: Path) -> AsyncIterator[tuple[ComposeAsProcesses, FakeOpenMeteo]]:
    """docker-compose.yml's services as processes, worker-weather scaled to 3, a fake Open-Meteo."""
    async with FakeOpenMeteo() as weather_api:
        weather_api.forecast_delay = 0.05
        env = compose_env(
            **weather_api.env,
        )
        stack = ComposeAsProcesses(env, tmp_path, scale={"worker-weather": WEATHER_REPLICAS})
        try:
            stack.start()
            await asyncio.to_thread(stack.wait_for_facade)
            await asyncio.to_thread(wait_for_workers, stack)
            yield stack, weather_api
        finally:
            await asyncio.to_thread(stack.stop)


@pytest.mark.redis_server
async def test_composed_stack_spreads_weather_calls_over_every_scaled_worker(composed):
    stack, weather_api = composed
    weather = stack.processes["worker-weather"]
    assert len(weather) == WEATHER_REPLICAS
    cities = itertools.cycle(["Delhi", "London", "Paris", "Tokyo"])
    async with aiohttp.ClientSession() as http:
        client = McpSession(http, f"{stack.facade_url}/mcp", TOKEN)
        await client.initialize()
        results = await asyncio.gather(
            *(client.call("weather", {"city": next(cities)}) for _ in range(WEATHER_CALLS))
        )
        added = await client.call("add", {"a": 15, "b": 27})

    assert [r for r in results if r.get("isError")] == []
    assert weather_api.count("/v1/forecast") == WEATHER_CALLS
    ran_on = [r["_meta"]["toolq/worker"] for r in results]
    counts = {worker: ran_on.count(worker) for worker in set(ran_on)}
    assert set(counts) == {stack.worker_id(p) for p in weather}, counts
    print(f"{WEATHER_CALLS} weather calls over {WEATHER_REPLICAS} workers: {counts}")

    assert added["structuredContent"] == {"a": 15, "b": 27, "sum": 42}
    (adder,) = stack.processes["worker-add"]
    assert added["_meta"]["toolq/worker"] == stack.worker_id(adder)


@pytest.mark.redis_server
async def test_composed_facade_demands_the_bearer_token(composed):
    stack, _ = composed
    async with aiohttp.ClientSession() as http:
        for token, challenge in ((None, 'Bearer realm="toolq"'), ("wrong", 'error="invalid_token"')):
            status, _, headers = await McpSession(http, f"{stack.facade_url}/mcp", token).post(
                {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            )
            assert status == 401
            assert challenge in headers["WWW-Authenticate"]
        for probe in ("/healthz", "/readyz"):
            async with http.get(stack.facade_url + probe) as response:
                assert response.status == 200, probe


@pytest.mark.redis_server
async def test_composed_healthchecks_pass_then_services_drain_on_sigterm(composed):
    stack, _ = composed
    for name in ("facade", *WORKER_SERVICES):
        result = await asyncio.to_thread(stack.run_healthcheck, name)
        assert result.returncode == 0, (name, result.stdout, result.stderr)

    for name in WORKER_SERVICES:
        grace = stack.services[name].stop_grace_seconds
        for process in stack.processes[name]:
            assert await asyncio.to_thread(process.terminate, grace) == 0, process.output()
    assert live_workers(stack.redis.url) == set()
    result = await asyncio.to_thread(stack.run_healthcheck, "worker-weather")
    assert result.returncode == 1, "no worker of the pool is alive"

    stack.redis.stop()
    result = await asyncio.to_thread(stack.run_healthcheck, "facade")
    assert result.returncode != 0, "the facade is not ready without Redis"
    (facade,) = stack.processes["facade"]
    assert await asyncio.to_thread(facade.terminate, stack.services["facade"].stop_grace_seconds) == 0


def test_facade_as_composed_refuses_to_listen_on_all_interfaces_without_tokens(tmp_path):
    facade = compose_services(compose_env())["facade"]
    env = {**host_environment(), **facade.environment, "TOOLQ_TOKENS": ""}
    assert env["TOOLQ_HOST"] == "0.0.0.0"
    result = subprocess.run(
        local_command(facade.argv),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without authentication" in result.stderr
