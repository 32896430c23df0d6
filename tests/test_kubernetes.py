"""The Kubernetes manifests of kubernetes/, verified without a cluster.

`kubectl kustomize` builds them, as `kubectl apply -k kubernetes/` would, from a copy whose
tokens.env is the committed example. Every object built validates against Kubernetes' own
OpenAPI schemas (kubernetes-validate, strict: an unknown field fails) for each minor version
Kubernetes supports, and the KEDA ScaledObjects against the schema of KEDA's CRD
(tests/kubernetes/). promtool, Prometheus' own engine, evaluates each ScaledObject's query over
two facade replicas. Then what the schemas cannot know: probes, drain times, hardening, and that
pools, budgets, scalers, services and settings fit together.

kubectl (1.27+, for kustomize v5) and promtool are looked up next to this interpreter, then on
PATH. Without them the tests that need them skip; with TOOLQ_REQUIRE_TOOLS=1 they fail instead.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from real_processes import ROOT

from facade.settings import ENVIRONMENT as FACADE_ENVIRONMENT
from facade.settings import FacadeSettings
from workers.settings import ENVIRONMENT as WORKER_ENVIRONMENT
from workers.settings import WorkerSettings

if importlib.util.find_spec("kubernetes_validate") is None:
    pytest.fail(
        "the 'kubernetes-validate' package is missing: install the dev extra (pip install -e '.[dev]')"
    )

import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError, all_versions

MANIFESTS = ROOT / "kubernetes"
KEDA_SCHEMA = ROOT / "tests" / "kubernetes" / "keda-scaledobject-v2.20.2.schema.yaml"
#: Kubernetes supports its three newest minor versions; the newest is what kubernetes-validate knows.
KUBERNETES_VERSIONS = sorted(set(all_versions()), key=lambda v: tuple(map(int, v.split("."))))[-3:]
#: Read by the weather tool (workers/weather/selection.py), not by the worker's settings.
WEATHER_VARIABLES = {
    "TOOLQ_WEATHER_PROVIDER",
    "TOOLQ_WEATHER_GEOCODING_URL",
    "TOOLQ_WEATHER_FORECAST_URL",
    "TOOLQ_WEATHER_TIMEOUT",
}
COMMON_LABELS = {"app.kubernetes.io/part-of": "toolq", "app.kubernetes.io/managed-by": "kustomize"}
#: aiohttp finishes open requests for this long after SIGTERM.
FACADE_SHUTDOWN_SECONDS = 10
PLACEHOLDER = "CHANGE-ME"


# --- the tools ----------------------------------------------------------------------------------


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail when TOOLQ_REQUIRE_TOOLS=1 (CI)."""
    if os.environ.get("TOOLQ_REQUIRE_TOOLS") == "1":
        pytest.fail(reason + " and TOOLQ_REQUIRE_TOOLS=1", pytrace=False)
    pytest.skip(reason)


