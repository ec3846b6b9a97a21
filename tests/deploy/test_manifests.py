"""The Kubernetes deployment (deploy/k8s) and the image (Dockerfile), checked offline.

Both kustomizations are rendered with a real `kustomize build` (devstack.kustomize builds the
binary with Go on first use). Every object is validated against the Kubernetes schemas
(kubernetes-validate) or, for the operators' custom resources, against tests/deploy/crd_schemas;
then the invariants the pipeline relies on are checked against the project's own code: its
settings, topics, metrics, entry points and the Dockerfile.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import io
import json
import re
import shlex
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
from prometheus_client import CollectorRegistry
from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from referencing import Registry, Resource

import opsctl.migrate
from alert_agent.metrics import AlertMetrics
from devstack.kustomize import ensure_kustomize, render
from ingest_gateway.metrics import GatewayMetrics
from ops_common.http.request_metrics import RequestMetrics
from ops_common.settings import Settings
from opsctl.cli import main as opsctl_main
from opsctl.topics import pipeline_topics
from stream_workers.app import WINDOW_TABLE
from stream_workers.metrics import WorkerMetrics
from stream_workers.windows.kpi_gauges import KpiGauges

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "k8s"
KUSTOMIZATIONS = {"base": DEPLOY / "base", "dev": DEPLOY / "overlays" / "dev"}
NAMESPACES = {"base": "ops-telemetry", "dev": "ops-telemetry-dev"}
CRD_SCHEMAS = Path(__file__).resolve().parent / "crd_schemas"
DOCS = ROOT / "docs" / "operations.md"
#: The Kubernetes release whose schemas the objects must satisfy.
KUBERNETES_VERSION = "1.32"
SECRET_NAME = "ops-telemetry"
#: Every key of the ops-telemetry Secret (docs/operations.md tells how to create it).
SECRET_KEYS = {
    "DATABASE_URL",
    "OPS_INGEST_DATABASE_URL",
    "OPS_READER_DATABASE_URL",
    "OPS_ROLLUP_DATABASE_URL",
    "OPS_ALERT_DATABASE_URL",
    "OPS_API_KEYS",
    "OPS_DASHBOARD_TOKEN",
    "OPS_DASHBOARD_API_KEY",
    "OPS_SLACK_WEBHOOK_URL",
    "OPS_SLACK_BOT_TOKEN",
    "OPS_INGEST_ROLE_PASSWORD",
    "OPS_READER_ROLE_PASSWORD",
    "OPS_ROLLUP_ROLE_PASSWORD",
    "OPS_ALERT_ROLE_PASSWORD",
}
#: Least privilege: the Secret keys each workload gets, and whether it may start without them.
SECRET_KEYS_BY_WORKLOAD: dict[str, dict[str, bool]] = {  # key -> optional
    "ops-gateway": {"OPS_API_KEYS": False},
    "ops-workers": {"OPS_INGEST_DATABASE_URL": False, "OPS_ROLLUP_DATABASE_URL": False},
    "ops-alert-agent": {
        "OPS_ALERT_DATABASE_URL": False,
        "OPS_API_KEYS": False,
        "OPS_SLACK_WEBHOOK_URL": True,
        "OPS_SLACK_BOT_TOKEN": True,
    },
    "ops-dashboard": {
        "OPS_READER_DATABASE_URL": False,
        "OPS_DASHBOARD_TOKEN": False,
        "OPS_DASHBOARD_API_KEY": True,
    },
    "ops-migrations": {
        "DATABASE_URL": False,
        "OPS_INGEST_ROLE_PASSWORD": True,
        "OPS_READER_ROLE_PASSWORD": True,
        "OPS_ROLLUP_ROLE_PASSWORD": True,
        "OPS_ALERT_ROLE_PASSWORD": True,
    },
}
#: Long-running workload -> (its command, the setting holding its HTTP port).
PROCESSES = {
    "ops-gateway": (["python", "-m", "ingest_gateway"], "OPS_GATEWAY_PORT"),
    "ops-workers": (["python", "-m", "stream_workers"], "OPS_WORKER_HTTP_PORT"),
    "ops-alert-agent": (["python", "-m", "alert_agent"], "OPS_ALERT_PORT"),
    "ops-dashboard": (["python", "-m", "ops_dashboard"], "OPS_DASHBOARD_PORT"),
}
#: Applied (and waited for) before everything else: config, topics, then the migrations Job.
PREPARE_COMPONENTS = ("shared", "kafka-topics", "migrations")
PREPARE_SELECTOR = f"app.kubernetes.io/component in ({','.join(PREPARE_COMPONENTS)})"
COMPONENT = "app.kubernetes.io/component"
#: Metrics the rules may use that other exporters provide.
EXTERNAL_METRICS = {"up", "kafka_consumergroup_lag"}


# --- rendering ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """The objects one kustomization renders to, with the look-ups the tests share."""

    name: str
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """Every object of `kind`."""
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """The one object of `kind` named `name`."""
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.name}: expected one {kind}/{name}, found {len(found)}"
        return found[0]

    @property
    def config_map(self) -> dict[str, Any]:
        """The generated settings ConfigMap (its name carries a content hash)."""
        found = [
            o
            for o in self.of_kind("ConfigMap")
            if o["metadata"]["name"].startswith("ops-telemetry-config-")
        ]
        assert len(found) == 1, f"{self.name}: expected one settings ConfigMap, found {found}"
        return found[0]

    @property
    def config(self) -> dict[str, str]:
        """The settings every process gets through envFrom."""
        data: dict[str, str] = self.config_map["data"]
        return data

    def workloads(self) -> list[dict[str, Any]]:
        """Deployments and Jobs: everything with a pod template."""
        return self.of_kind("Deployment") + self.of_kind("Job")

    def topic(self, topic_name: str) -> dict[str, Any]:
        """The KafkaTopic resource of Kafka topic `topic_name`."""
        found = [
            t
            for t in self.of_kind("KafkaTopic")
            if t["spec"].get("topicName", t["metadata"]["name"]) == topic_name
        ]
        assert len(found) == 1, f"{self.name}: expected one KafkaTopic for {topic_name}"
        return found[0]


@pytest.fixture(scope="session")
def renders() -> dict[str, Rendered]:
    """Both kustomizations, rendered once (the first run builds kustomize, ~30 s)."""
    binary = ensure_kustomize()
    return {
        name: Rendered(name, render(path, kustomize=binary))
        for name, path in KUSTOMIZATIONS.items()
    }


@pytest.fixture(params=sorted(KUSTOMIZATIONS))
def manifests(request: pytest.FixtureRequest, renders: dict[str, Rendered]) -> Rendered:
    """Each kustomization in turn: the invariants hold for the base and for the overlay."""
    rendered: Rendered = renders[request.param]
    return rendered


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a Deployment or Job."""
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every container of a workload's pods, init containers included."""
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def every_container(manifests: Rendered) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, container) for every container the kustomization runs."""
    for workload in manifests.workloads():
        for container in containers(workload):
            yield workload, container


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels or a plain map, as in Services) matches `labels`."""
    assert "matchExpressions" not in selector, "not used here; extend selects() if needed"
    wanted = selector.get("matchLabels", selector)
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def pods_selected(manifests: Rendered, selector: dict[str, Any]) -> list[str]:
    """Names of the workloads whose pods `selector` matches."""
    return [
        w["metadata"]["name"]
        for w in manifests.workloads()
        if selects(selector, w["spec"]["template"]["metadata"]["labels"])
    ]


