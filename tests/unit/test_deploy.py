"""deploy/: the alert rules pass promtool, the Kubernetes manifests validate offline, the runbook is true."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from sambus.router.service.bootstrap import STAGES
from sambus.router.settings import Settings, host_instance_id

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.30.0"
METRICS = ROOT / "router" / "ops" / "metrics.py"


def _missing(tool: str, how: str) -> None:
    message = f"{tool} is not installed: {how}"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        _missing("promtool", "run deploy/monitoring/prerequisites.sh")
    assert promtool is not None
    return promtool


def test_the_alert_rules_pass_promtool():
    checked = subprocess.run(
        [_promtool(), "check", "rules", str(DEPLOY / "monitoring" / "alerts.yaml")],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_alerts_fire_on_the_series_they_are_about():
    tested = subprocess.run(
        [_promtool(), "test", "rules", "alerts_test.yaml"],
        cwd=DEPLOY / "monitoring", capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_alerts_use_only_metrics_sambus_exports():
    exported = set(re.findall(r'"(sambus_[a-z_]+)"', METRICS.read_text(encoding="utf-8")))
    suffixes = ("_total", "_bucket", "_sum", "_count")
    rules = yaml.safe_load((DEPLOY / "monitoring" / "alerts.yaml").read_text(encoding="utf-8"))
    used = {
        name
        for group in rules["groups"]
        for rule in group["rules"]
        for name in re.findall(r"\bsambus_[a-z_]+", rule["expr"])
    }
    assert used
    unknown = {
        n for n in used if n not in exported and not any(n.removesuffix(s) in exported for s in suffixes)
    }
    assert unknown == set()


def _manifests() -> list[tuple[str, dict[str, object]]]:
    return [
        (path.name, document)
        for path in sorted(KUBERNETES.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if document
    ]


def test_the_kubernetes_manifests_validate_offline():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    manifests = _manifests()
    assert len(manifests) >= 10
    for name, document in manifests:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)  # raises, naming the field
        assert document["metadata"]["labels"]["app.kubernetes.io/name"] == "sambus", name  # type: ignore[index]


def test_a_statefulset_per_stage_group_with_probes_limits_and_a_non_root_user():
    groups = {d["metadata"]["name"]: d for _, d in _manifests() if d["kind"] == "StatefulSet"}  # type: ignore[index]
    assert {f"sambus-{stage}" for stage in STAGES} <= set(groups)
    web = [d for _, d in _manifests() if d["kind"] == "Deployment"]
    for name, workload in [*groups.items(), *((d["metadata"]["name"], d) for d in web)]:  # type: ignore[index]
        spec = workload["spec"]  # type: ignore[index]
        pod = spec["template"]["spec"]
        (container,) = pod["containers"]
        assert spec["replicas"] >= 2, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert container["livenessProbe"]["httpGet"]["path"] == "/health", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready", name
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name


def test_each_stage_pod_keeps_its_name_as_its_instance_id():
    services = {d["metadata"]["name"]: d for _, d in _manifests() if d["kind"] == "Service"}  # type: ignore[index]
    for _, workload in _manifests():
        if workload["kind"] != "StatefulSet":
            continue
        spec = workload["spec"]  # type: ignore[index]
        assert services[spec["serviceName"]]["spec"]["clusterIP"] == "None", (
            "a headless Service names the pods"
        )
        (container,) = spec["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["SAMBUS_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


@pytest.mark.parametrize(
    ("hostname", "instance"),
    [
        ("sambus-delivery-1", "sambus-delivery-1"),
        ("sambus-delivery-0.sambus-stages.sambus.svc.cluster.local", "sambus-delivery-0"),
        (
            "a-statefulset-with-a-name-longer-than-forty-characters-12",
            "h-a-name-longer-than-forty-characters-12",
        ),
        ("odd+host name", "odd-host-name"),
        ("", "0"),
    ],
)
def test_an_unset_instance_id_is_the_host_name(hostname: str, instance: str, monkeypatch):
    monkeypatch.delenv("SAMBUS_INSTANCE_ID", raising=False)
    monkeypatch.setattr(socket, "gethostname", lambda: hostname)

    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.instance_id == instance == host_instance_id(hostname)
    assert len(settings.instance_id) <= 40


def test_a_given_instance_id_wins_over_the_host_name(monkeypatch):
    monkeypatch.setenv("SAMBUS_INSTANCE_ID", "i7")
    monkeypatch.setattr(socket, "gethostname", lambda: "sambus-delivery-1")

    assert Settings(_env_file=None).instance_id == "i7"  # type: ignore[call-arg]


def test_every_setting_the_manifests_give_is_a_setting():
    known = {f"SAMBUS_{name.upper()}" for name in Settings.model_fields} | {"KAFKA_BOOTSTRAP_SERVERS"}
    given: set[str] = set()
    for _, document in _manifests():
        if document["kind"] == "ConfigMap":
            given |= set(document["data"])  # type: ignore[arg-type]
        if document["kind"] == "Secret" and document["metadata"]["name"] == "sambus-secrets":  # type: ignore[index]
            given |= set(document["stringData"])  # type: ignore[arg-type]
    assert given - known == set()
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text(encoding="utf-8"))
    example = (DEPLOY / "compose" / "trial.env.example").read_text(encoding="utf-8")
    given = set(re.findall(r"^([A-Z_]+)=", example, flags=re.MULTILINE)) | set(
        compose["services"]["sambus"]["environment"]
    )
    assert given - known == set()


def test_the_db_upgrade_job_runs_sambus_db_upgrade():
    (job,) = [d for _, d in _manifests() if d["kind"] == "Job"]
    (container,) = job["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
    assert container["command"] == ["sambus", "db", "upgrade"]


def test_the_runbook_names_only_files_that_exist():
    runbook = (DEPLOY / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:deploy|router|tests)/[\w./-]+)`", runbook))
    assert named
    assert {n for n in named if not (ROOT / n).exists()} == set()