def tool(name: str, why: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        unavailable(f"{name} not found next to {sys.executable} nor on PATH: {why}")
    return found


@pytest.fixture(scope="module")
def kubectl() -> str:
    path = tool("kubectl", "these tests build kubernetes/ with `kubectl kustomize` (kubectl 1.27+)")
    shown = subprocess.run(
        [path, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=30, check=False
    )
    versions = json.loads(shown.stdout) if shown.returncode == 0 else {}
    kubectl_version = versions.get("clientVersion", {}).get("gitVersion", "of an unknown version")
    kustomize = versions.get("kustomizeVersion", "")  # kubectl before 1.24 does not say
    major = re.match(r"v(\d+)\.", kustomize)
    if major is None or int(major.group(1)) < 5:
        unavailable(
            f"{path} is kubectl {kubectl_version} with kustomize {kustomize or 'older than v4.5'}: "
            "kubernetes/ needs kustomize v5 (kubectl 1.27 or newer)"
        )
    return path


@pytest.fixture(scope="module")
def promtool() -> str:
    return tool("promtool", "it evaluates the ScaledObjects' PromQL (Debian package `prometheus`)")


def copy_of_manifests(target: Path, *, tokens: bool) -> Path:
    """kubernetes/ copied to `target`, tokens.env the committed example (never your real one)."""
    shutil.copytree(MANIFESTS, target, ignore=shutil.ignore_patterns("tokens.env"))
    if tokens:
        shutil.copyfile(target / "tokens.env.example", target / "tokens.env")
    return target


def kustomize(kubectl: str, directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def built(kubectl: str, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Every object `kubectl apply -k kubernetes/` would apply."""
    done = kustomize(kubectl, copy_of_manifests(tmp_path_factory.mktemp("k") / "kubernetes", tokens=True))
    assert done.returncode == 0, f"kubectl kustomize failed:\n{done.stderr}"
    return [document for document in yaml.safe_load_all(done.stdout) if document]


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    return yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())


# --- reading the objects ------------------------------------------------------------------------


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    return found


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return workload["spec"]["template"]["spec"]["containers"]


def only_container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = containers(workload)
    return container


def env(container: dict[str, Any]) -> dict[str, str]:
    """The container's literal environment (variables from a Secret map to their reference)."""
    values = {}
    for variable in container.get("env", []):
        reference = variable.get("valueFrom", {}).get("secretKeyRef")
        values[variable["name"]] = variable["value"] if reference is None else f"secret:{reference['name']}"
    return values


def facade(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [d for d in of_kind(objects, "Deployment") if only_container(d).get("args") == ["facade"]]
    return found


def worker_pools(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Deployments that run `python -m workers`, one per pool."""
    pools = [d for d in of_kind(objects, "Deployment") if only_container(d).get("args") == ["workers"]]
    assert pools, "no worker Deployment was built"
    return pools


def container_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or a Service's target port, by number or by the container port's name."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    return number


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels/matchExpressions, or a Service's plain map) matches."""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def selected(objects: list[dict[str, Any]], selector: dict[str, Any]) -> list[str]:
    """The workloads whose pods the selector matches."""
    return [
        w["metadata"]["name"]
        for w in workloads(objects)
        if selects(selector, w["spec"]["template"]["metadata"]["labels"])
    ]


def pod_spec_problems(workload: dict[str, Any]) -> Iterator[str]:
    """What keeps a workload's pods from the restricted Pod Security Standard and a read-only root."""
    name, pod = workload["metadata"]["name"], workload["spec"]["template"]["spec"]
    pod_context = pod.get("securityContext", {})
    if pod_context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        yield f"{name}: no seccompProfile RuntimeDefault"
    for container in pod["containers"] + pod.get("initContainers", []):
        where = f"{name}/{container['name']}"
        context = {**pod_context, **container.get("securityContext", {})}
        if context.get("runAsNonRoot") is not True:
            yield f"{where}: runAsNonRoot is not true"
        if context.get("runAsUser", 1) == 0:
            yield f"{where}: runs as uid 0"
        if context.get("readOnlyRootFilesystem") is not True:
            yield f"{where}: readOnlyRootFilesystem is not true"
        if context.get("allowPrivilegeEscalation") is not False:
            yield f"{where}: allowPrivilegeEscalation is not false"
        if context.get("capabilities", {}).get("drop") != ["ALL"]:
            yield f"{where}: capabilities do not drop ALL"
        if context.get("capabilities", {}).get("add"):
            yield f"{where}: adds capabilities"


def scaled_objects(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = of_kind(objects, "ScaledObject")
    assert found, "no ScaledObject was built"
    return found


def trigger(scaled_object: dict[str, Any]) -> dict[str, Any]:
    (only,) = scaled_object["spec"]["triggers"]
    assert only["type"] == "prometheus", only
    return only


def strict(schema: Any) -> Any:
    """A CRD schema that refuses unknown fields, as the API server's strict field validation does
    (`kubectl apply` asks for it): every object schema that lists its properties, and neither
    allows others nor keeps unknown fields, gets additionalProperties: false."""
    if not isinstance(schema, dict):
        return schema
    schema = dict(schema)
    for key in ("items", "additionalProperties"):
        schema[key] = strict(schema[key]) if key in schema else None
    for key in ("allOf", "anyOf", "oneOf"):
        schema[key] = [strict(branch) for branch in schema[key]] if key in schema else None
    if "properties" in schema:
        schema["properties"] = {name: strict(field) for name, field in schema["properties"].items()}
        if schema["additionalProperties"] is None and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
    return {key: value for key, value in schema.items() if value is not None}


@pytest.fixture(scope="module")
def keda_validator() -> jsonschema.Draft4Validator:
    # OpenAPI v3.0's schema objects are (nearly) JSON Schema draft 4.
    return jsonschema.Draft4Validator(strict(yaml.safe_load(KEDA_SCHEMA.read_text())))


# --- building and the schemas -------------------------------------------------------------------


def test_kubectl_kustomize_builds_every_part_of_toolq_into_its_namespace(built):
    # The Secret's name ends in a hash of its content.
    kinds = {(o["kind"], re.sub(r"-[a-z0-9]{10}$", "", o["metadata"]["name"])) for o in built}
    assert kinds >= {
        ("Namespace", "toolq"),
        ("Secret", "toolq-tokens"),
        ("StatefulSet", "redis"),
        ("Service", "redis"),
        ("Deployment", "facade"),
        ("Service", "facade"),
        ("PodDisruptionBudget", "facade"),
        ("Deployment", "worker-weather"),
        ("Deployment", "worker-add"),
    }
    assert all(o["metadata"].get("namespace") == "toolq" for o in built if o["kind"] != "Namespace")


def test_the_manifests_do_not_build_without_tokens_env(kubectl, tmp_path):
    """No tokens.env, no build: the placeholder tokens are never applied by accident."""
    done = kustomize(kubectl, copy_of_manifests(tmp_path / "kubernetes", tokens=False))
    assert done.returncode != 0
    assert "tokens.env" in done.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_the_kubernetes_openapi_schemas(built, version):
    problems, unknown = [], []
    for o in built:
        try:
            kubernetes_validate.validate(o, version, strict=True)
        except SchemaNotFoundError:
            unknown.append(f"{o['apiVersion']} {o['kind']}")
        except kubernetes_validate.ValidationError as error:
            path = ".".join(map(str, error.path))
            problems.append(f"{o['kind']}/{o['metadata']['name']}: {path}: {error.message}")
    assert not problems, "\n".join(problems)
    # Only KEDA's kind is unknown to Kubernetes (its CRD schema is checked below): a misspelt
    # apiVersion or kind of Kubernetes' own would show up here instead of passing unchecked.
    assert set(unknown) <= {"keda.sh/v1alpha1 ScaledObject"}, unknown


def test_every_scaled_object_validates_against_keda_s_crd_schema(built, keda_validator):
    problems = [
        f"{o['metadata']['name']}: {'.'.join(map(str, error.path))}: {error.message}"
        for o in scaled_objects(built)
        for error in keda_validator.iter_errors(o)
    ]
    assert not problems, "\n".join(problems)


def test_keda_s_schema_refuses_a_misspelt_field(built, keda_validator):
    """The strict schema has teeth: what the API server would refuse is refused here too."""
    scaled_object = copy.deepcopy(scaled_objects(built)[0])
    assert keda_validator.is_valid(scaled_object)
    scaled_object["spec"]["pollinginterval"] = 15
    assert not keda_validator.is_valid(scaled_object)


# --- the pools and their scaling ----------------------------------------------------------------


def test_every_worker_is_given_longer_to_stop_than_it_drains(built):
    for pool in worker_pools(built):
        drain = float(env(only_container(pool))["TOOLQ_DRAIN_SECONDS"])
        grace = pool["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > drain + 5, f"{pool['metadata']['name']}: {grace} s to stop, {drain} s of drain"


def test_every_worker_is_probed_by_python_m_workers_check(built):
    for pool in worker_pools(built):
        container = only_container(pool)
        for probe in ("startupProbe", "livenessProbe"):
            assert container[probe]["exec"]["command"] == ["python", "-m", "workers", "--check"], probe
            assert container[probe]["timeoutSeconds"] >= 5, "a Python start-up can take seconds"


def test_every_worker_names_its_pool_and_tools(built):
    for pool in worker_pools(built):
        variables = env(only_container(pool))
        assert variables["TOOLQ_TOOLS"] and variables["TOOLQ_POOL"], pool["metadata"]["name"]
        assert pool["metadata"]["name"] == f"worker-{variables['TOOLQ_POOL']}"


def test_every_worker_pool_leaves_its_replica_count_to_keda(built):
    """A `replicas` in the manifest would reset the scaled count at every `kubectl apply`."""
    for pool in worker_pools(built):
        assert "replicas" not in pool["spec"], pool["metadata"]["name"]


def test_every_worker_pool_has_exactly_one_scaled_object_whose_query_names_its_pool(built):
    for pool in worker_pools(built):
        name, pool_name = pool["metadata"]["name"], env(only_container(pool))["TOOLQ_POOL"]
        (scaler,) = [s for s in scaled_objects(built) if s["spec"]["scaleTargetRef"]["name"] == name]
        assert scaler["spec"]["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
        query = trigger(scaler)["metadata"]["query"]
        for metric in ("toolq_pool_jobs_waiting", "toolq_pool_jobs_running"):
            assert re.search(metric + r'\{pool="' + re.escape(pool_name) + r'"\}', query), (name, query)
    targets = [s["spec"]["scaleTargetRef"]["name"] for s in scaled_objects(built)]
    assert sorted(targets) == sorted(p["metadata"]["name"] for p in worker_pools(built))


def test_every_scaled_object_keeps_at_least_one_worker(built):
    """A pool's tools are listed only while one of its workers is live: never scale to 0."""
    for scaler in scaled_objects(built):
        spec = scaler["spec"]
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], scaler["metadata"]["name"]
        assert spec.get("idleReplicaCount") is None, "an idle count of 0 would unlist the pool's tools"


def test_every_scaled_object_aims_at_about_80_percent_of_a_replica_s_slots(built):
    for scaler in scaled_objects(built):
        pool = named(built, "Deployment", scaler["spec"]["scaleTargetRef"]["name"])
        slots = int(env(only_container(pool))["TOOLQ_CONCURRENCY"])
        threshold = float(trigger(scaler)["metadata"]["threshold"])
        assert trigger(scaler).get("metricType", "AverageValue") == "AverageValue"
        assert math.isclose(threshold, 0.8 * slots, rel_tol=0.1), (scaler["metadata"]["name"], slots)


def test_every_scaled_object_scales_down_slowly_so_pools_do_not_flap(built):
    for scaler in scaled_objects(built):
        behavior = scaler["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 120, scaler["metadata"]["name"]
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 4 * scaler["spec"]["pollingInterval"]


def test_every_scaled_object_asks_the_one_prometheus_set_in_the_kustomization(built, kustomization):
    (patch,) = [p for p in kustomization["patches"] if p["target"]["kind"] == "ScaledObject"]
    (operation,) = yaml.safe_load(patch["patch"])
    assert operation["path"] == "/spec/triggers/0/metadata/serverAddress"
    address = operation["value"]
    assert urlsplit(address).scheme in ("http", "https") and urlsplit(address).hostname
    for scaler in scaled_objects(built):
        assert trigger(scaler)["metadata"]["serverAddress"] == address, scaler["metadata"]["name"]


def test_every_scaled_object_s_query_counts_waiting_plus_running_once_over_facade_replicas(
    built, promtool, tmp_path
):
    """Every facade replica exports the same cluster-wide figures: two replicas must not double
    them. Prometheus' own engine evaluates the query over two replicas and a second pool."""
    tests = []
    for scaler in scaled_objects(built):
        pool = env(only_container(named(built, "Deployment", scaler["spec"]["scaleTargetRef"]["name"])))
        series = [
            {"series": f'{metric}{{pool="{name}", instance="facade-{replica}:8000"}}', "values": f"{value}x8"}
            for replica in ("a", "b")
            for name, waiting, running in ((pool["TOOLQ_POOL"], 30, 170), ("another-pool", 1000, 1000))
            for metric, value in (("toolq_pool_jobs_waiting", waiting), ("toolq_pool_jobs_running", running))
        ]
        tests.append(
            {
                "interval": "15s",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": trigger(scaler)["metadata"]["query"],
                        "eval_time": "1m",
                        "exp_samples": [{"labels": "{}", "value": 200}],
                    }
                ],
            }
        )
    unit_tests = tmp_path / "queries.yaml"
    unit_tests.write_text(yaml.safe_dump({"evaluation_interval": "15s", "tests": tests}))
    done = subprocess.run(
        [promtool, "test", "rules", str(unit_tests)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_worker_pool_has_one_disruption_budget_selecting_only_its_pods(built):
    budgets = of_kind(built, "PodDisruptionBudget")
    for pool in worker_pools(built):
        name = pool["metadata"]["name"]
        (budget,) = [b for b in budgets if name in selected(built, b["spec"]["selector"])]
        assert selected(built, budget["spec"]["selector"]) == [name]
        assert budget["spec"] == {**budget["spec"], "maxUnavailable": 1}, name


def test_every_worker_serves_prometheus_metrics_on_the_annotated_port(built):
    for pool in worker_pools(built):
        variables, container = env(only_container(pool)), only_container(pool)
        annotations = pool["spec"]["template"]["metadata"].get("annotations", {})
        port = int(variables["TOOLQ_METRICS_PORT"])
        assert variables["TOOLQ_METRICS_HOST"] == "0.0.0.0", "loopback is out of Prometheus' reach"
        assert container_port(container, "metrics") == port
        assert annotations.get("prometheus.io/scrape") == "true"
        assert annotations.get("prometheus.io/port") == str(port)


# --- the facade, Redis and what they share ------------------------------------------------------


def test_the_facade_runs_two_replicas_under_a_budget_that_keeps_one(built):
    deployment = facade(built)
    assert deployment["spec"]["replicas"] >= 2
    budgets = of_kind(built, "PodDisruptionBudget")
    mine = [b["spec"] for b in budgets if selected(built, b["spec"]["selector"]) == ["facade"]]
    assert [spec.get("minAvailable") for spec in mine] == [1]


def test_the_facade_is_ready_on_readyz_and_alive_on_healthz_at_port_8000(built):
    container = only_container(facade(built))
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        check = container[probe]["httpGet"]
        assert check["path"] == path, probe
        assert container_port(container, check["port"]) == 8000, probe


def test_the_facade_is_given_longer_to_stop_than_its_pause_and_its_requests_take(built):
    spec = facade(built)["spec"]["template"]["spec"]
    pre_stop = only_container(facade(built)).get("lifecycle", {}).get("preStop", {})
    pause = int(pre_stop["exec"]["command"][1]) if pre_stop else 0
    assert spec["terminationGracePeriodSeconds"] > pause + FACADE_SHUTDOWN_SECONDS


def test_the_facade_service_sends_port_8000_to_the_facade_pods_port_8000(built):
    service = named(built, "Service", "facade")
    assert selected(built, service["spec"]["selector"]) == ["facade"]
    (port,) = service["spec"]["ports"]
    assert port["port"] == 8000
    assert container_port(only_container(facade(built)), port["targetPort"]) == 8000


def test_every_toolq_container_reaches_redis_through_the_redis_service(built):
    service = named(built, "Service", "redis")
    assert selected(built, service["spec"]["selector"]) == ["redis"]
    (port,) = service["spec"]["ports"]
    assert container_port(only_container(named(built, "StatefulSet", "redis")), port["targetPort"]) == 6379
    for deployment in of_kind(built, "Deployment"):
        url = urlsplit(env(only_container(deployment))["REDIS_URL"])
        assert (url.hostname, url.port) == ("redis", port["port"]), deployment["metadata"]["name"]


def test_redis_persists_an_append_only_file_on_its_claimed_volume_within_its_memory(built):
    redis = named(built, "StatefulSet", "redis")
    container = only_container(redis)
    args = container["args"]
    option = {args[i]: args[i + 1] for i in range(1, len(args) - 1) if args[i].startswith("--")}
    assert container["image"].startswith("redis:7.")
    assert (option["--appendonly"], option["--appendfsync"], option["--maxmemory-policy"]) == (
        "yes",
        "everysec",
        "noeviction",
    )
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    (mount,) = container["volumeMounts"]
    assert (mount["name"], mount["mountPath"]) == (claim["metadata"]["name"], option["--dir"])
    units = {"mb": 2**20, "gb": 2**30, "Mi": 2**20, "Gi": 2**30}
    maxmemory = re.fullmatch(r"(\d+)(mb|gb)", option["--maxmemory"])
    limit = re.fullmatch(r"(\d+)(Mi|Gi)", container["resources"]["limits"]["memory"])
    assert maxmemory and limit
    assert int(maxmemory[1]) * units[maxmemory[2]] <= 0.8 * int(limit[1]) * units[limit[2]]


def test_every_container_has_probes_and_resource_requests_and_limits(built):
    for workload in workloads(built):
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert "livenessProbe" in container, where
            assert "readinessProbe" in container or "startupProbe" in container, where
            for kind in ("requests", "limits"):
                assert set(container.get("resources", {}).get(kind, {})) >= {"cpu", "memory"}, (where, kind)


def test_every_pod_runs_non_root_on_a_read_only_root_filesystem_without_capabilities(built):
    problems = [problem for workload in workloads(built) for problem in pod_spec_problems(workload)]
    assert not problems, "\n".join(problems)


def test_the_namespace_enforces_the_restricted_pod_security_standard(built):
    labels = named(built, "Namespace", "toolq")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_no_pod_gets_service_links_or_an_api_token(built):
    """Service links would add variables such as TOOLQ_PORT=tcp://... for a Service named toolq."""
    for workload in workloads(built):
        pod = workload["spec"]["template"]["spec"]
        assert pod.get("enableServiceLinks") is False, workload["metadata"]["name"]
        assert pod.get("automountServiceAccountToken") is False, workload["metadata"]["name"]


def test_every_toolq_container_runs_the_image_the_kustomization_names(built, kustomization):
    (image,) = [i for i in kustomization["images"] if i["name"] == "toolq"]
    assert image["newTag"] and image["newTag"] != "latest"
    for deployment in of_kind(built, "Deployment"):
        assert only_container(deployment)["image"] == f"{image['newName']}:{image['newTag']}"


def test_every_object_and_pod_carries_the_common_labels(built):
    for o in built:
        assert o["metadata"]["labels"].items() >= COMMON_LABELS.items(), o["metadata"]["name"]
    for workload in workloads(built):
        assert workload["spec"]["template"]["metadata"]["labels"].items() >= COMMON_LABELS.items()


def test_every_container_s_environment_is_one_toolq_reads_and_accepts(built):
    """Every TOOLQ_ variable set is a setting toolq has, and its settings take the values."""
    (secret,) = of_kind(built, "Secret")
    tokens = base64.b64decode(secret["data"]["TOOLQ_TOKENS"]).decode()
    known = set(FACADE_ENVIRONMENT.values()) | set(WORKER_ENVIRONMENT.values()) | WEATHER_VARIABLES
    for deployment in of_kind(built, "Deployment"):
        variables = env(only_container(deployment))
        unknown = {name for name in variables if name.startswith("TOOLQ_")} - known
        assert not unknown, (deployment["metadata"]["name"], unknown)
        if deployment is facade(built):
            settings = FacadeSettings.from_env({**variables, "TOOLQ_TOKENS": tokens})
            assert settings.check_exposure() is None
        else:
            WorkerSettings.from_env(variables)


# --- the tokens ---------------------------------------------------------------------------------


def test_the_facade_takes_its_tokens_from_the_generated_secret(built):
    (secret,) = of_kind(built, "Secret")
    env = {v["name"]: v for v in only_container(facade(built))["env"]}
    for name in ("TOOLQ_TOKENS", "TOOLQ_OBSERVER_TOKENS"):
        reference = env[name]["valueFrom"]["secretKeyRef"]
        assert reference["name"] == secret["metadata"]["name"], name
        assert reference["key"] in secret["data"], name


def test_the_example_tokens_are_obvious_placeholders(built):
    (secret,) = of_kind(built, "Secret")
    for key, value in secret["data"].items():
        for token in base64.b64decode(value).decode().split(","):
            assert PLACEHOLDER in token.split(":", 1)[-1], f"{key}: {token!r} looks like a real secret"


def test_no_file_git_would_commit_holds_tokens_or_a_secret():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "kubernetes/tokens.env"], cwd=ROOT, timeout=30, check=False
    )
    assert ignored.returncode == 0, "git must ignore kubernetes/tokens.env"
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "kubernetes"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert "kubernetes/tokens.env" not in listed
    for name in listed:
        text = (ROOT / name).read_text()
        assert not re.search(r"^kind:\s*Secret\s*$", text, re.MULTILINE), f"{name} holds a Secret"
        for line in re.findall(r"^TOOLQ_TOKENS=(.*)$", text, re.MULTILINE):
            assert all(PLACEHOLDER in token for token in line.split(",")), f"{name}: {line}"