def env_name(field: FieldInfo) -> str:
    """The environment variable a Settings field reads."""
    alias = field.validation_alias
    assert isinstance(alias, AliasChoices)
    return str(alias.choices[0])


def setting_names() -> set[str]:
    """Every environment variable the processes read (ops_common.settings)."""
    return {env_name(field) for field in Settings.model_fields.values()}


def secret_refs(container: dict[str, Any]) -> dict[str, tuple[str, str, bool]]:
    """env name -> (Secret name, key, optional) for every secretKeyRef of `container`."""
    refs = {}
    for env in container.get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            refs[env["name"]] = (ref["name"], ref["key"], bool(ref.get("optional", False)))
    return refs


# --- schema validation ----------------------------------------------------------------------


def _crd_validators() -> dict[tuple[str, str], jsonschema.Draft202012Validator]:
    schemas = [json.loads(p.read_text()) for p in sorted(CRD_SCHEMAS.glob("*.json"))]
    registry: Registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas
    )
    validators = {}
    for schema in schemas:
        jsonschema.Draft202012Validator.check_schema(schema)
        gvk = schema.get("x-kubernetes-group-version-kind")
        if gvk is not None:
            validators[(gvk["apiVersion"], gvk["kind"])] = jsonschema.Draft202012Validator(
                schema, registry=registry
            )
    return validators


CRD_VALIDATORS = _crd_validators()


def schema_errors(obj: dict[str, Any]) -> list[str]:
    """Why `obj` does not satisfy its schema: Kubernetes' own (strict: unknown fields are
    errors) for built-in kinds, ours for the custom resources; [] when it does."""
    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    validator = CRD_VALIDATORS.get((obj.get("apiVersion", ""), obj.get("kind", "")))
    if validator is not None:
        return [
            f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(obj)
        ]
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{where}: no schema for {obj.get('apiVersion')} (add one to crd_schemas/)"]
    except kubernetes_validate.ValidationError as exc:
        return [f"{where}: {exc}"]
    return []


def test_every_object_validates_against_its_schema(manifests: Rendered) -> None:
    errors = [error for obj in manifests.objects for error in schema_errors(obj)]
    assert errors == []


