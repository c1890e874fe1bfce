"""deploy/k8s renders, every object is valid against the Kubernetes (and KEDA) schemas, and it names only what
the code has: commands, options, settings, ports, probe paths, queues and the metric KEDA scales on.

No cluster runs here: the kustomization is rendered by tests/kustomize.py and validated offline.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests import deploy_contract as contract
from tests.kustomize import KustomizeError, containers, pod_spec, render
from tests.support import ROOT
from worker.constants import QUEUES, TIME_LIMITS

K8S = ROOT / "deploy" / "k8s"
LAYOUTS = {"base": K8S / "base", "example": K8S / "overlays" / "example"}
LAYOUTS["ledger-scale-to-zero"] = K8S / "overlays" / "ledger-scale-to-zero"
KUBERNETES_VERSION = "1.30.0"
# The Prometheus scaler's trigger metadata (kedacore/keda pkg/scalers/prometheus_scaler.go).
PROMETHEUS_TRIGGER_KEYS = {
    "serverAddress",
    "query",
    "queryParameters",
    "threshold",
    "activationThreshold",
    "namespace",
    "customHeaders",
    "ignoreNullValues",
    "unsafeSsl",
    "timeout",
}


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(LAYOUTS[request.param])


def _by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def _strict(schema: Any) -> Any:
    """The CRD schema as the API server's strict field validation reads it: no field it does not declare."""
    if isinstance(schema, dict):
        out = {key: _strict(value) for key, value in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


def _worker_queue(deployment: dict[str, Any]) -> str:
    (queue,) = contract.queues_of(pod_spec(deployment)["containers"][0]["command"])  # type: ignore[index]
    return queue


def _workers(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    deployments = _by_kind(objects, "Deployment")
    return {_worker_queue(d): d for d in deployments.values() if d["metadata"]["name"].startswith("fleet-worker-")}


def test_every_object_is_valid_against_the_kubernetes_schemas(objects: list[dict[str, Any]]) -> None:
    core = [obj for obj in objects if not obj["apiVersion"].startswith("keda.sh/")]
    assert {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap", "Job"} <= {obj["kind"] for obj in core}
    for obj in core:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {str(exc).splitlines()[0]}")


def test_every_scaled_object_is_valid_against_the_keda_schema(objects: list[dict[str, Any]]) -> None:
    schema = _strict(json.loads((ROOT / "tests" / "schemas" / "keda-scaledobject.json").read_text()))
    schema["properties"]["metadata"] = {"type": "object"}
    scaled = _by_kind(objects, "ScaledObject")
    assert len(scaled) == len(QUEUES)
    for name, obj in scaled.items():
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(obj)]
        assert errors == [], name
        for trigger in obj["spec"]["triggers"]:
            assert trigger["type"] == "prometheus"
            assert set(trigger["metadata"]) <= PROMETHEUS_TRIGGER_KEYS, name
            assert all(isinstance(v, str) for v in trigger["metadata"].values()), name


def test_the_strict_keda_schema_refuses_a_misspelt_field() -> None:
    # Given the vendored schema made strict, When a ScaledObject has a field KEDA does not know, Then it fails
    schema = _strict(json.loads((ROOT / "tests" / "schemas" / "keda-scaledobject.json").read_text()))
    obj = _by_kind(render(LAYOUTS["base"]), "ScaledObject")["fleet-worker-ledger"]
    obj["spec"]["minReplicas"] = 0
    assert any("minReplicas" in e.message for e in jsonschema.Draft7Validator(schema).iter_errors(obj))


def test_there_is_a_worker_deployment_per_queue_and_each_scales_on_its_own_depth(objects: list[dict[str, Any]]) -> None:
    workers = _workers(objects)
    assert set(workers) == set(QUEUES)
    scaled = {obj["spec"]["scaleTargetRef"]["name"]: obj for obj in _by_kind(objects, "ScaledObject").values()}
    for queue, deployment in workers.items():
        name = deployment["metadata"]["name"]
        # KEDA owns the replica count: a Deployment that sets one would be reset by every apply
        assert "replicas" not in deployment["spec"], name
        (trigger,) = scaled[name]["spec"]["triggers"]
        query = trigger["metadata"]["query"]
        assert re.fullmatch(r'max\(celery_queue_length\{queue="([a-z]+)"\}\)', query), query
        assert f'queue="{queue}"' in query


def test_keda_scales_on_a_metric_the_fleet_exports(objects: list[dict[str, Any]]) -> None:
    # The e2e test (tests/e2e/test_fleet_as_documented.py) scrapes a running fleet for these names too
    from tests.unit.test_deploy_files import KNOWN

    for obj in _by_kind(objects, "ScaledObject").values():
        for trigger in obj["spec"]["triggers"]:
            names = re.findall(r"([a-z_]+)\{", trigger["metadata"]["query"])
            assert names and all(KNOWN.match(n) for n in names)


def test_only_ledger_scales_to_zero_and_only_in_its_overlay() -> None:
    for layout, path in LAYOUTS.items():
        minimum = {
            obj["metadata"]["name"]: obj["spec"]["minReplicaCount"]
            for obj in render(path)
            if obj["kind"] == "ScaledObject"
        }
        zero = {"fleet-worker-ledger"} if layout == "ledger-scale-to-zero" else set()
        assert {name for name, count in minimum.items() if count == 0} == zero, layout


def test_every_command_is_a_real_entry_point_with_real_options(objects: list[dict[str, Any]]) -> None:
    for container in containers(objects):
        assert contract.command_problems(container["command"]) == [], container["name"]
        probe = container.get("livenessProbe", {}).get("exec")
        if probe:
            assert contract.command_problems(probe["command"]) == [], container["name"]


def test_the_worker_liveness_ping_names_the_worker_of_its_pod(objects: list[dict[str, Any]]) -> None:
    for queue, deployment in _workers(objects).items():
        container = pod_spec(deployment)["containers"][0]  # type: ignore[index]
        node = contract.option_value(container["command"], "-n")
        ping = container["livenessProbe"]["exec"]["command"][2]
        assert node == f"{queue}@%h" and f"-d {queue}@$HOSTNAME" in ping
        # A bounded wait: the ping's own timeout ends before the probe's
        assert int(contract.option_value(ping.split(), "-t") or 0) < container["livenessProbe"]["timeoutSeconds"]


def test_every_variable_is_a_setting_and_secrets_come_from_the_secret(objects: list[dict[str, Any]]) -> None:
    assert "Secret" not in {obj["kind"] for obj in objects}  # never committed
    config = _by_kind(objects, "ConfigMap")["fleet-config"]
    names = set(config["data"])
    secret_keys = set()
    for container in containers(objects):
        assert container["envFrom"] == [{"configMapRef": {"name": "fleet-config"}}]
        for variable in container.get("env", []):
            names.add(variable["name"])
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == "fleet-secrets"
                secret_keys.add(ref["key"])
    assert contract.unknown_variables(names) == set()
    # The secrets are the settings that have no default, and docs/DEPLOY.md's command creates every key
    assert secret_keys == {"broker-url", "database-url", "flower-auth", "api-keys"}
    deploy_doc = (ROOT / "docs" / "DEPLOY.md").read_text()
    assert all(f"--from-literal={key}=" in deploy_doc for key in secret_keys)


def test_ports_probes_and_services_agree_with_the_code(objects: list[dict[str, Any]]) -> None:
    deployments = _by_kind(objects, "Deployment")
    paths = {"api": contract.api_paths(), "flower": contract.flower_paths()}
    for name, service in _by_kind(objects, "Service").items():
        component = name.removeprefix("fleet-")
        container = pod_spec(deployments[name])["containers"][0]  # type: ignore[index]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        listens = contract.option_value(container["command"], "--port")
        assert [str(p) for p in ports.values()] == [listens], name
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports), name
        assert service["spec"]["selector"] == deployments[name]["spec"]["selector"]["matchLabels"]
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            if kind in container:
                probe = container[kind]["httpGet"]
                assert probe["port"] in ports and probe["path"] in paths[component], (name, kind, probe)
    # The API's readiness does not hang on workers: a queue scaled to zero must not empty the Service
    api = pod_spec(deployments["fleet-api"])["containers"][0]  # type: ignore[index]
    assert api["readinessProbe"]["httpGet"]["path"] != "/health/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health/live"


def test_workers_get_longer_than_their_longest_task_to_stop(objects: list[dict[str, Any]]) -> None:
    for queue, deployment in _workers(objects).items():
        _soft, hard = TIME_LIMITS[queue]
        assert pod_spec(deployment)["terminationGracePeriodSeconds"] > hard, queue  # type: ignore[index]


def test_every_pod_runs_as_the_images_non_root_user_with_limits(objects: list[dict[str, Any]]) -> None:
    user = re.search(r"^USER (\d+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert user, "the Dockerfile's USER must be numeric for runAsNonRoot"
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == int(user.group(1))
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])
            # Writable places on a read-only root: the fleet's var folder (logs, metrics) and /tmp
            assert {"/app/var", "/tmp"} <= {m["mountPath"] for m in container["volumeMounts"]}


