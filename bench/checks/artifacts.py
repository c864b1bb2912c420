"""The CNF's artifacts as the checks see them: rendered manifests and chart metadata.

A target is a Helm chart directory (rendered with the real ``helm template``), a
directory or file of manifests, a CNF profile (which names one of those), or a CNCF
suite ``cnf-testsuite.yml`` (config v2: ``deployments`` with ``helm_charts``,
``helm_dirs`` and ``manifests``).  Every rendered document remembers the file it came
from so that results can point at it.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.checks.registry import Resource
from bench.errors import InputError
from bench.profiles import CnfProfile, load_profile

log = logging.getLogger(__name__)

HELM_TIMEOUT_S = 120.0
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
TESTSUITE_NAMES = ("cnf-testsuite.yml", "cnf-testsuite.yaml")
TESTSUITE_DEFAULT_NAMESPACE = "cnf-default"  # the CNCF suite's default
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "CSIDriver",
        "CSINode",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "DeviceClass",
        "FlowSchema",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PodSecurityPolicy",
        "PriorityClass",
        "PriorityLevelConfiguration",
        "ResourceClass",
        "RuntimeClass",
        "StorageClass",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
    }
)


@dataclass(frozen=True)
class Manifest:
    """One Kubernetes object from the artifacts, with the file it was rendered from."""

    doc: Mapping[str, Any]
    source: str
    default_namespace: str

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.doc.get("apiVersion", ""))

    @property
    def metadata(self) -> Mapping[str, Any]:
        meta = self.doc.get("metadata")
        return meta if isinstance(meta, Mapping) else {}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def cluster_scoped(self) -> bool:
        return self.kind in CLUSTER_SCOPED_KINDS

    @property
    def namespace(self) -> str | None:
        if self.cluster_scoped:
            return None
        return str(self.metadata.get("namespace") or self.default_namespace)

    def resource(self, container: str | None = None) -> Resource:
        return Resource(self.kind, self.namespace, self.name, container)


@dataclass(frozen=True)
class PodTemplate:
    """The pod spec of a workload (or of a bare Pod) and the labels its pods carry."""

    owner: Manifest
    spec: Mapping[str, Any]
    labels: Mapping[str, str]
    annotations: Mapping[str, str]

    def containers(self) -> Iterator[Mapping[str, Any]]:
        """Init containers, then containers."""
        for key in ("initContainers", "containers"):
            for container in self.spec.get(key) or ():
                if isinstance(container, Mapping):
                    yield container

    def volumes(self) -> dict[str, Mapping[str, Any]]:
        return {
            str(v.get("name")): v for v in self.spec.get("volumes") or () if isinstance(v, Mapping)
        }

    def resource(self, container: Mapping[str, Any] | None = None) -> Resource:
        return self.owner.resource(str(container.get("name")) if container else None)


@dataclass(frozen=True)
class ChartInfo:
    """A Helm chart that was rendered, with its Chart.yaml and the helm arguments used."""

    directory: Path
    metadata: Mapping[str, Any]
    release: str
    namespace: str
    helm_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Artifacts:
    name: str
    origin: Path
    namespace: str
    manifests: tuple[Manifest, ...]
    charts: tuple[ChartInfo, ...] = ()
    k8s_version: str | None = None
    notes: tuple[str, ...] = field(default=())

    def of_kind(self, *kinds: str) -> list[Manifest]:
        return [m for m in self.manifests if m.kind in kinds]

    def pod_templates(self) -> list[PodTemplate]:
        out = []
        for m in self.manifests:
            template = pod_template(m)
            if template is not None:
                out.append(template)
        return out


def pod_template(m: Manifest) -> PodTemplate | None:
    spec = m.doc.get("spec")
    if not isinstance(spec, Mapping):
        return None
    if m.kind == "Pod":
        return PodTemplate(m, spec, _strmap(m.metadata.get("labels")), _strmap(None))
    if m.kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    elif m.kind not in POD_TEMPLATE_KINDS:
        return None
    template = spec.get("template")
    if not isinstance(template, Mapping):
        return None
    meta = template.get("metadata") or {}
    pod_spec = template.get("spec") or {}
    return PodTemplate(m, pod_spec, _strmap(meta.get("labels")), _strmap(meta.get("annotations")))


def _strmap(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items()}


# --- parsing ---------------------------------------------------------------------------


def parse_documents(text: str, source: str, namespace: str) -> list[Manifest]:
    """Documents of a YAML stream; helm's ``# Source:`` comments name each one's file."""
    out: list[Manifest] = []
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or exc
        raise InputError(f"{source}:{line}: not valid YAML: {problem}") from exc
    sources = _helm_sources(text)
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        where = sources[index] if index < len(sources) and sources[index] else source
        if not isinstance(doc, Mapping) or "kind" not in doc or "apiVersion" not in doc:
            raise InputError(f"{where}: document {index + 1}: not a Kubernetes object")
        if doc["kind"] == "List":
            for item in doc.get("items") or ():
                out.append(Manifest(item, where, namespace))
            continue
        out.append(Manifest(doc, where, namespace))
    return out


def _helm_sources(text: str) -> list[str]:
    """The ``# Source: chart/templates/x.yaml`` comment of each document, in order."""
    sources: list[str] = []
    current = ""
    for line in text.splitlines():
        if line.startswith("---"):
            sources.append(current)
            current = ""
        elif line.startswith("# Source: "):
            current = line.removeprefix("# Source: ").strip()
    sources.append(current)
    # a stream that begins with '---' has an empty first document
    return sources[1:] if text.lstrip().startswith("---") else sources


