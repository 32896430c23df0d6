"""The monitoring set-up: monitoring/ and docker-compose.yml's profile `monitoring`.

Prometheus' own checker (promtool) validates the scrape config and the alert rules, runs the
rules' unit tests (monitoring/alerts_test.yml) and parses every query of the Grafana dashboard.
Every metric name the alerts and the dashboard use must be one toolq exports (the list below is
the contract with facade/ and workers/), and the compose file's services, run as processes,
export them all. The monitoring services are checked for what they mount, scrape and publish,
without a Docker engine.

promtool comes with Debian's package `prometheus`; without it these tests skip, and fail
instead when TOOLQ_REQUIRE_TOOLS=1 (CI).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from compose_as_processes import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    ComposeAsProcesses,
    compose_services,
    load_compose,
    read_env_file,
)
from fake_open_meteo import FakeOpenMeteo
from real_processes import ROOT, live_workers, wait_until

MONITORING = ROOT / "monitoring"
PROMETHEUS_CONFIG = MONITORING / "prometheus.yml"
ALERTS = MONITORING / "alerts.yml"
ALERT_TESTS = MONITORING / "alerts_test.yml"
DATASOURCES = MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = MONITORING / "grafana" / "provisioning" / "dashboards" / "toolq.yml"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "toolq.json"

TOKEN = "test-token-" + "x" * 24
MONITORING_SERVICES = ("prometheus", "grafana")
#: Where the prometheus service writes TOOLQ_METRICS_TOKEN and prometheus.yml reads it from.
TOKEN_FILE = "/tmp/toolq-metrics-token"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# --- the metrics toolq exports (facade/metrics.py, workers/metrics.py) ------------------------------

FACADE_HISTOGRAMS = {
    "mcp_server_operation_duration_seconds",
    "toolq_call_queue_wait_seconds",
    "toolq_call_run_seconds",
    "toolq_call_delivery_seconds",
}
FACADE_COUNTERS = {
    "toolq_calls_total",
    "toolq_refusals_total",
    "toolq_redis_errors_total",
    "toolq_redis_reconnects_total",
}
FACADE_GAUGES = {
    "toolq_calls_in_flight",
    "toolq_tasks_followed",
    "toolq_sessions",
    "toolq_pool_jobs_waiting",
    "toolq_pool_jobs_running",
    "toolq_pool_oldest_waiting_seconds",
    "toolq_pool_workers",
    "toolq_pool_slots",
    "toolq_tool_workers",
}
WORKER_HISTOGRAMS = {"toolq_job_queue_wait_seconds", "toolq_job_run_seconds"}
WORKER_COUNTERS = {"toolq_jobs_total", "toolq_redis_errors_total", "toolq_redis_reconnects_total"}
WORKER_GAUGES = {"toolq_worker_jobs_running", "toolq_worker_slots", "toolq_worker_info"}
#: Series Prometheus makes itself for every target.
SCRAPE_SERIES = {"up"}
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def known_series() -> set[str]:
    """Every series name a query may select: a histogram is its _bucket, _sum and _count."""
    histograms = FACADE_HISTOGRAMS | WORKER_HISTOGRAMS
    plain = FACADE_COUNTERS | FACADE_GAUGES | WORKER_COUNTERS | WORKER_GAUGES | SCRAPE_SERIES
    return plain | {name + suffix for name in histograms for suffix in HISTOGRAM_SERIES}


# --- PromQL, read just enough to name its metrics -----------------------------------------------

AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset",
            "bool", "inf", "nan"}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, keywords or labels)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings: matcher values, regexes
    text = re.sub(r"\{[^{}]*\}", "{}", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "[]", text)  # range and subquery durations
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group()
        if text[match.end() :].lstrip().startswith("(") or word in AGGREGATIONS or word in KEYWORDS:
            continue
        names.add(word)
    return names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (le, tool) (rate(a_bucket{tool=~"$tool", x="y z"}[5m]))', {"a_bucket"}),
        ("max by (pool) (a) > 0 unless on (pool) max by (pool) (b) > 0", {"a", "b"}),
        ("c * on (instance, pool) group_left (worker_id) d", {"c", "d"}),
        ("histogram_quantile(0.99, sum by (le) (rate(e[$__rate_interval]))) > 1e3", {"e"}),
        ('absent(up{job="toolq-facade"} == 1)', {"up"}),
    ],
)
def test_metric_names_are_read_from_promql_without_functions_labels_or_keywords(expr, names):
    assert metric_names(expr) == names


# --- promtool --------------------------------------------------------------------------------------


def require_promtool() -> str:
    """Prometheus' promtool, or skip (fail when TOOLQ_REQUIRE_TOOLS=1)."""
    found = shutil.which("promtool")
    if found is None:
        reason = (
            "promtool not found on PATH: these tests need Prometheus' promtool "
            "(Debian and Ubuntu: apt-get install prometheus)"
        )
        if os.environ.get("TOOLQ_REQUIRE_TOOLS") == "1":
            pytest.fail(reason + " and TOOLQ_REQUIRE_TOOLS=1", pytrace=False)
        pytest.skip(reason)
    return found


def promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_promtool(), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as `docker compose` interpolates it from .env.example and a token."""
    return load_compose({**read_env_file(ENV_EXAMPLE), "TOOLQ_TOKENS": TOKEN})


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def query_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that queries, also those inside collapsed rows."""
    for panel in dashboard["panels"]:
        yield from (inner for inner in panel.get("panels", []) if "targets" in inner)
        if "targets" in panel:
            yield panel


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in query_panels(dashboard):
        for target in panel["targets"]:
            yield panel, target


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in read_yaml(ALERTS)["groups"] for rule in group["rules"]]


# --- Prometheus: scrape config and alert rules --------------------------------------------------


def test_prometheus_config_passes_promtool_check_config(tmp_path):
    # promtool insists the token file exists: the config is checked where it and its rule files
    # are copied, with the token file (written by the prometheus service at start) made here.
    config = read_yaml(PROMETHEUS_CONFIG)
    token = tmp_path / "token"
    token.write_text(TOKEN)
    for job in config["scrape_configs"]:
        if "credentials_file" in job.get("authorization", {}):
            job["authorization"]["credentials_file"] = str(token)
    for rule_file in config["rule_files"]:
        shutil.copy(PROMETHEUS_CONFIG.parent / rule_file, tmp_path / rule_file)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = promtool("check", "config", tmp_path / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout, result.stdout


def test_alert_rules_pass_promtool_check_rules():
    result = promtool("check", "rules", ALERTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rule_unit_tests_pass():
    result = promtool("test", "rules", ALERT_TESTS.name, cwd=MONITORING)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_see_pool_alerts_both_fire_and_stay_quiet():
    cases = [case for test in read_yaml(ALERT_TESTS)["tests"] for case in test["alert_rule_test"]]
    for alert in ("ToolqPoolBackingUp", "ToolqPoolWithoutWorkers"):
        outcomes = {bool(case["exp_alerts"]) for case in cases if case["alertname"] == alert}
        assert outcomes == {True, False}, f"{alert}: test both that it fires and that it does not"


def test_alert_rules_answer_which_pool_or_tool_backs_up_waits_or_fails():
    names = {rule["alert"] for rule in alert_rules()}
    assert names >= {
        "ToolqPoolBackingUp",
        "ToolqPoolWithoutWorkers",
        "ToolqToolFailing",
        "ToolqRefusingCalls",
        "ToolqRedisErrors",
        "ToolqSlowCalls",
    }


def test_every_alert_waits_before_firing_and_says_what_to_do():
    for rule in alert_rules():
        name = rule["alert"]
        assert re.fullmatch(r"Toolq[A-Z]\w+", name), name
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), f"{name}: a `for` keeps blips quiet"
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        annotations = rule["annotations"]
        assert annotations.get("summary", "").strip(), f"{name}: no summary"
        assert len(annotations.get("description", "")) > 100, f"{name}: the description says what to do"


def test_alert_rules_use_only_metrics_toolq_exports():
    known = known_series()
    for rule in alert_rules():
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= known, f"{rule['alert']}: unknown metrics {sorted(used - known)}"
        # The descriptions name metrics too, and query one.
        named = set(re.findall(r"\b(?:toolq|mcp)_[a-z_]+", " ".join(rule["annotations"].values())))
        assert named <= known, f"{rule['alert']}: annotations name unknown metrics {sorted(named - known)}"


def test_pool_alerts_take_the_max_of_what_every_facade_replica_reports():
    # Every facade replica reports the same pool figures from Redis: sum would multiply them.
    for rule in alert_rules():
        expr = " ".join(rule["expr"].split())
        for metric in re.findall(r"\btoolq_pool_\w+", expr):
            assert re.search(rf"max by \(pool\) \({metric}\)", expr), f"{rule['alert']}: {metric} not by max"


# --- Prometheus: what it scrapes in compose -------------------------------------------------------


def scrape_job(name: str) -> dict[str, Any]:
    (job,) = [job for job in read_yaml(PROMETHEUS_CONFIG)["scrape_configs"] if job["job_name"] == name]
    return job  # type: ignore[no-any-return]


def test_prometheus_scrapes_the_facade_service_on_its_port_every_few_seconds(compose):
    config = read_yaml(PROMETHEUS_CONFIG)
    assert 5 <= int(config["global"]["scrape_interval"].removesuffix("s")) <= 15
    job = scrape_job("toolq-facade")
    assert job["metrics_path"] == "/metrics"
    (discovery,) = job["dns_sd_configs"]
    assert discovery["names"] == ["facade"] and discovery["type"] == "A"
    published = compose["services"]["facade"]["ports"][0]
    assert published.rsplit(":", 1)[-1] == str(discovery["port"]), "the facade's container port"


def test_prometheus_finds_every_replica_of_every_worker_service_on_its_metrics_port(compose):
    workers = {
        name: service
        for name, service in compose_services({**read_env_file(ENV_EXAMPLE), "TOOLQ_TOKENS": TOKEN}).items()
        if service.argv[-1:] == ["workers"]
    }
    (discovery,) = scrape_job("toolq-worker")["dns_sd_configs"]
    assert discovery["type"] == "A", "one A record per replica of a scaled compose service"
    assert sorted(discovery["names"]) == sorted(workers), "every worker service, and no other"
    for name, service in workers.items():
        assert service.environment["TOOLQ_METRICS_PORT"] == str(discovery["port"]), name
        assert service.environment["TOOLQ_METRICS_HOST"] == "0.0.0.0", f"{name}: reachable from prometheus"
        assert "ports" not in compose["services"][name], f"{name}: its metrics stay inside the network"


def test_prometheus_scrapes_the_facade_with_the_token_file_its_service_writes(compose):
    authorization = scrape_job("toolq-facade")["authorization"]
    assert authorization == {"type": "Bearer", "credentials_file": TOKEN_FILE}
    prometheus = compose["services"]["prometheus"]
    script = prometheus["entrypoint"][2]
    assert f"> {TOKEN_FILE}" in script
    assert str(Path(TOKEN_FILE).parent) in prometheus["tmpfs"], (
        "written on a tmpfs of the read-only container"
    )
    assert load_compose()["services"]["prometheus"]["environment"]["TOOLQ_METRICS_TOKEN"].startswith("${")


def fake_prometheus(
    tmp_path: Path, compose: dict[str, Any], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """The prometheus service's entrypoint run here, with its token file and its Prometheus
    (a script recording its arguments and environment) moved into tmp_path."""
    service = compose["services"]["prometheus"]
    shell, flag, script, name = service["entrypoint"]
    binary = tmp_path / "prometheus"
    binary.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/args\nenv > {tmp_path}/env\n')
    binary.chmod(0o755)
    script = script.replace(TOKEN_FILE, str(tmp_path / "token")).replace("/bin/prometheus", str(binary))
    return subprocess.run(
        [shell, flag, script, name, *service["command"]],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_prometheus_service_hands_its_token_to_prometheus_in_a_private_file(tmp_path, compose):
    result = fake_prometheus(tmp_path, compose, {"TOOLQ_METRICS_TOKEN": "metrics-secret"})
    assert result.returncode == 0, result.stderr
    token = tmp_path / "token"
    assert token.read_text() == "metrics-secret"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert (tmp_path / "args").read_text().splitlines() == compose["services"]["prometheus"]["command"]
    assert "TOOLQ_METRICS_TOKEN" not in (tmp_path / "env").read_text()


def test_prometheus_service_refuses_to_start_without_a_token(tmp_path, compose):
    result = fake_prometheus(tmp_path, compose, {})
    assert result.returncode == 2
    assert "set TOOLQ_METRICS_TOKEN in .env" in result.stderr
    assert not (tmp_path / "args").exists()


def test_facade_accepts_the_metrics_token_as_the_observer_prometheus():
    env = {**read_env_file(ENV_EXAMPLE), "TOOLQ_TOKENS": TOKEN}
    facade_env = load_compose(env)["services"]["facade"]["environment"]
    assert facade_env["TOOLQ_TOKENS"] == TOKEN
    assert not facade_env.get("TOOLQ_OBSERVER_TOKENS"), "no metrics token, no observer token"
    env["TOOLQ_METRICS_TOKEN"] = "metrics-secret"
    facade_env = load_compose(env)["services"]["facade"]["environment"]
    assert facade_env["TOOLQ_TOKENS"] == TOKEN, "the scrape token is no call token"
    assert facade_env["TOOLQ_OBSERVER_TOKENS"] == "prometheus:metrics-secret"


# --- the compose profile ----------------------------------------------------------------------------


def test_prometheus_and_grafana_start_only_with_the_monitoring_profile(compose):
    env = {**read_env_file(ENV_EXAMPLE), "TOOLQ_TOKENS": TOKEN}
    for name, service in compose["services"].items():
        expected = ["monitoring"] if name in MONITORING_SERVICES else None
        assert service.get("profiles") == expected, name
    default = set(compose_services(env))
    assert default.isdisjoint(MONITORING_SERVICES), "`docker compose up` leaves them out"
    assert set(compose_services(env, profiles=["monitoring"])) == default | set(MONITORING_SERVICES)


def mounted_files(compose: dict[str, Any], name: str) -> dict[str, Path]:
    """A service's configs: the target path in its container -> the file on the host."""
    mounts = {}
    for reference in compose["services"][name].get("configs", []):
        config = compose["configs"][reference["source"]]
        mounts[reference["target"]] = (COMPOSE_FILE.parent / config["file"]).resolve()
    return mounts


def test_monitoring_services_mount_files_of_monitoring_that_exist(compose):
    for name in MONITORING_SERVICES:
        mounts = mounted_files(compose, name)
        assert mounts, name
        for target, source in mounts.items():
            assert source.is_file(), f"{name}: {target} from {source}, which does not exist"
            assert source.is_relative_to(MONITORING), f"{name}: {source} is not under monitoring/"
        for volume in compose["services"][name].get("volumes", []):
            assert volume.split(":")[0] in compose["volumes"], f"{name}: only named volumes ({volume})"


def test_prometheus_reads_its_mounted_config_and_rule_files(compose):
    mounts = mounted_files(compose, "prometheus")
    command = compose["services"]["prometheus"]["command"]
    (config_path,) = [arg.split("=", 1)[1] for arg in command if arg.startswith("--config.file=")]
    assert mounts[config_path] == PROMETHEUS_CONFIG.resolve()
    for rule_file in read_yaml(PROMETHEUS_CONFIG)["rule_files"]:
        target = str(Path(config_path).parent / rule_file)
        assert mounts.get(target) == (PROMETHEUS_CONFIG.parent / rule_file).resolve(), target


def test_grafana_provisions_the_prometheus_service_and_the_mounted_dashboard(compose):
    mounts = mounted_files(compose, "grafana")
    provisioned = {target: source for target, source in mounts.items() if "/provisioning/" in target}
    assert provisioned == {
        "/etc/grafana/provisioning/datasources/toolq.yml": DATASOURCES.resolve(),
        "/etc/grafana/provisioning/dashboards/toolq.yml": DASHBOARD_PROVIDERS.resolve(),
    }
    (datasource,) = read_yaml(DATASOURCES)["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert "--web.listen-address=:9090" in compose["services"]["prometheus"]["command"]
    (provider,) = read_yaml(DASHBOARD_PROVIDERS)["providers"]
    dashboard_target = next(target for target, source in mounts.items() if source == DASHBOARD.resolve())
    assert Path(dashboard_target).parent == Path(provider["options"]["path"])
    home = compose["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == dashboard_target


def test_monitoring_uis_are_published_on_the_hosts_loopback_only(compose):
    for name, port in (("prometheus", 9090), ("grafana", 3000)):
        (published,) = compose["services"][name]["ports"]
        assert published == f"127.0.0.1:{port}:{port}", name


# --- the Grafana dashboard --------------------------------------------------------------------------

#: Grafana's own variables, and a value each may take, for promtool to parse the queries.
GRAFANA_VARIABLES = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}


def expand_variables(expr: str, dashboard: dict[str, Any]) -> str:
    """A panel query with its variables replaced as Grafana would: template variables by a
    regex matching all their values (they sit in `=~` matchers), Grafana's by a duration."""
    variables = {v["name"]: ".*" for v in dashboard["templating"]["list"]} | GRAFANA_VARIABLES

    def value(match: re.Match[str]) -> str:
        name = match["braced"] or match["plain"]
        assert name in variables, f"unknown variable ${name} in {expr}"
        return variables[name]

    return re.sub(r"\$(?:\{(?P<braced>\w+)\}|(?P<plain>\w+))", value, expr)


def test_dashboard_is_valid_grafana_json_with_the_uid_toolq(dashboard):
    assert dashboard["uid"] == "toolq"
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["title"] and dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in dashboard["panels"]:
        assert panel["type"] in ("row", "stat", "timeseries"), panel["title"]
        assert panel["title"].strip()


def test_dashboard_panels_fit_the_grid_without_overlapping(dashboard):
    boxes = []
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for title, other in boxes:
            apart = (
                grid["x"] + grid["w"] <= other["x"]
                or other["x"] + other["w"] <= grid["x"]
                or grid["y"] + grid["h"] <= other["y"]
                or other["y"] + other["h"] <= grid["y"]
            )
            assert apart, f"{panel['title']!r} overlaps {title!r}"
        boxes.append((panel["title"], grid))


def test_every_dashboard_query_goes_through_the_datasource_variable(dashboard):
    (variable,) = [v for v in dashboard["templating"]["list"] if v["name"] == "datasource"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    panels = list(query_panels(dashboard))
    assert panels
    for panel in panels:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_dashboard_filters_by_pool_and_tool(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    queries = [target["expr"] for _, target in dashboard_queries(dashboard)]
    for name in ("pool", "tool"):
        variable = variables[name]
        assert variable["type"] == "query" and variable["datasource"] == DATASOURCE, name
        assert variable["multi"] and variable["includeAll"] and variable["allValue"] == ".*", name
        assert re.fullmatch(rf"label_values\(\w+, {name}\)", variable["query"]["query"]), name
        assert any(f'=~"${name}"' in query for query in queries), f"no panel filters by ${name}"


def test_every_dashboard_query_parses_as_promql(tmp_path, dashboard):
    rules = []
    for panel, target in dashboard_queries(dashboard):
        record = f"dashboard:panel_{panel['id']}:{target['refId']}"
        rules.append({"record": record, "expr": expand_variables(target["expr"], dashboard)})
    rule_file = tmp_path / "dashboard_queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", rule_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_dashboard_uses_only_metrics_toolq_exports(dashboard):
    known = known_series()
    for panel, target in dashboard_queries(dashboard):
        used = metric_names(target["expr"])
        assert used, f"{panel['title']}: {target['expr']}"
        assert used <= known, f"{panel['title']}: unknown metrics {sorted(used - known)}"
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            (metric,) = re.findall(r"label_values\((\w+),", variable["query"]["query"])
            assert metric in known, f"${variable['name']}: unknown metric {metric}"


def test_dashboard_shows_calls_latency_split_pools_refusals_redis_and_workers(dashboard):
    used = set().union(*(metric_names(target["expr"]) for _, target in dashboard_queries(dashboard)))
    assert used >= {
        "toolq_calls_total",  # calls/s by tool and outcome
        "mcp_server_operation_duration_seconds_bucket",  # p50/p99 by tool
        "toolq_call_queue_wait_seconds_sum",  # the split: queue wait ...
        "toolq_call_run_seconds_sum",  # ... run ...
        "toolq_call_delivery_seconds_sum",  # ... delivery
        "toolq_pool_jobs_waiting",
        "toolq_pool_jobs_running",
        "toolq_pool_oldest_waiting_seconds",
        "toolq_pool_workers",
        "toolq_pool_slots",
        "toolq_refusals_total",
        "toolq_redis_errors_total",
        "toolq_worker_jobs_running",  # per instance
    }


# --- the compose file's services, scraped as Prometheus scrapes them ------------------------------


def exposed_series(text: str) -> set[str]:
    """The series names a /metrics page can have, from its `# TYPE` lines (a labelled metric
    with no sample yet has its TYPE line all the same)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            if kind == "histogram":
                names |= {name + suffix for suffix in HISTOGRAM_SERIES}
            elif kind == "counter":
                names |= {name, name.removesuffix("_total") + "_total"}
            else:
                names.add(name)
    return names


def used_series(dashboard: dict[str, Any]) -> set[str]:
    queries = [target["expr"] for _, target in dashboard_queries(dashboard)]
    queries += [rule["expr"] for rule in alert_rules()]
    return set().union(*map(metric_names, queries)) - SCRAPE_SERIES


@pytest.mark.redis_server
async def test_composed_services_export_every_metric_the_dashboard_and_alerts_use(tmp_path, dashboard):
    """docker-compose.yml's services as processes (tests/compose_as_processes.py): the facade's
    /metrics answers the metrics token only, each worker replica serves its own metrics port."""
    async with FakeOpenMeteo() as weather_api:
        env = {
            **read_env_file(ENV_EXAMPLE),
            "TOOLQ_TOKENS": TOKEN,
            "TOOLQ_METRICS_TOKEN": "metrics-secret",
            **weather_api.env,
        }
        stack = ComposeAsProcesses(env, tmp_path, scale={"worker-weather": 2})
        try:
            stack.start()
            await asyncio.to_thread(stack.wait_for_facade)
            workers = {stack.worker_id(p) for name, p in stack.each() if name.startswith("worker-")}
            await asyncio.to_thread(
                wait_until, lambda: workers <= live_workers(stack.redis.url), 30, "the workers to register"
            )
            async with aiohttp.ClientSession() as http:
                for tool, params in (("weather", {"city": "Paris"}), ("add", {"a": 15, "b": 27})):
                    async with http.post(
                        f"{stack.facade_url}/mcp",
                        json={"tool": tool, "params": params},
                        headers={"Authorization": f"Bearer {TOKEN}"},
                    ) as response:
                        assert response.status == 200, await response.text()
                async with http.get(f"{stack.facade_url}/metrics") as response:
                    assert response.status == 401, "behind the tokens"
                scraper = {"Authorization": "Bearer metrics-secret"}
                async with http.get(f"{stack.facade_url}/metrics", headers=scraper) as response:
                    assert response.status == 200
                    pages = [await response.text()]
                assert len(stack.metrics_ports) == len(workers), "a metrics port per worker replica"
                for port in stack.metrics_ports.values():
                    async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                        assert response.status == 200
                        pages.append(await response.text())
        finally:
            await asyncio.to_thread(stack.stop)

    exposed = set().union(*map(exposed_series, pages))
    missing = used_series(dashboard) - exposed
    assert not missing, f"used by the dashboard or the alerts, exported by no service: {sorted(missing)}"
    worker_ids = set(re.findall(r'toolq_worker_info\{[^}]*worker_id="([^"]+)"', "".join(pages[1:])))
    assert worker_ids == workers, "each replica's page is its own"
