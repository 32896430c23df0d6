"""docker-compose.yml and the Dockerfile, read the way Docker reads them, run as local processes.

No Docker engine is needed: the compose file is loaded and interpolated (`${VAR:-default}`,
`${VAR:?error}`, ...) from an environment the test provides, the image's ENV, ENTRYPOINT, CMD and
HEALTHCHECK come from the Dockerfile's final stage (parsed with Docker's own parser, the PyPI
package `dockerfile`), and every service runs its entrypoint + command with the image's
environment overlaid by the service's, as a local process. What only exists inside a container
network is mapped to this machine: the Redis service becomes the test's own redis-server on a
free port, and the facade's published port becomes a free port on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from real_processes import ROOT, RedisServer, Service, free_port, port_open, wait_until

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?\Z", re.DOTALL)


# --- interpolation (the Compose Specification's rules) ------------------------------------------


class InterpolationError(ValueError):
    """What `docker compose` would refuse the file for, e.g. a `${VAR:?...}` left unset."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`,
    `${VAR:+alt}`, `${VAR+alt}`, and `$$` for a literal `$`; defaults may nest."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
            continue
        following = text[i + 1 : i + 2]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "{":
            end = _closing_brace(text, i + 2)
            out.append(_substitute(text[i + 2 : end], env))
            i = end + 1
        elif match := _NAME.match(text, i + 1):
            out.append(env.get(match.group(), ""))
            i = match.end()
        else:
            raise InterpolationError(f"invalid interpolation format in {text!r}")
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"unclosed '${{' in {text!r}")


def _substitute(expression: str, env: Mapping[str, str]) -> str:
    match = _BRACED.match(expression)
    if match is None:
        raise InterpolationError(f"invalid interpolation format: ${{{expression}}}")
    name, op, arg = match["name"], match["op"], match["arg"] or ""
    value = env.get(name)
    present = value is not None
    filled = bool(value)
    if op is None:
        return value or ""
    if op in (":-", "-"):
        keep = filled if op == ":-" else present
        return value if keep and value is not None else interpolate(arg, env)
    if op in (":?", "?"):
        if not (filled if op == ":?" else present):
            raise InterpolationError(f"required variable {name} is missing a value: {interpolate(arg, env)}")
        return value or ""
    use_alternative = filled if op == ":+" else present
    return interpolate(arg, env) if use_alternative else ""


def variables_used(text: str) -> set[str]:
    """Every variable name `text` interpolates, including those inside defaults."""
    return set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text.replace("$$", "")))


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    """Interpolate every string value (not the keys) of a loaded compose file."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    return node


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as Compose reads a .env file: comments, blank lines, optional quotes."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, separator, value = line.partition("=")
        assert separator, f"{path.name}: not KEY=VALUE: {raw!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_compose(env: Mapping[str, str] | None = None, path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file as YAML (merge keys resolved), interpolated from `env` when given."""
    raw = yaml.safe_load(path.read_text())
    return raw if env is None else interpolate_tree(raw, env)  # type: ignore[no-any-return]


# --- the image, from the Dockerfile ---------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    cmd: str
    value: tuple[str, ...]
    flags: tuple[str, ...]
    json: bool
    original: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, cmd: str) -> list[Instruction]:
        return [i for i in self.instructions if i.cmd == cmd]

    def last(self, cmd: str) -> Instruction | None:
        found = self.all(cmd)
        return found[-1] if found else None


def dockerfile_stages(path: Path = DOCKERFILE) -> list[Stage]:
    """The Dockerfile's build stages, parsed by Docker's own (BuildKit) parser."""
    import dockerfile  # noqa: PLC0415 - the test module skips cleanly where it is not installed

    stages: list[Stage] = []
    for command in dockerfile.parse_file(str(path)):
        instruction = Instruction(
            command.cmd.upper(), command.value, command.flags, command.json, command.original
        )
        if instruction.cmd == "FROM":
            value = instruction.value
            name = value[2] if len(value) == 3 and value[1].upper() == "AS" else None
            stages.append(Stage(base=value[0], name=name))
        else:
            assert stages, f"{instruction.original!r} before any FROM"
            stages[-1].instructions.append(instruction)
    return stages