# --- helm ------------------------------------------------------------------------------


def helm_binary() -> str:
    path = shutil.which("helm")
    if path is None:
        raise InputError("helm is not on PATH; install helm v3 (tools/install-helm does)")
    return path


def run_helm(
    args: Sequence[str], timeout_s: float = HELM_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    cmd = [helm_binary(), *args]
    log.debug("running %s", shlex.join(cmd))
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InputError(f"{shlex.join(cmd)}: no answer within {timeout_s:g} s") from exc


def read_chart_yaml(chart_dir: Path) -> dict[str, Any]:
    path = chart_dir / "Chart.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"{chart_dir}: no Chart.yaml; is this a Helm chart directory?") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: (top): Chart.yaml must be a mapping")
    return data


_ALLOWED_HELM_FLAGS = ("--set", "--set-string", "--set-json", "--values", "-f", "--set-file")


def _checked_helm_args(args: Sequence[str], where: str) -> tuple[str, ...]:
    """Only value-setting flags pass through to helm from a configuration file."""
    for arg in args:
        if arg.startswith("-") and arg.split("=", 1)[0] not in _ALLOWED_HELM_FLAGS:
            raise InputError(
                f"{where}: helm_values: {arg!r} is not a value flag "
                f"(allowed: {', '.join(_ALLOWED_HELM_FLAGS)})"
            )
    return tuple(args)


def render_chart(
    chart: Path | str,
    *,
    release: str,
    namespace: str,
    values: Mapping[str, Any] | None = None,
    helm_args: Sequence[str] = (),
    k8s_version: str | None = None,
    repo_url: str | None = None,
) -> tuple[ChartInfo | None, list[Manifest]]:
    """Render a chart with ``helm template``; a chart from a repo has no local Chart.yaml."""
    local = Path(chart)
    info = None
    if repo_url is None:
        local = local.resolve()
        info = ChartInfo(local, read_chart_yaml(local), release, namespace, tuple(helm_args))
    with tempfile.TemporaryDirectory(prefix="cnfbench-helm-") as tmp:
        args = ["template", release, str(local if repo_url is None else chart)]
        args += ["--namespace", namespace]
        if repo_url is not None:
            args += ["--repo", repo_url]
        if k8s_version:
            args += ["--kube-version", _full_version(k8s_version)]
        if values:
            values_file = Path(tmp) / "values.yaml"
            values_file.write_text(yaml.safe_dump(dict(values)), encoding="utf-8")
            args += ["--values", str(values_file)]
        args += list(helm_args)
        proc = run_helm(args)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        errors = [ln.removeprefix("Error: ") for ln in lines if ln.startswith("Error:")]
        why = (errors or lines or [f"exit status {proc.returncode}"])[0]
        raise InputError(f"{chart}: helm template failed: {why}")
    return info, parse_documents(proc.stdout, str(chart), namespace)


