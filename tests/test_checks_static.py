"""Static checks on fixture charts rendered with the real helm: verdicts and impacted
resources, one fixture failing each check and one passing all of them."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from bench.checks import all_checks, run_static_checks
from bench.checks.artifacts import Artifacts, load_target, parse_documents
from bench.checks.k8sapi import api_status
from bench.checks.registry import CheckResult, Need, Resource, Status
from bench.checks.static import STATIC_CHECK_IDS, hardcoded_ips, image_reference_problem
from bench.errors import InputError

CHARTS = Path(__file__).resolve().parent / "fixtures" / "charts"
NS = "cnf-test"


@cache
def artifacts(chart: str) -> Artifacts:
    return load_target(CHARTS / chart, namespace=NS)


@cache
def results(chart: str, dual_stack: bool = True) -> dict[str, CheckResult]:
    return {r.id: r for r in run_static_checks(artifacts(chart), require_dual_stack=dual_stack)}


def dep(name: str, container: str | None = None) -> Resource:
    return Resource("Deployment", NS, name, container)


def test_every_artifact_check_is_run_statically() -> None:
    static = {c.id for c in all_checks() if c.needs == frozenset({Need.ARTIFACTS})}
    assert static == set(STATIC_CHECK_IDS)
    assert [r.id for r in run_static_checks(artifacts("good"))] == list(STATIC_CHECK_IDS)


def test_good_chart_passes_every_static_check() -> None:
    got = results("good")
    not_passed = {k: (r.status, r.message) for k, r in got.items() if r.status != Status.PASSED}
    assert not_passed == {}
    assert all(not r.impacted for r in got.values())


# (fixture, check, impacted resources); each one fails exactly those resources
FAILURES: list[tuple[str, str, set[Resource]]] = [
    ("old-apis", "helm-chart-v3", {Resource("Chart", None, "old-apis")}),
    ("lint-broken", "helm-lint", {Resource("Chart", None, "lint-broken")}),
    (
        "old-apis",
        "k8s-schema",
        {dep("typo"), Resource("HorizontalPodAutoscaler", NS, "old-hpa")},
    ),
    (
        "old-apis",
        "api-versions",
        {
            Resource("HorizontalPodAutoscaler", NS, "old-hpa"),
            Resource("FlowSchema", None, "deprecated-flow"),
            Resource("ResourceClass", None, "alpha-class"),
        },
    ),
    ("lifecycle", "dual-stack", {Resource("Service", NS, "single-stack")}),
    ("insecure", "privileged", {dep("insecure-app", "priv")}),
    ("insecure", "privilege-escalation", {dep("insecure-app", "escalate")}),
    ("insecure", "dangerous-capabilities", {dep("insecure-app", "caps")}),
    ("insecure", "non-root", {dep("insecure-app", "rootuser")}),
    ("insecure", "read-only-root-fs", {dep("insecure-app", "writable")}),
    ("insecure", "host-namespaces", {dep("hostnet")}),
    ("insecure", "sensitive-host-paths", {dep("insecure-app", "etc")}),
    ("insecure", "runtime-socket", {dep("insecure-app", "sock")}),
    ("insecure", "service-account", {dep("insecure-app"), dep("defaultsa")}),
    ("lifecycle", "liveness-probe", {dep("sloppy", "nolive")}),
    ("lifecycle", "readiness-probe", {dep("sloppy", "noready")}),
    ("lifecycle", "image-pinned", {dep("sloppy", "noready"), dep("sloppy", "untagged")}),
    ("lifecycle", "config-externalized", {dep("sloppy", "nolive")}),
    ("lifecycle", "hardcoded-ip", {dep("sloppy"), dep("sloppy", "noready")}),
    ("lifecycle", "recommended-labels", {dep("sloppy")}),
    ("lifecycle", "not-default-namespace", {Resource("ConfigMap", "default", "leftover")}),
    ("lifecycle", "resources", {dep("sloppy", "untagged")}),
    ("lifecycle", "pod-disruption-budget", {dep("sloppy")}),
    ("lifecycle", "pod-anti-affinity", {dep("sloppy")}),
    ("insecure", "hardware-hostpath", {dep("insecure-app", "vfio")}),
    ("insecure", "device-plugin-resources", {dep("insecure-app", "huge")}),
    ("lifecycle", "device-plugin-resources", {dep("sloppy"), dep("sloppy", "untagged")}),
]


def test_every_static_check_has_a_failing_fixture() -> None:
    assert {check for _, check, _ in FAILURES} == set(STATIC_CHECK_IDS)


@pytest.mark.parametrize(("chart", "check_id", "impacted"), FAILURES)
def test_fixture_fails_check_on_its_resources(
    chart: str, check_id: str, impacted: set[Resource]
) -> None:
    result = results(chart)[check_id]
    assert result.status is Status.FAILED, result.message
    assert set(result.impacted) == impacted
    assert len(result.evidence) >= len(impacted)
    assert result.to_record()["remediation"]


def test_evidence_names_the_problem() -> None:
    lifecycle = results("lifecycle")
    assert any("192.168.7.9" in e for e in lifecycle["hardcoded-ip"].evidence)
    assert any("10.20.30.40" in e for e in lifecycle["hardcoded-ip"].evidence)
    assert not any("0.0.0.0" in e for e in lifecycle["hardcoded-ip"].evidence)
    assert any("intel.com/sriov_a" in e for e in lifecycle["device-plugin-resources"].evidence)
    old = results("old-apis")
    schema = "\n".join(old["k8s-schema"].evidence)
    assert "'replica' was unexpected" in schema
    assert "old-apis/templates/objects.yaml" in schema  # the template each object came from
    apis = "\n".join(old["api-versions"].evidence)
    assert "removed in 1.26 (use autoscaling/v2)" in apis
    assert "deprecated since 1.29" in apis
    assert "alpha API" in apis
    sa = "\n".join(results("insecure")["service-account"].evidence)
    assert "cluster-admin" in sa and "default service account" in sa


def test_api_versions_depend_on_the_target_release() -> None:
    before = api_status("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema", "1.28")
    after = api_status("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema", "1.32")
    assert before is not None and before.problems == ["beta API"]
    assert after is not None and after.removed_in == "1.32"
    assert api_status("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition", "1.30") is None
    stable = api_status("apps/v1", "Deployment", "1.30")
    assert stable is not None and stable.problems == []


def test_k8s_schema_against_older_release_refuses_newer_api() -> None:
    docs = parse_documents(
        "apiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n"
        "spec: {scaleTargetRef: {kind: Deployment, name: d}, maxReplicas: 2}\n",
        "hpa.yaml",
        NS,
    )
    art = Artifacts("hpa", Path("hpa.yaml"), NS, tuple(docs))
    old = {r.id: r for r in run_static_checks(art, k8s_version="1.25", only=["k8s-schema"])}
    new = {r.id: r for r in run_static_checks(art, k8s_version="1.26", only=["k8s-schema"])}
    assert old["k8s-schema"].status is Status.PASSED
    assert new["k8s-schema"].status is Status.FAILED


def test_dual_stack_is_skipped_unless_required() -> None:
    result = results("lifecycle", dual_stack=False)["dual-stack"]
    assert result.status is Status.SKIPPED
    assert "does not require" in result.message


def test_helm_checks_skip_plain_manifests_and_run_the_rest(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(
        (CHARTS / "suite-config" / "manifests" / "sidecar.yaml").read_text()
    )
    got = {r.id: r for r in run_static_checks(load_target(tmp_path, namespace=NS))}
    assert got["helm-chart-v3"].status is Status.SKIPPED
    assert got["helm-lint"].status is Status.SKIPPED
    assert got["host-namespaces"].impacted == (dep("sidecar"),)
    assert got["image-pinned"].status is Status.PASSED  # pinned by digest


def test_cnf_testsuite_config_renders_every_deployment() -> None:
    art = load_target(CHARTS / "suite-config" / "cnf-testsuite.yml")
    assert art.namespace == "cnf-edge"
    names = {(m.kind, m.name) for m in art.manifests}
    assert ("Deployment", "edge-router") in names  # helm_dirs entry, release "edge"
    assert ("Deployment", "sidecar") in names  # manifests entry
    router = next(m for m in art.of_kind("Deployment") if m.name == "edge-router")
    assert router.doc["spec"]["replicas"] == 3  # helm_values --set replicas=3
    got = {r.id: r for r in run_static_checks(art)}
    assert got["host-namespaces"].impacted == (Resource("Deployment", "cnf-edge", "sidecar"),)
    assert got["helm-chart-v3"].status is Status.PASSED


def test_bad_inputs_name_the_file_and_place(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n")
    with pytest.raises(InputError, match=r"bad\.yaml:\d+: not valid YAML"):
        load_target(bad)
    old = tmp_path / "cnf-testsuite.yml"
    old.write_text("helm_directory: chart\n")
    with pytest.raises(InputError, match=r"config_version: 'v1' is not supported"):
        load_target(old)
    flags = tmp_path / "flags" / "cnf-testsuite.yml"
    flags.parent.mkdir()
    flags.write_text(
        "config_version: v2\ndeployments:\n  helm_dirs:\n    - name: x\n"
        f"      helm_directory: {CHARTS / 'good'}\n      helm_values: --post-renderer evil\n"
    )
    with pytest.raises(InputError, match=r"deployments\.helm_dirs\[0\]: helm_values"):
        load_target(flags)
    chart = tmp_path / "broken"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: broken\nversion: 0.1.0\n")
    (chart / "templates" / "x.yaml").write_text("{{ .Values.missing.field }}\n")
    with pytest.raises(InputError, match=r"helm template failed: .*broken/templates/x\.yaml"):
        load_target(chart)
    with pytest.raises(InputError, match="no such file"):
        load_target(tmp_path / "absent")


def test_ip_and_image_helpers() -> None:
    assert hardcoded_ips("--peer=10.0.0.1 --bind 0.0.0.0 --lo 127.0.0.1") == ["10.0.0.1"]
    assert hardcoded_ips("upstream [2001:db8::7]:53 and ::1") == ["2001:db8::7"]
    assert hardcoded_ips("version 1.2.3 and 10.9.8.7", allowed=["10.0.0.0/8"]) == []
    assert image_reference_problem("reg:5000/app") is not None  # a port is not a tag
    assert image_reference_problem("reg:5000/app:1.0") is None
    assert image_reference_problem("app@sha256:" + "0" * 64) is None


def test_results_stored_as_journal_records_and_checks_json(tmp_path: Path) -> None:
    import json

    from bench.checks import checks_document, records
    from bench.schemas import validate, validate_run_dir
    from bench.store import RunStore

    got = run_static_checks(artifacts("insecure"))
    store = RunStore.create(tmp_path, "run-1", {"profiles": {}})
    for record in records(got):
        store.append("check", **record)
    target = store.write_json("checks.json", checks_document(got, run_id="run-1"))
    store.close()

    assert validate_run_dir(store.directory) == len(got)
    document = json.loads(target.read_text())
    validate("checks", document, str(target))
    assert document["summary"]["essential_failed"] == sorted(
        r.id for r in got if r.check.weight.value == "essential" and r.status is Status.FAILED
    )
    journal = [r for r in store.records() if r["type"] == "check"]
    assert [r["id"] for r in journal] == [r.id for r in got]
    privileged = next(r for r in journal if r["id"] == "privileged")
    assert privileged["impacted"][0]["container"] == "priv"