def test_custom_resources_are_validated_with_our_schemas(manifests: Rendered) -> None:
    """Kubernetes does not know the CRDs: each custom kind we render has a schema here."""
    custom = {
        (o["apiVersion"], o["kind"])
        for o in manifests.objects
        if not o["apiVersion"].startswith(("v1", "apps/", "batch/", "policy/", "autoscaling/"))
    }
    assert custom == {
        ("keda.sh/v1alpha1", "ScaledObject"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("monitoring.coreos.com/v1", "PodMonitor"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
        ("kafka.strimzi.io/v1beta2", "KafkaTopic"),
    }
    assert custom <= set(CRD_VALIDATORS)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = obj
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value

    return change


@pytest.mark.parametrize(
    ("kind", "name", "change"),
    [
        ("Deployment", "ops-gateway", _set("spec.replicas", "two")),
        (
            "Deployment",
            "ops-gateway",
            _set("spec.template.spec.containers.0.livenessProbes", {}),
        ),
        ("Job", "ops-migrations", _set("spec.template.spec.containers.0.command", "opsctl")),
        ("ScaledObject", "ops-workers", _set("spec.cooldownPeriods", 300)),
        ("ScaledObject", "ops-workers", _set("spec.triggers.0.metadata.lagThreshold", 5000)),
        ("ScaledObject", "ops-workers", _set("spec.triggers.0.metadata.consumerGroupp", "x")),
        ("KafkaTopic", "ops-telemetry", _set("metadata.labels", {})),
        ("PrometheusRule", "ops-telemetry", _set("spec.groups.0.rules.0.for", "5 minutes")),
        ("PodMonitor", "ops-workers", _set("spec.podMetricsEndpoints.0.path", "metrics")),
    ],
)
def test_schema_validation_rejects_broken_objects(
    renders: dict[str, Rendered], kind: str, name: str, change: Callable[[dict[str, Any]], None]
) -> None:
    """The validation above is not a no-op: typical mistakes are caught."""
    obj = copy.deepcopy(renders["base"].get(kind, name))
    assert schema_errors(obj) == []
    change(obj)
    assert schema_errors(obj) != []


# --- what is deployed -----------------------------------------------------------------------


def test_renders_the_whole_system(manifests: Rendered) -> None:
    kinds_and_names = {
        (o["kind"], o["metadata"]["name"])
        for o in manifests.objects
        if o is not manifests.config_map
    }
    expected = {
        ("ServiceAccount", "ops-telemetry"),
        ("KafkaTopic", "ops-telemetry"),
        ("KafkaTopic", "ops-telemetry-dlq"),
        ("KafkaTopic", "ops-windows-5m"),
        ("KafkaTopic", "ops-workers-windows-5m-changelog"),
        ("KafkaTopic", "ops-workers-assignor-leader"),
        ("Job", "ops-migrations"),
        *(("Deployment", name) for name in PROCESSES),
        ("Service", "ops-gateway"),
        ("Service", "ops-alert-agent"),
        ("Service", "ops-dashboard"),
        ("HorizontalPodAutoscaler", "ops-gateway"),
        ("PodDisruptionBudget", "ops-gateway"),
        ("ScaledObject", "ops-workers"),
        ("PodMonitor", "ops-workers"),
        ("ServiceMonitor", "ops-gateway"),
        ("ServiceMonitor", "ops-alert-agent"),
        ("ServiceMonitor", "ops-dashboard"),
        ("PrometheusRule", "ops-telemetry"),
    }
    if manifests.name == "dev":
        expected.add(("Namespace", "ops-telemetry-dev"))
    assert kinds_and_names == expected


def test_objects_live_in_the_kustomization_namespace(manifests: Rendered) -> None:
    namespace = NAMESPACES[manifests.name]
    misplaced = [
        (o["kind"], o["metadata"]["name"], o["metadata"].get("namespace"))
        for o in manifests.objects
        if o["kind"] != "Namespace" and o["metadata"].get("namespace") != namespace
    ]
    assert misplaced == []


def test_every_process_runs_its_own_entry_point(manifests: Rendered) -> None:
    for name, (command, _) in PROCESSES.items():
        (container,) = pod_spec(manifests.get("Deployment", name))["containers"]
        assert container["command"] == command, name
        assert "args" not in container, name


# --- probes, resources, security --------------------------------------------------------------


def test_long_running_containers_have_liveness_and_readiness_probes(manifests: Rendered) -> None:
    for deployment in manifests.of_kind("Deployment"):
        for container in containers(deployment):
            where = f"{deployment['metadata']['name']}/{container['name']}"
            port_names = {p["name"] for p in container.get("ports", [])}
            liveness = container.get("livenessProbe", {}).get("httpGet")
            readiness = container.get("readinessProbe", {}).get("httpGet")
            assert liveness is not None, where
            assert readiness is not None, where
            # /healthz: the process serves; /readyz: it can do its work (docs/operations.md).
            # Liveness must not depend on them, or an outage would restart every pod.
            assert liveness["path"] == "/healthz", where
            assert readiness["path"] == "/readyz", where
            for probe in (liveness, readiness):
                assert probe["port"] in port_names, f"{where}: probe port {probe['port']}"


def test_ports_match_the_settings(manifests: Rendered) -> None:
    """The port each process binds (from the ConfigMap) is the one declared and probed."""
    for name, (_, port_setting) in PROCESSES.items():
        (container,) = pod_spec(manifests.get("Deployment", name))["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": int(manifests.config[port_setting])}, name
    for service in manifests.of_kind("Service"):
        (port,) = service["spec"]["ports"]
        (target,) = pods_selected(manifests, service["spec"]["selector"])
        assert port["targetPort"] == "http"
        assert port["port"] == int(manifests.config[PROCESSES[target][1]]), target


def test_every_host_setting_binds_all_interfaces(manifests: Rendered) -> None:
    hosts = {k: v for k, v in manifests.config.items() if k.endswith("_HOST")}
    assert set(hosts) == {
        "OPS_GATEWAY_HOST",
        "OPS_WORKER_HTTP_HOST",
        "OPS_ALERT_HOST",
        "OPS_DASHBOARD_HOST",
    }
    assert set(hosts.values()) == {"0.0.0.0"}


_UNITS = {
    "m": Decimal("0.001"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
}


def quantity(value: str | int | float) -> Decimal:
    """A Kubernetes resource quantity (the suffixes used here) as a number."""
    match = re.fullmatch(r"([0-9.]+)(m|k|M|G|Ki|Mi|Gi)?", str(value))
    assert match is not None, f"unparsed quantity {value!r}"
    return Decimal(match[1]) * _UNITS[match[2] or ""]


def test_every_container_has_cpu_and_memory_requests_and_limits(manifests: Rendered) -> None:
    for workload, container in every_container(manifests):
        where = f"{workload['metadata']['name']}/{container['name']}"
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            assert set(resources.get(kind, {})) >= {"cpu", "memory"}, f"{where} {kind}"
        for resource in ("cpu", "memory"):
            request = quantity(resources["requests"][resource])
            limit = quantity(resources["limits"][resource])
            assert 0 < request <= limit, f"{where} {resource}"


def _effective(workload: dict[str, Any], container: dict[str, Any], key: str) -> Any:
    """A security setting as the kubelet resolves it: the container's, else the pod's."""
    container_value = container.get("securityContext", {}).get(key)
    if container_value is not None:
        return container_value
    return pod_spec(workload).get("securityContext", {}).get(key)


def test_every_container_runs_unprivileged(manifests: Rendered) -> None:
    image_uid = int(dockerfile_final_user().split(":")[0])
    for workload, container in every_container(manifests):
        where = f"{workload['metadata']['name']}/{container['name']}"
        context = container.get("securityContext", {})
        assert _effective(workload, container, "runAsNonRoot") is True, where
        uid = _effective(workload, container, "runAsUser")
        assert isinstance(uid, int), where
        assert uid != 0, where
        # The user the image was built for (files it owns, e.g. the worker data dir).
        assert uid == image_uid, where
        assert context.get("allowPrivilegeEscalation") is False, where
        assert context.get("privileged", False) is False, where
        assert context.get("readOnlyRootFilesystem") is True, where
        assert context.get("capabilities", {}).get("drop") == ["ALL"], where
        assert not context.get("capabilities", {}).get("add"), where
        seccomp = _effective(workload, container, "seccompProfile") or {}
        assert seccomp.get("type") == "RuntimeDefault", where
        assert pod_spec(workload).get("hostNetwork", False) is False, where
        # The processes never call the Kubernetes API.
        assert pod_spec(workload).get("automountServiceAccountToken") is False, where


def test_writable_paths_are_empty_dirs(manifests: Rendered) -> None:
    """With a read-only root filesystem, every place a process writes is an emptyDir."""
    data_dir = manifests.config["OPS_WORKER_DATA_DIR"]
    for workload, container in every_container(manifests):
        name = workload["metadata"]["name"]
        volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
        assert all("emptyDir" in v for v in volumes.values()), f"{name}: only emptyDirs"
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert "emptyDir" in volumes[mounts["/tmp"]], name
        if name == "ops-workers":
            assert "emptyDir" in volumes[mounts[data_dir]], f"{name}: {data_dir}"


def test_service_links_are_off(manifests: Rendered) -> None:
    """Kubernetes would define <SERVICE>_PORT=tcp://… for every Service in the namespace;
    for ops-gateway and ops-dashboard those are our OPS_GATEWAY_PORT and OPS_DASHBOARD_PORT."""
    link_variables = set()
    for service in manifests.of_kind("Service"):
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        link_variables |= {f"{prefix}_PORT", f"{prefix}_SERVICE_HOST", f"{prefix}_SERVICE_PORT"}
    clashes = link_variables & setting_names()
    assert clashes == {"OPS_GATEWAY_PORT", "OPS_DASHBOARD_PORT"}
    for workload in manifests.workloads():
        assert pod_spec(workload).get("enableServiceLinks") is False, workload["metadata"]["name"]


# --- image ----------------------------------------------------------------------------------


def test_every_container_runs_the_image_the_dockerfile_builds(manifests: Rendered) -> None:
    image = dockerfile_image_name()
    project_version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    expected_tag = {"base": project_version, "dev": "dev"}[manifests.name]
    for workload, container in every_container(manifests):
        assert container["image"] == f"{image}:{expected_tag}", workload["metadata"]["name"]


# --- configuration and secrets --------------------------------------------------------------


def test_config_map_holds_known_non_secret_settings(manifests: Rendered) -> None:
    known = setting_names()
    assert set(manifests.config) <= known, set(manifests.config) - known
    assert not set(manifests.config) & SECRET_KEYS


def test_secret_keys_cover_every_secret_setting() -> None:
    """A new SecretStr setting must be added to the Secret's keys (and the docs)."""
    secret_settings = {
        env_name(field)
        for field in Settings.model_fields.values()
        if "SecretStr" in str(field.annotation)
    }
    assert secret_settings <= SECRET_KEYS
    assert setting_names() >= SECRET_KEYS


def test_settings_parse_as_a_pod_sees_them(
    manifests: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ConfigMap through the real Settings class: types parse, values land."""
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in manifests.config.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.gateway_host == settings.worker_http_host == "0.0.0.0"
    assert settings.alert_host == settings.dashboard_host == "0.0.0.0"
    assert settings.log_json is True
    assert settings.worker_app_id == "ops-workers"
    assert settings.telemetry_topic == "ops.telemetry"
    assert settings.dead_letter_topic == "ops.telemetry.dlq"
    # The dashboard's test-event button posts through the gateway Service.
    url = urlsplit(settings.dashboard_gateway_url)
    gateway = manifests.get("Service", "ops-gateway")
    assert (url.hostname, url.port) == ("ops-gateway", gateway["spec"]["ports"][0]["port"])


def test_secrets_are_referenced_never_defined(manifests: Rendered) -> None:
    assert manifests.of_kind("Secret") == []
    for workload, container in every_container(manifests):
        name = workload["metadata"]["name"]
        # envFrom a Secret would hand every key to every process.
        assert all("secretRef" not in source for source in container.get("envFrom", [])), name
        refs = secret_refs(container)
        assert {ref[0] for ref in refs.values()} <= {SECRET_NAME}, name
        assert all(env == key for env, (_, key, _) in refs.items()), name
        assert {key: optional for _, key, optional in refs.values()} == (
            SECRET_KEYS_BY_WORKLOAD[name]
        ), name
        plain = {e["name"] for e in container.get("env", []) if "value" in e}
        assert not plain & SECRET_KEYS, f"{name}: secret settings with literal values"
        assert {e["name"] for e in container.get("env", [])} <= setting_names(), name


def test_docs_list_every_secret_key() -> None:
    text = DOCS.read_text()
    missing = sorted(key for key in SECRET_KEYS if f"`{key}`" not in text)
    assert missing == []


# --- Kafka topics and worker scaling ----------------------------------------------------------


def test_topics_match_what_the_code_expects(
    manifests: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in manifests.config.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    expected = {t.name: t.num_partitions for t in pipeline_topics(settings)}
    # Faust's internal topics, named as faust.tables.base and faust.assignor name them; the
    # table's changelog must be co-partitioned with the telemetry topic.
    expected[f"{settings.worker_app_id}-{WINDOW_TABLE}-changelog"] = settings.telemetry_partitions
    expected[f"{settings.worker_app_id}-__assignor-__leader"] = 1
    declared = {
        t["spec"]["topicName"]: t["spec"]["partitions"] for t in manifests.of_kind("KafkaTopic")
    }
    assert declared == expected
    bootstrap_host = manifests.config["KAFKA_BOOTSTRAP_SERVERS"].split(",")[0].split(":")[0]
    for topic in manifests.of_kind("KafkaTopic"):
        name = topic["spec"]["topicName"]
        # Strimzi names the bootstrap Service <cluster>-kafka-bootstrap.
        assert f"{topic['metadata']['labels']['strimzi.io/cluster']}-kafka-bootstrap" == (
            bootstrap_host
        ), name
        replicas = topic["spec"]["replicas"]
        min_isr = int(topic["spec"]["config"]["min.insync.replicas"])
        # Writes (acks=all) must survive one broker being down.
        assert (min_isr == 1) if replicas == 1 else (1 < min_isr < replicas), name


def test_telemetry_partitions_agree(manifests: Rendered) -> None:
    telemetry = manifests.config["OPS_TELEMETRY_TOPIC"]
    partitions = manifests.topic(telemetry)["spec"]["partitions"]
    assert int(manifests.config["OPS_TELEMETRY_PARTITIONS"]) == partitions
    windows = manifests.topic(manifests.config["OPS_WINDOWS_TOPIC"])["spec"]["partitions"]
    assert windows == partitions


def test_workers_scale_on_consumer_lag_within_the_partition_count(manifests: Rendered) -> None:
    scaled = manifests.get("ScaledObject", "ops-workers")["spec"]
    config = manifests.config
    partitions = manifests.topic(config["OPS_TELEMETRY_TOPIC"])["spec"]["partitions"]
    assert partitions == int(config["OPS_TELEMETRY_PARTITIONS"])

    assert scaled["scaleTargetRef"]["name"] == "ops-workers"
    assert scaled["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"] <= partitions

    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    assert metadata["consumerGroup"] == config["OPS_WORKER_APP_ID"] == "ops-workers"
    assert metadata["topic"] == config["OPS_TELEMETRY_TOPIC"]
    assert metadata["bootstrapServers"] == config["KAFKA_BOOTSTRAP_SERVERS"]
    assert int(metadata["lagThreshold"]) > 0
    assert metadata.get("allowIdleConsumers", "false") == "false"


def test_worker_scaling_is_damped_against_rebalance_storms(manifests: Rendered) -> None:
    scaled = manifests.get("ScaledObject", "ops-workers")["spec"]
    assert scaled["cooldownPeriod"] >= 60
    behavior = scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    scale_down = behavior["scaleDown"]
    assert scale_down["stabilizationWindowSeconds"] >= 300
    assert scale_down["policies"], "scale-down needs a rate limit"
    assert scale_down.get("selectPolicy", "Max") != "Disabled"
    for policy in scale_down["policies"]:
        # At most one worker removed per minute: one rebalance at a time.
        assert policy["type"] == "Pods", policy
        assert policy["value"] == 1, policy
        assert policy["periodSeconds"] >= 60, policy


def test_worker_deployment_fits_the_consumer_group(manifests: Rendered) -> None:
    workers = manifests.get("Deployment", "ops-workers")
    # KEDA's HPA owns the count; a `replicas` here would reset it on every apply.
    assert "replicas" not in workers["spec"]
    # Never more workers than the scaled count during a rollout (no surge).
    assert workers["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    # Time to finish the batch in hand, commit and leave the group on SIGTERM.
    assert pod_spec(workers)["terminationGracePeriodSeconds"] >= 60


# --- gateway, alert agent, migrations -------------------------------------------------------


def test_gateway_scales_on_cpu_and_has_a_disruption_budget(manifests: Rendered) -> None:
    gateway = manifests.get("Deployment", "ops-gateway")
    assert "replicas" not in gateway["spec"], "the HPA owns the gateway's replica count"
    hpa = manifests.get("HorizontalPodAutoscaler", "ops-gateway")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "ops-gateway",
    }
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    assert [m["resource"]["name"] for m in hpa["metrics"] if m["type"] == "Resource"] == ["cpu"]
    pdb = manifests.get("PodDisruptionBudget", "ops-gateway")["spec"]
    assert pods_selected(manifests, pdb["selector"]) == ["ops-gateway"]
    expected_min = {"base": 2, "dev": 1}[manifests.name]
    assert hpa["minReplicas"] == expected_min


def test_alert_agent_is_a_singleton(manifests: Rendered) -> None:
    agent = manifests.get("Deployment", "ops-alert-agent")
    assert agent["spec"]["replicas"] == 1
    # Recreate: old and new never judge the same windows side by side.
    assert agent["spec"]["strategy"] == {"type": "Recreate"}
    targets = [
        h["spec"]["scaleTargetRef"]["name"] for h in manifests.of_kind("HorizontalPodAutoscaler")
    ]
    targets += [s["spec"]["scaleTargetRef"]["name"] for s in manifests.of_kind("ScaledObject")]
    assert "ops-alert-agent" not in targets


def shell_steps(command: list[str]) -> list[list[str]]:
    """The commands `sh -c "a && b"` runs, in order; a plain command is one step."""
    if command[:2] != ["sh", "-c"]:
        return [command]
    assert len(command) == 3, command
    tokens = shlex.split(command[2])
    operators = {t for t in tokens if re.fullmatch(r"[;&|]+", t)}
    # Only `&&`: a failed step must stop the ones after it.
    assert operators <= {"&&"}, f"unexpected shell operators {operators} in {command[2]!r}"
    steps: list[list[str]] = [[]]
    for token in tokens:
        if token == "&&":
            steps.append([])
        else:
            steps[-1].append(token)
    return steps


def test_migrations_job_migrates_then_creates_topics(manifests: Rendered) -> None:
    job = manifests.get("Job", "ops-migrations")
    (container,) = pod_spec(job)["containers"]
    assert shell_steps(container["command"]) == [
        ["opsctl", "migrate"],
        ["opsctl", "create-topics"],
    ]
    assert pod_spec(job)["restartPolicy"] in {"Never", "OnFailure"}
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["activeDeadlineSeconds"] > 0


def test_first_step_selector_applies_what_the_job_needs(manifests: Rendered) -> None:
    """docs/operations.md applies `-l '<PREPARE_SELECTOR>'` first and waits for the Job: the
    selector must take the Job, its ConfigMap and ServiceAccount, the topics (which must
    exist before `opsctl create-topics`, or it creates them with replication factor 1) and
    the dev Namespace; and no long-running process."""

    def component(obj: dict[str, Any]) -> str | None:
        return obj["metadata"].get("labels", {}).get(COMPONENT)

    job = manifests.get("Job", "ops-migrations")
    needed = [
        job,
        manifests.config_map,
        manifests.get("ServiceAccount", pod_spec(job)["serviceAccountName"]),
        *manifests.of_kind("KafkaTopic"),
        *manifests.of_kind("Namespace"),
    ]
    (source,) = pod_spec(job)["containers"][0]["envFrom"]
    assert source["configMapRef"]["name"] == manifests.config_map["metadata"]["name"]
    assert [component(o) for o in needed if component(o) not in PREPARE_COMPONENTS] == []
    assert [o for o in manifests.of_kind("Deployment") if component(o) in PREPARE_COMPONENTS] == []
    assert f"-l '{PREPARE_SELECTOR}'" in DOCS.read_text()


# --- commands refer to real code ------------------------------------------------------------


def _packages() -> set[str]:
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    return {pattern.rstrip("*") for pattern in include}


def command_problems(command: list[str]) -> list[str]:
    """Why `command` would not start a process of this project in the image; [] when fine."""
    problems = []
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for step in shell_steps(command):
        if step[:2] in (["python", "-m"], ["python3", "-m"]) and len(step) >= 3:
            module = step[2]
            path = ROOT.joinpath(*module.split("."))
            if module.split(".")[0] not in _packages():
                problems.append(f"{module}: not a package the image installs")
            elif not (path / "__main__.py").is_file() and not path.with_suffix(".py").is_file():
                problems.append(f"{module}: no such module (python -m would fail)")
        elif step[:1] == ["opsctl"]:
            if "opsctl" not in scripts:
                problems.append("opsctl: not a console script of the project")
            # argparse exits 0 on --help for a known subcommand, 2 for an unknown one.
            sink = io.StringIO()
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                try:
                    opsctl_main([*step[1:], "--help"])
                    code: int | str | None = "no exit"
                except SystemExit as exc:
                    code = exc.code
            if code != 0:
                problems.append(f"{shlex.join(step)}: opsctl does not accept it")
        else:
            problems.append(f"{shlex.join(step)}: not a known entry point")
    return problems


def test_container_commands_refer_to_existing_code(manifests: Rendered) -> None:
    problems = {
        f"{w['metadata']['name']}/{c['name']}": command_problems(c["command"])
        for w, c in every_container(manifests)
    }
    assert problems == {name: [] for name in problems}


@pytest.mark.parametrize(
    "command",
    [
        ["python", "-m", "ingest_gateways"],
        ["python", "-m", "bench"],  # exists, but is not installed into the image
        ["python", "-m", "ops_common"],  # a package without __main__
        ["opsctl", "migrations"],
        ["sh", "-c", "opsctl migrate && opsctl create-topic"],
        ["uvicorn", "ingest_gateway:app"],
    ],
)
def test_command_check_rejects_what_would_not_start(command: list[str]) -> None:
    assert command_problems(command) != []


# --- services and monitoring ----------------------------------------------------------------


def test_services_and_monitors_select_exactly_their_pods(manifests: Rendered) -> None:
    services = {s["metadata"]["name"]: s for s in manifests.of_kind("Service")}
    for name, service in services.items():
        assert pods_selected(manifests, service["spec"]["selector"]) == [name], name
    for monitor in manifests.of_kind("ServiceMonitor"):
        selector = monitor["spec"]["selector"]
        matched = [n for n, s in services.items() if selects(selector, s["metadata"]["labels"])]
        assert matched == [monitor["metadata"]["name"]]
        port_names = {p["name"] for p in services[matched[0]]["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= port_names
        assert {e["path"] for e in monitor["spec"]["endpoints"]} == {"/metrics"}
    (pod_monitor,) = manifests.of_kind("PodMonitor")
    assert pods_selected(manifests, pod_monitor["spec"]["selector"]) == ["ops-workers"]
    (worker,) = pod_spec(manifests.get("Deployment", "ops-workers"))["containers"]
    endpoints = pod_monitor["spec"]["podMetricsEndpoints"]
    assert {e["port"] for e in endpoints} <= {p["name"] for p in worker["ports"]}
    assert {e["path"] for e in endpoints} == {"/metrics"}
    # Every long-running process is scraped.
    scraped = {m["metadata"]["name"] for m in manifests.of_kind("ServiceMonitor")}
    assert scraped | {"ops-workers"} == set(PROCESSES)


def exported_metrics() -> set[str]:
    """The series names the processes export, as Prometheus scrapes them."""
    registry = CollectorRegistry()
    GatewayMetrics(registry)
    WorkerMetrics(registry)
    KpiGauges(registry, max_keys=1)
    AlertMetrics(registry)
    RequestMetrics(registry, "dashboard")
    names = set()
    for family in registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count")}
        else:
            names.add(family.name)
    return names


def _rules(manifests: Rendered) -> dict[str, dict[str, Any]]:
    (rule,) = manifests.of_kind("PrometheusRule")
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def _selectors(expr: str) -> list[tuple[str, str]]:
    """(metric, label matchers) of every selector in a PromQL expression."""
    return re.findall(r"(?<![\w:])([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?(?=\s*[\[{)\s<>=!]|$)", expr)


def test_alert_rules_use_metrics_that_exist(manifests: Rendered) -> None:
    known = exported_metrics() | EXTERNAL_METRICS
    # PromQL words and grouping labels; anything else in selector position must be a metric.
    not_metrics = {"sum", "by", "without", "and", "or", "unless", "on", "ignoring", "reason"}
    for alert, rule in _rules(manifests).items():
        used = {metric for metric, _ in _selectors(rule["expr"]) if metric not in not_metrics}
        assert used, alert
        assert used <= known, f"{alert}: unknown metrics {used - known}"


def test_alert_rules_cover_the_pipeline_health(manifests: Rendered) -> None:
    rules = _rules(manifests)
    used_by = {
        metric: {a for a, r in rules.items() if metric in r["expr"]}
        for metric in (
            "kafka_consumergroup_lag",
            "worker_events_dead_lettered_total",
            "gateway_http_requests_total",
            "worker_db_retries_total",
            "alert_slack_sends_total",
            "alert_outbox_pending",
            "up{",
        )
    }
    assert all(used_by.values()), used_by
    config = manifests.config
    lag_rules = [rules[a] for a in used_by["kafka_consumergroup_lag"]]
    for rule in lag_rules:
        for metric, labels in _selectors(rule["expr"]):
            if metric == "kafka_consumergroup_lag":
                assert f'consumergroup="{config["OPS_WORKER_APP_ID"]}"' in labels
                assert f'topic="{config["OPS_TELEMETRY_TOPIC"]}"' in labels
        # "high and growing": a level and a trend.
        assert " and " in rule["expr"]
        assert "delta(" in rule["expr"]
    gateway_rules = " ".join(rules[a]["expr"] for a in used_by["gateway_http_requests_total"])
    assert 'status="503"' in gateway_rules
    assert 'status=~"5.."' in gateway_rules
    assert 'outcome="failed"' in " ".join(
        rules[a]["expr"] for a in used_by["alert_slack_sends_total"]
    )
    for alert, rule in rules.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, alert
        assert rule["annotations"]["summary"], alert


def test_target_down_rule_covers_every_scraped_job(manifests: Rendered) -> None:
    """ServiceMonitor jobs are named after the Service; the PodMonitor sets its job."""
    jobs = {m["metadata"]["name"] for m in manifests.of_kind("ServiceMonitor")}
    for endpoint in manifests.get("PodMonitor", "ops-workers")["spec"]["podMetricsEndpoints"]:
        (relabel,) = [r for r in endpoint.get("relabelings", []) if r["targetLabel"] == "job"]
        jobs.add(relabel["replacement"])
    (down,) = [r for r in _rules(manifests).values() if r["expr"].startswith("up{")]
    match = re.search(r'job=~"([^"]+)"', down["expr"])
    assert match is not None
    assert {job for job in jobs if re.fullmatch(match[1], job)} == jobs == set(PROCESSES)


# --- the dev overlay ------------------------------------------------------------------------


def test_dev_overlay_is_smaller(renders: dict[str, Rendered]) -> None:
    base, dev = renders["base"], renders["dev"]
    for deployment in dev.of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        for container in containers(deployment):
            (base_container,) = [
                c
                for c in containers(base.get("Deployment", name))
                if c["name"] == container["name"]
            ]
            pairs = [
                (
                    quantity(container["resources"][k][r]),
                    quantity(base_container["resources"][k][r]),
                )
                for k in ("requests", "limits")
                for r in ("cpu", "memory")
            ]
            assert all(d <= b for d, b in pairs), name
            assert any(d < b for d, b in pairs), name
            assert container["imagePullPolicy"] == "Always", name
    assert (
        dev.get("ScaledObject", "ops-workers")["spec"]["maxReplicaCount"]
        <= (base.get("ScaledObject", "ops-workers")["spec"]["maxReplicaCount"])
    )
    # A single-broker development Kafka.
    assert {t["spec"]["replicas"] for t in dev.of_kind("KafkaTopic")} == {1}
    namespace = dev.get("Namespace", "ops-telemetry-dev")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# --- Dockerfile -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction with its continuation lines joined."""

    keyword: str
    args: str


def dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions, comments dropped."""
    instructions, pending = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(args.split())))
        pending = ""
    return instructions


def dockerfile_stages() -> list[list[Instruction]]:
    """Instructions grouped by stage, each starting with its FROM (with global ARGs applied)."""
    global_args: dict[str, str] = {}
    stages: list[list[Instruction]] = []
    for instruction in dockerfile():
        if instruction.keyword == "FROM":
            args = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m[1]], instruction.args)
            stages.append([Instruction("FROM", args)])
        elif not stages and instruction.keyword == "ARG":
            name, _, default = instruction.args.partition("=")
            global_args[name] = default
        else:
            stages[-1].append(instruction)
    return stages


def dockerfile_final_user() -> str:
    """The USER the final stage ends with."""
    users = [i.args for i in dockerfile_stages()[-1] if i.keyword == "USER"]
    assert users, "the final stage sets no USER (it would run as root)"
    return users[-1]


def dockerfile_image_name() -> str:
    """ghcr.io/<owner>/<repo>: GHCR links an image to the repository its source label names."""
    labels = " ".join(i.args for i in dockerfile_stages()[-1] if i.keyword == "LABEL")
    match = re.search(
        r'org\.opencontainers\.image\.source="https://github\.com/([^"/]+/[^"/]+)"', labels
    )
    assert match is not None, "the final stage has no org.opencontainers.image.source label"
    return f"ghcr.io/{match[1]}"


def test_dockerfile_is_multi_stage_and_ends_unprivileged() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    builder, final = stages[0], stages[-1]
    base_image, _, alias = builder[0].args.partition(" AS ")
    assert alias.strip() == "builder"
    assert base_image == final[0].args == "python:3.11-slim"
    user = dockerfile_final_user()
    assert user.split(":")[0] not in {"0", "root"}
    assert user.split(":")[0].isdigit(), "numeric, so runAsNonRoot can verify it"
    # Nothing after the final USER switches back or runs as root.
    after = final[[i.keyword for i in final].index("USER") + 1 :]
    assert all(i.keyword not in {"RUN", "USER"} for i in after), after


def test_dockerfile_runtime_has_the_venv_and_no_build_tools() -> None:
    builder, final = dockerfile_stages()[0], dockerfile_stages()[-1]
    runs = " ".join(i.args for i in final if i.keyword == "RUN")
    for tool in ("apt-get install", "gcc", "build-essential", "pip install"):
        assert tool not in runs, tool
    venv = re.search(
        r"python -m venv (\S+)", " ".join(i.args for i in builder if i.keyword == "RUN")
    )
    assert venv is not None
    copies = [i.args for i in final if i.keyword == "COPY"]
    # A virtualenv only works at the path it was created at.
    assert f"--from=builder {venv[1]} {venv[1]}" in copies
    env = " ".join(i.args for i in final if i.keyword == "ENV")
    assert f"PATH={venv[1]}/bin:$PATH" in env


def test_dockerfile_puts_the_migrations_where_opsctl_reads_them() -> None:
    # opsctl/migrate.py: SQL_DIR is <parent of the opsctl package>/sql, i.e. for an installed
    # (non-editable) package site-packages/sql.
    package_parent = Path(opsctl.migrate.__file__).resolve().parent.parent
    assert package_parent / "sql" == opsctl.migrate.SQL_DIR
    stages = dockerfile_stages()
    builder_runs = " ".join(i.args for i in stages[0] if i.keyword == "RUN")
    assert re.search(r"pip install (?!-e)\.", builder_runs), "a regular install"
    venv = re.search(r"python -m venv (\S+)", builder_runs)
    assert venv is not None
    python = re.fullmatch(r"python:(\d+\.\d+)-slim", stages[-1][0].args)
    assert python is not None
    site_packages = f"{venv[1]}/lib/python{python[1]}/site-packages"
    assert f"sql {site_packages}/sql" in [i.args for i in stages[-1] if i.keyword == "COPY"]
    assert opsctl.migrate.migration_files(ROOT / "sql"), "sql/ holds the migrations"


def _dockerignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = Path(path).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, f"**/{pattern}") for p in prefixes
        ):
            excluded = not negated
    return excluded


def test_dockerfile_copies_every_installed_package_and_nothing_ignored() -> None:
    builder, final = dockerfile_stages()[0], dockerfile_stages()[-1]
    sources = []
    for instruction in builder + final:
        if instruction.keyword == "COPY" and not instruction.args.startswith("--from"):
            *srcs, _ = instruction.args.split()
            sources += srcs
    present_packages = {p for p in _packages() if (ROOT / p / "__init__.py").is_file()}
    assert present_packages <= set(sources), present_packages - set(sources)
    assert {"pyproject.toml", "README.md", "sql"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not _dockerignored(source), f"{source} is in .dockerignore"
    for private in (".git", ".venv", ".cache", ".stack", "ops_common/__pycache__"):
        assert _dockerignored(private), f"{private} would be sent to the build"
