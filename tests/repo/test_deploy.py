"""The deploy files (deploy/): the Kubernetes manifests are valid against the Kubernetes
schemas, the compose file against the Compose specification's schema (both offline, from
the validators' bundled schemas), and both run the replicas with the settings the fleet
test proves (bench/fleet_cluster.py), on the nginx config it runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bench.fleet_cluster import ADDRESSED, NGINX_CONF, SECRETS, SETTINGS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
MANIFESTS = sorted(KUBERNETES.glob("*.yaml"))
# The Kubernetes release whose schemas the manifests are held to (bundled by the validator).
KUBERNETES_VERSION = "1.37.0"
SERVE = ["authsvc", "serve", "--host", "0.0.0.0", "--port", "8000"]  # noqa: S104 - in a pod


def manifest(kind: str) -> dict[str, Any]:
    found = [
        document
        for path in MANIFESTS
        for document in yaml.safe_load_all(path.read_text())
        if document and document["kind"] == kind
    ]
    assert len(found) == 1, f"expected one {kind} in deploy/kubernetes, found {len(found)}"
    document: dict[str, Any] = found[0]
    return document


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    found: dict[str, Any] = containers[0]
    return found


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_there_is_a_manifest_for_each_part_of_the_deployment() -> None:
    kinds = sorted(
        document["kind"]
        for path in MANIFESTS
        for document in yaml.safe_load_all(path.read_text())
        if document
    )
    expected = ["Deployment", "HorizontalPodAutoscaler", "Job", "PodDisruptionBudget", "Service"]
    assert kinds == expected


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_each_kubernetes_manifest_is_valid_against_the_kubernetes_schemas(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        # Strict: a misspelt or misplaced field is an error, not silently ignored.
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validator_refuses_a_misplaced_field() -> None:
    deployment = manifest("Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 3}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    checker = str(Path(sys.executable).with_name("check-jsonschema"))
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def kubernetes_environment() -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container(manifest("Deployment"))["env"]}


def test_the_kubernetes_replicas_have_the_fleet_tests_settings() -> None:
    env = kubernetes_environment()
    assert set(env) == {*SETTINGS, *ADDRESSED, *SECRETS}
    assert {name: env[name].get("value") for name in SETTINGS} == SETTINGS


def test_the_compose_replicas_have_the_fleet_tests_settings() -> None:
    env = compose()["services"]["authsvc"]["environment"]
    assert set(env) == {*SETTINGS, *ADDRESSED, *SECRETS}
    assert {name: env[name] for name in SETTINGS} == SETTINGS


def test_the_secrets_come_from_a_kubernetes_secret() -> None:
    env = kubernetes_environment()
    for name in (*SECRETS, "DATABASE_URL"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "authsvc", name
    job = {entry["name"]: entry for entry in container(manifest("Job"))["env"]}
    assert job["NEXTAUTH_SECRET"]["valueFrom"] == env["NEXTAUTH_SECRET"]["valueFrom"]
    assert job["DATABASE_URL"]["valueFrom"] == env["DATABASE_URL"]["valueFrom"]


def test_liveness_probes_healthz_and_readiness_probes_readyz() -> None:
    replica = container(manifest("Deployment"))
    assert replica["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert replica["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_migration_job_runs_authsvc_migrate_on_the_replicas_image() -> None:
    job = container(manifest("Job"))
    assert job["command"] == ["authsvc", "migrate"]
    assert job["image"] == container(manifest("Deployment"))["image"]


def test_the_replicas_serve_without_migrating_in_kubernetes_and_compose() -> None:
    assert container(manifest("Deployment"))["command"] == SERVE
    assert compose()["services"]["authsvc"]["command"] == SERVE


def test_the_service_budget_and_autoscaler_select_the_deployment() -> None:
    deployment = manifest("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert manifest("Service")["spec"]["selector"] == labels
    assert manifest("PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == labels
    target = manifest("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


def test_the_autoscaler_scales_on_cpu_from_the_three_replicas_the_fleet_proves() -> None:
    spec = manifest("HorizontalPodAutoscaler")["spec"]
    assert spec["minReplicas"] == manifest("Deployment")["spec"]["replicas"] == 3
    assert [metric["resource"]["name"] for metric in spec["metrics"]] == ["cpu"]


def test_the_database_connections_of_the_largest_fleet_fit_postgresqls_default() -> None:
    most = manifest("HorizontalPodAutoscaler")["spec"]["maxReplicas"]
    assert most * int(SETTINGS["AUTHSVC_DB_POOL_SIZE"]) <= 100


def test_compose_runs_three_replicas_behind_the_nginx_config_the_fleet_runs() -> None:
    services = compose()["services"]
    assert services["authsvc"]["deploy"]["replicas"] == 3
    assert services["migrate"]["command"] == ["authsvc", "migrate"]
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in services["nginx"]["volumes"]
    assert (DEPLOY / "nginx.conf").resolve() == NGINX_CONF.resolve()