@dataclass(frozen=True)
class Image:
    """What `docker run` takes from the built image: its final stage's config."""

    env: dict[str, str]
    entrypoint: list[str]
    cmd: list[str]
    user: str | None
    healthcheck: list[str] | None
    healthcheck_flags: tuple[str, ...]
    stopsignal: str | None
    exposed: tuple[str, ...]


def exec_form(instruction: Instruction | None) -> list[str]:
    if instruction is None:
        return []
    assert instruction.json, f"use the exec (JSON) form: {instruction.original!r}"
    return list(instruction.value)


def image_config(path: Path = DOCKERFILE) -> Image:
    final = dockerfile_stages(path)[-1]
    env: dict[str, str] = {}
    for instruction in final.all("ENV"):
        pairs = instruction.value
        env.update(zip(pairs[0::2], pairs[1::2], strict=True))
    user = final.last("USER")
    healthcheck = final.last("HEALTHCHECK")
    stopsignal = final.last("STOPSIGNAL")
    return Image(
        env=env,
        entrypoint=exec_form(final.last("ENTRYPOINT")),
        cmd=exec_form(final.last("CMD")),
        user=user.value[0] if user else None,
        healthcheck=exec_form(healthcheck) if healthcheck else None,
        healthcheck_flags=healthcheck.flags if healthcheck else (),
        stopsignal=stopsignal.value[0] if stopsignal else None,
        exposed=tuple(v for i in final.all("EXPOSE") for v in i.value),
    )


# --- one compose service ----------------------------------------------------------------------------