def test_disruption_budgets_cover_the_api_and_every_worker(objects: list[dict[str, Any]]) -> None:
    budgets = _by_kind(objects, "PodDisruptionBudget")
    deployments = _by_kind(objects, "Deployment")
    covered = set()
    for name, budget in budgets.items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
        covered.add(name)
    assert {"fleet-api"} | {f"fleet-worker-{q}" for q in QUEUES} <= covered


def test_a_standby_beat_runs_beside_the_active_one(objects: list[dict[str, Any]]) -> None:
    # Two beats are safe: the Redis lock lets one schedule (tests/faults/test_beat_failover.py)
    beat = _by_kind(objects, "Deployment")["fleet-beat"]
    assert beat["spec"]["replicas"] == 2


def test_the_migration_job_upgrades_the_database(objects: list[dict[str, Any]]) -> None:
    job = _by_kind(objects, "Job")["fleet-migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["agent", "db", "upgrade"]


def test_the_example_overlay_pins_the_image_and_a_namespace() -> None:
    for obj in render(LAYOUTS["example"]):
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "agent-fleet"
    images = {c["image"] for c in containers(render(LAYOUTS["example"]))}
    assert images == {"registry.example.com/agent-fleet:0.1.0"}


def test_every_kustomization_renders() -> None:
    for path in Path(K8S).rglob("kustomization.yaml"):
        assert render(path.parent)


@pytest.mark.parametrize(
    ("kustomization", "refusal"),
    [
        ("resources: [base.yaml]\ncommonLabels: {a: b}\n", "unsupported kustomization fields"),
        ("resources: [base.yaml]\npatches: [{path: p.yaml}]\n", "only inline JSON 6902 patches"),
        (
            "resources: [base.yaml]\npatches: [{target: {kind: Deployment}, patch: '[]'}]\n",
            "matches nothing",
        ),
        (
            "resources: [base.yaml]\npatches: [{target: {kind: ConfigMap}, patch: '[{op: replace, path: /data/b, value: 1}]'}]\n",
            "replace of a missing path",
        ),
    ],
)
def test_the_renderer_refuses_what_it_does_not_handle(tmp_path: Path, kustomization: str, refusal: str) -> None:
    # A manifest relying on a kustomize feature the renderer ignored would pass these tests untested
    (tmp_path / "base.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: x}\n")
    (tmp_path / "kustomization.yaml").write_text(kustomization)
    with pytest.raises(KustomizeError, match=refusal):
        render(tmp_path)


def test_the_processes_that_write_reports_share_the_report_volume(objects: list[dict[str, Any]]) -> None:
    # The reports workers write the daily report; the API writes one for POST /api/v1/reports/run and serves them
    report_dir = _by_kind(objects, "ConfigMap")["fleet-config"]["data"]["FLEET_REPORT_DIR"]
    claim = _by_kind(objects, "PersistentVolumeClaim")["fleet-reports"]
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    deployments = _by_kind(objects, "Deployment")
    for name in ("fleet-api", "fleet-worker-reports"):
        spec = pod_spec(deployments[name])
        assert spec is not None
        (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == report_dir]
        assert not mount.get("readOnly")
        (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
        assert volume["persistentVolumeClaim"]["claimName"] == "fleet-reports"