def _full_version(version: str) -> str:
    parts = version.removeprefix("v").split(".")
    while len(parts) < 3:
        parts.append("0")
    return "v" + ".".join(parts[:3])


# --- manifests -------------------------------------------------------------------------


def read_manifests(path: Path, namespace: str) -> list[Manifest]:
    """Every object in a manifest file, or in the files of a directory (recursively)."""
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in MANIFEST_SUFFIXES)
    else:
        raise InputError(f"{path}: no such file or directory")
    out: list[Manifest] = []
    for file in files:
        out.extend(parse_documents(file.read_text(encoding="utf-8"), str(file), namespace))
    if not out:
        raise InputError(f"{path}: no Kubernetes manifests found")
    return out


# --- targets ---------------------------------------------------------------------------


def load_target(
    target: Path | str,
    *,
    namespace: str | None = None,
    k8s_version: str | None = None,
    release: str | None = None,
) -> Artifacts:
    """The artifacts of a chart dir, manifest dir/file, CNF profile or cnf-testsuite.yml."""
    path = Path(target)
    if path.is_dir() and (path / "Chart.yaml").is_file():
        ns = namespace or "cnf"
        info, manifests = render_chart(
            path, release=release or path.resolve().name, namespace=ns, k8s_version=k8s_version
        )
        assert info is not None
        return Artifacts(info.metadata.get("name", path.name), path, ns, tuple(manifests), (info,))
    if path.is_dir():
        for name in TESTSUITE_NAMES:
            if (path / name).is_file():
                return load_testsuite_config(path / name, k8s_version=k8s_version)
        ns = namespace or "cnf"
        return Artifacts(path.name, path, ns, tuple(read_manifests(path, ns)))
    if not path.is_file():
        raise InputError(f"{path}: no such file or directory")
    if path.name in TESTSUITE_NAMES:
        return load_testsuite_config(path, k8s_version=k8s_version)
    head = _peek_yaml(path)
    if isinstance(head, Mapping) and head.get("kind") == "cnf" and "apiVersion" not in head:
        return load_cnf_profile(path, k8s_version=k8s_version)
    if isinstance(head, Mapping) and "deployments" in head and "apiVersion" not in head:
        return load_testsuite_config(path, k8s_version=k8s_version)
    ns = namespace or "cnf"
    return Artifacts(path.stem, path, ns, tuple(read_manifests(path, ns)))


def _peek_yaml(path: Path) -> Any:
    try:
        return next(iter(yaml.safe_load_all(path.read_text(encoding="utf-8"))), None)
    except yaml.YAMLError:
        return None  # not one YAML document; read_manifests reports it with its place