def duration_seconds(value: str | float) -> float:
    """A compose duration ('35s', '1m30s', '500ms') in seconds."""
    if isinstance(value, int | float):
        return float(value)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a duration: {value!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def _as_argv(value: str | list[Any]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(item) for item in value]


def service_environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's `environment:` (mapping or KEY=VALUE list) as strings."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


@dataclass(frozen=True)
class ComposeService:
    name: str
    config: dict[str, Any]
    image: Image

    @property
    def argv(self) -> list[str]:
        """What the container runs: entrypoint + command, each from the service or the image."""
        if "entrypoint" in self.config:
            entrypoint = _as_argv(self.config["entrypoint"])
            command = _as_argv(self.config.get("command", []))
        else:
            entrypoint = self.image.entrypoint
            command = _as_argv(self.config["command"]) if "command" in self.config else self.image.cmd
        return [*entrypoint, *command]

    @property
    def environment(self) -> dict[str, str]:
        return {**self.image.env, **service_environment(self.config)}

    @property
    def healthcheck(self) -> list[str] | None:
        """The effective healthcheck test, exec form without the leading CMD."""
        check = self.config.get("healthcheck")
        test = check.get("test") if check else None
        if check and check.get("disable"):
            return None
        if test is None:
            return self.image.healthcheck[1:] if self.image.healthcheck else None
        assert isinstance(test, list) and test[0] == "CMD", f"{self.name}: use the exec form ['CMD', ...]"
        return [str(part) for part in test[1:]]

    @property
    def replicas(self) -> int:
        return int((self.config.get("deploy") or {}).get("replicas", 1))

    @property
    def stop_grace_seconds(self) -> float:
        return duration_seconds(self.config.get("stop_grace_period", "10s"))

    @property
    def builds_the_image(self) -> bool:
        return "build" in self.config


def service_enabled(service: Mapping[str, Any], profiles: Collection[str] = ()) -> bool:
    """Whether `docker compose up` starts the service: one without `profiles` always, one with
    them only when one of its profiles is selected (`--profile NAME`)."""
    own = service.get("profiles") or []
    return not own or any(profile in own for profile in profiles)


def compose_services(
    env: Mapping[str, str], image: Image | None = None, profiles: Collection[str] = ()
) -> dict[str, ComposeService]:
    """The services `docker compose up` starts with `profiles` selected (none: the default)."""
    config = load_compose(env)
    image = image or image_config()
    return {
        name: ComposeService(name, svc, image)
        for name, svc in config["services"].items()
        if service_enabled(svc, profiles)
    }


def local_command(argv: list[str]) -> list[str]:
    """The container's argv for this machine: its `python` is this test's interpreter."""
    assert argv, "empty command"
    assert argv[0] in ("python", "python3"), f"not a Python command: {argv}"
    return [sys.executable, *argv[1:]]


def host_environment() -> dict[str, str]:
    """This process's environment without anything toolq reads, so only the compose file speaks."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TOOLQ_", "ANTHROPIC_", "REDIS_"))
    }


# --- the stack --------------------------------------------------------------------------------------


class ComposeAsProcesses:
    """Every toolq service of docker-compose.yml as local processes, Redis as a redis-server.

    Only the services a plain `docker compose up` starts: those under a profile (`monitoring`:
    Prometheus and Grafana) are left out, as Compose leaves them out without `--profile`."""

    def __init__(self, env: Mapping[str, str], directory: Path, scale: Mapping[str, int] | None = None):
        self.services = compose_services(env)
        self.directory = directory
        self.scale = dict(scale or {})
        self.redis = RedisServer(directory)
        self.processes: dict[str, list[Service]] = {}
        self.facade_port: int | None = None
        #: Each replica's metrics port on 127.0.0.1, by process name ("worker-weather-2").
        self.metrics_ports: dict[str, int] = {}

    @property
    def redis_service(self) -> str:
        names = [n for n, s in self.services.items() if str(s.config.get("image", "")).startswith("redis:")]
        assert len(names) == 1, f"expected one service on the official redis image, got {names}"
        return names[0]

    @property
    def facade_url(self) -> str:
        assert self.facade_port is not None
        return f"http://127.0.0.1:{self.facade_port}"

    def local_environment(self, service: ComposeService) -> dict[str, str]:
        """The service's environment with container addresses mapped to this machine. The port
        each replica serves metrics on in its own container (TOOLQ_METRICS_PORT) becomes a free
        port on 127.0.0.1, one per call, so scaled replicas do not collide."""
        env = {**host_environment(), **service.environment}
        if "TOOLQ_METRICS_PORT" in env:
            assert env.get("TOOLQ_METRICS_HOST") == "0.0.0.0", "a scraped port listens on all interfaces"
            env["TOOLQ_METRICS_HOST"] = "127.0.0.1"
            env["TOOLQ_METRICS_PORT"] = str(free_port())
        redis_address = f"{self.redis_service}:6379"
        for key, value in env.items():
            parts = urlsplit(value) if "://" in value else None
            if parts is not None and parts.netloc == redis_address:
                env[key] = urlunsplit(parts._replace(netloc=f"127.0.0.1:{self.redis.port}"))
        if service.config.get("ports"):
            assert self.facade_port is not None
            assert env.get("TOOLQ_HOST") == "0.0.0.0", "a published service listens on all interfaces"
            env["TOOLQ_HOST"] = "127.0.0.1"
            env["TOOLQ_PORT"] = str(self.facade_port)
        return env

    def start(self) -> None:
        self.redis.start()
        self.facade_port = free_port()
        for name, service in self.services.items():
            if name == self.redis_service:
                continue
            copies = self.scale.get(name, service.replicas)
            args = local_command(service.argv)[1:]
            self.processes[name] = []
            for n in range(1, copies + 1):
                env = self.local_environment(service)
                process = Service(f"{name}-{n}", args, env, self.directory)
                if "TOOLQ_METRICS_PORT" in env:
                    self.metrics_ports[process.name] = int(env["TOOLQ_METRICS_PORT"])
                self.processes[name].append(process)

    def each(self) -> Iterator[tuple[str, Service]]:
        for name, processes in self.processes.items():
            for process in processes:
                yield name, process

    def worker_id(self, process: Service) -> str:
        """The id a worker gives itself when TOOLQ_WORKER_ID is unset: host-pid."""
        return f"{socket.gethostname()}-{process.process.pid}"

    def wait_for_facade(self, timeout: float = 30) -> None:
        assert self.facade_port is not None
        processes = [p for name, p in self.each() if self.services[name].config.get("ports")]

        def listening() -> bool:
            for process in processes:
                assert process.alive(), process.output()
            return port_open(self.facade_port or 0)

        wait_until(listening, timeout, "the facade to listen")

    def run_healthcheck(self, name: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        """Run the service's healthcheck as Docker would, with the service's environment."""
        service = self.services[name]
        test = service.healthcheck
        assert test is not None, f"{name} has no healthcheck"
        return subprocess.run(
            local_command(test),
            env=self.local_environment(service),
            cwd=self.directory,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stop(self) -> None:
        for _, process in reversed(list(self.each())):
            process.kill()
        self.redis.stop()