def load_cnf_profile(path: Path, *, k8s_version: str | None = None) -> Artifacts:
    loaded = load_profile(path, CnfProfile)
    cnf: CnfProfile = loaded.profile
    base = loaded.path.parent
    if cnf.chart is not None:
        chart = cnf.chart
        release = chart.release or cnf.name
        if chart.path is not None:
            chart_dir = (base / chart.path).resolve()
            info, manifests = render_chart(
                chart_dir,
                release=release,
                namespace=cnf.namespace,
                values=chart.values,
                k8s_version=k8s_version,
            )
        else:
            assert chart.name is not None
            info, manifests = render_chart(
                chart.name,
                release=release,
                namespace=cnf.namespace,
                values=chart.values,
                helm_args=("--version", chart.version or ""),
                k8s_version=k8s_version,
                repo_url=chart.repo,
            )
        charts = (info,) if info else ()
        return Artifacts(cnf.name, path, cnf.namespace, tuple(manifests), charts, k8s_version)
    assert cnf.manifests is not None
    target = (base / cnf.manifests).resolve()
    manifests = read_manifests(target, cnf.namespace)
    return Artifacts(cnf.name, path, cnf.namespace, tuple(manifests), (), k8s_version)


def load_testsuite_config(path: Path, *, k8s_version: str | None = None) -> Artifacts:
    """A CNCF suite config (v2): every deployment it lists, rendered together."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise InputError(f"{path}: (top): must be a mapping")
    version = str(data.get("config_version", "v1"))
    if version != "v2":
        raise InputError(
            f"{path}: config_version: {version!r} is not supported; convert it to v2 with "
            "the suite's update_config task"
        )
    deployments = data.get("deployments")
    if not isinstance(deployments, Mapping) or not any(deployments.values()):
        raise InputError(f"{path}: deployments: at least one deployment is needed")
    unknown = set(deployments) - {"helm_charts", "helm_dirs", "manifests"}
    if unknown:
        raise InputError(f"{path}: deployments.{sorted(unknown)[0]}: unknown deployment type")

    base = path.resolve().parent
    manifests: list[Manifest] = []
    charts: list[ChartInfo] = []
    namespaces: list[str] = []
    entries = _testsuite_entries(path, deployments)
    for where, kind, entry in sorted(entries, key=lambda e: int(e[2].get("priority", 0))):
        ns = str(entry.get("namespace") or TESTSUITE_DEFAULT_NAMESPACE)
        namespaces.append(ns)
        name = str(entry.get("name") or "")
        if not name:
            raise InputError(f"{path}: {where}.name: required field is missing")
        args = _checked_helm_args(shlex.split(str(entry.get("helm_values") or "")), where)
        if kind == "manifests":
            directory = _required(path, where, entry, "manifest_directory")
            manifests += read_manifests((base / directory).resolve(), ns)
        elif kind == "helm_dirs":
            directory = _required(path, where, entry, "helm_directory")
            info, docs = render_chart(
                (base / directory).resolve(),
                release=name,
                namespace=ns,
                helm_args=args,
                k8s_version=k8s_version,
            )
            assert info is not None
            charts.append(info)
            manifests += docs
        else:
            chart_name = _required(path, where, entry, "helm_chart_name")
            repo_url = entry.get("helm_repo_url")
            if "/" in chart_name and repo_url:
                chart_name = chart_name.split("/", 1)[1]
            _, docs = render_chart(
                chart_name,
                release=name,
                namespace=ns,
                helm_args=args,
                k8s_version=k8s_version,
                repo_url=str(repo_url) if repo_url else None,
            )
            manifests += docs
    name = path.resolve().parent.name
    return Artifacts(name, path, namespaces[0], tuple(manifests), tuple(charts), k8s_version)


def _testsuite_entries(
    path: Path, deployments: Mapping[str, Any]
) -> list[tuple[str, str, Mapping[str, Any]]]:
    out = []
    for kind, items in deployments.items():
        if items is None:
            continue
        if not isinstance(items, list):
            raise InputError(f"{path}: deployments.{kind}: must be a list")
        for i, entry in enumerate(items):
            where = f"deployments.{kind}[{i}]"
            if not isinstance(entry, Mapping):
                raise InputError(f"{path}: {where}: must be a mapping")
            out.append((where, str(kind), entry))
    return out


def _required(path: Path, where: str, entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    if not value:
        raise InputError(f"{path}: {where}.{key}: required field is missing")
    return str(value)
