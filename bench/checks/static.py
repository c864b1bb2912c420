"""Static checks: on the rendered chart or manifests, with no cluster.

Each check looks at every object of the artifacts and names the objects (and the
containers) that fail it.  The security checks follow the Kubernetes Pod Security
Standards (baseline and restricted profiles); the lifecycle checks follow the
recommendations of the Kubernetes documentation on probes, labels and disruptions.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import kubernetes_validate
from kubernetes_validate.utils import (
    InvalidSchemaError,
    SchemaNotFoundError,
    ValidationError,
    VersionNotSupportedError,
)

from bench.checks.artifacts import (
    Artifacts,
    Manifest,
    PodTemplate,
    run_helm,
)
from bench.checks.context import CheckContext
from bench.checks.k8sapi import api_status, is_builtin_group
from bench.checks.registry import (
    Category,
    Check,
    Need,
    Outcome,
    Resource,
    Weight,
    check,
    lookup,
    skipped,
    verdict,
)
from bench.errors import InputError

log = logging.getLogger(__name__)

ARTIFACTS = (Need.ARTIFACTS,)
Problems = dict[Resource, list[str]]

SCALABLE_KINDS = ("Deployment", "StatefulSet")


def _art(ctx: CheckContext) -> Artifacts:
    assert ctx.artifacts is not None  # run_check skips checks whose needs are missing
    return ctx.artifacts


def _problems() -> Problems:
    return defaultdict(list)


def _templates(ctx: CheckContext) -> list[PodTemplate]:
    return _art(ctx).pod_templates()


def _no_workloads(ctx: CheckContext) -> Outcome | None:
    if not _templates(ctx):
        return skipped("the artifacts define no workload with a pod template")
    return None


# --- compatibility ---------------------------------------------------------------------

_SEMVER = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


@check(
    "helm-chart-v3",
    title="Helm v3 chart with a version",
    category=Category.INSTALLABILITY_AND_UPGRADEABILITY,
    weight=Weight.ESSENTIAL,
    needs=ARTIFACTS,
    overview="The chart's Chart.yaml has apiVersion v2 (Helm 3) and a semantic version.",
    rationale="Helm 2 charts (apiVersion v1) need Tiller and cannot be installed by current "
    "Helm; a chart without a version cannot be pinned, upgraded or rolled back.",
    remediation="Set `apiVersion: v2` and a SemVer 2 `version:` in Chart.yaml; move "
    "requirements.yaml into Chart.yaml `dependencies`.",
)
def helm_chart_v3(ctx: CheckContext) -> Outcome:
    art = _art(ctx)
    if not art.charts:
        return skipped("the CNF is given as plain manifests, not as a Helm chart")
    problems = _problems()
    for chart in art.charts:
        meta = chart.metadata
        res = Resource("Chart", None, str(meta.get("name") or chart.directory.name))
        if meta.get("apiVersion") != "v2":
            problems[res].append(f"apiVersion is {meta.get('apiVersion')!r}, not 'v2'")
        version = meta.get("version")
        if not version:
            problems[res].append("no version")
        elif not _SEMVER.match(str(version)):
            problems[res].append(f"version {version!r} is not a semantic version")
    names = ", ".join(f"{c.metadata.get('name')} {c.metadata.get('version')}" for c in art.charts)
    return verdict(
        problems, f"Helm v3 chart(s): {names}", "the chart is not a versioned Helm v3 chart"
    )


@check(
    "helm-lint",
    title="helm lint passes",
    category=Category.INSTALLABILITY_AND_UPGRADEABILITY,
    weight=Weight.ESSENTIAL,
    needs=ARTIFACTS,
    overview="`helm lint` reports no error on the chart.",
    rationale="Lint errors are charts that render wrongly or not at all on some values.",
    remediation="Run `helm lint <chart>` and fix each [ERROR] it prints.",
)
def helm_lint(ctx: CheckContext) -> Outcome:
    art = _art(ctx)
    if not art.charts:
        return skipped("the CNF is given as plain manifests, not as a Helm chart")
    problems = _problems()
    evidence = []
    for chart in art.charts:
        args = ["lint", str(chart.directory), "--namespace", chart.namespace, *chart.helm_args]
        proc = run_helm(args)
        res = Resource("Chart", None, str(chart.metadata.get("name") or chart.directory.name))
        lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        flagged = [ln for ln in lines if ln.startswith("[ERROR]")]
        evidence += [ln for ln in lines if ln.startswith(("[WARNING]", "[INFO]"))]
        if proc.returncode != 0:
            problems[res].extend(flagged or lines[-1:] or [f"helm lint exited {proc.returncode}"])
    return verdict(problems, "helm lint: no errors", "helm lint found errors", evidence)


@check(
    "k8s-schema",
    title="Manifests validate against the target Kubernetes version",
    category=Category.COMPATIBILITY,
    weight=Weight.ESSENTIAL,
    needs=ARTIFACTS,
    overview="Every rendered object validates, strictly (no unknown fields), against the "
    "OpenAPI schemas of the target Kubernetes version.",
    rationale="Objects that do not validate are rejected by the API server or, worse, lose "
    "the fields it does not know, so the CNF runs differently from what its chart says.",
    remediation="Fix the field named in the evidence; move to an API version the target "
    "release serves.",
)
def k8s_schema(ctx: CheckContext) -> Outcome:
    art = _art(ctx)
    problems = _problems()
    evidence = []
    for m in art.manifests:
        try:
            kubernetes_validate.validate(dict(m.doc), ctx.k8s_version, strict=True)
        except ValidationError as exc:
            path = ".".join(str(p) for p in exc.path) or "(top)"
            problems[m.resource()].append(f"{m.source}: {path}: {exc.message}")
        except SchemaNotFoundError:
            if is_builtin_group(m.api_version):
                problems[m.resource()].append(
                    f"{m.source}: {m.api_version} {m.kind} is not served by Kubernetes "
                    f"{ctx.k8s_version}"
                )
            else:
                evidence.append(f"{m.resource()}: custom resource {m.api_version}, no schema")
        except VersionNotSupportedError as exc:
            raise InputError(
                f"Kubernetes {ctx.k8s_version}: no schemas for this version "
                f"(kubernetes-validate supports {kubernetes_validate.utils.all_versions()[0]}"
                f" to {kubernetes_validate.utils.latest_version()})"
            ) from exc
        except InvalidSchemaError as exc:
            raise InputError(f"kubernetes-validate: {exc.message}") from exc
    ok = f"{len(art.manifests)} objects validate against Kubernetes {ctx.k8s_version}"
    return verdict(problems, ok, f"objects do not validate against {ctx.k8s_version}", evidence)


@check(
    "api-versions",
    title="No alpha, beta, deprecated or removed API versions",
    category=Category.COMPATIBILITY,
    weight=Weight.NORMAL,
    needs=ARTIFACTS,
    overview="Every object uses a stable API version that the target release serves and "
    "has not deprecated.",
    rationale="Alpha and beta APIs change or vanish between releases; deprecated ones are "
    "scheduled for removal, and a removed one makes the install fail.",
    remediation="Move each object to the replacement API version named in the evidence.",
)
def api_versions(ctx: CheckContext) -> Outcome:
    problems = _problems()
    for m in _art(ctx).manifests:
        status = api_status(m.api_version, m.kind, ctx.k8s_version)
        if status is not None:
            for problem in status.problems:
                problems[m.resource()].append(f"{m.api_version} {m.kind}: {problem}")
    return verdict(
        problems,
        f"every object uses a stable API served by Kubernetes {ctx.k8s_version}",
        f"objects use unstable, deprecated or removed APIs for {ctx.k8s_version}",
    )


@check(
    "dual-stack",
    title="Services are dual stack",
    category=Category.COMPATIBILITY,
    weight=Weight.NORMAL,
    needs=ARTIFACTS,
    overview="Every Service asks for both IPv4 and IPv6 (ipFamilyPolicy PreferDualStack or "
    "RequireDualStack and ipFamilies IPv4 and IPv6), when the profile requires dual stack.",
    rationale="Operators running dual-stack networks need the CNF's services reachable on "
    "both families; a single-stack Service silently drops one of them.",
    remediation="Set `ipFamilyPolicy: PreferDualStack` and `ipFamilies: [IPv4, IPv6]` on "
    "each Service.",
)
def dual_stack(ctx: CheckContext) -> Outcome:
    if not ctx.require_dual_stack:
        return skipped("the profile does not require dual stack")
    services = _art(ctx).of_kind("Service")
    if not services:
        return skipped("the artifacts define no Service")
    problems = _problems()
    for svc in services:
        spec = svc.doc.get("spec") or {}
        policy = spec.get("ipFamilyPolicy", "SingleStack")
        families = set(spec.get("ipFamilies") or ())
        if policy not in ("PreferDualStack", "RequireDualStack"):
            problems[svc.resource()].append(f"ipFamilyPolicy is {policy}")
        if families != {"IPv4", "IPv6"}:
            problems[svc.resource()].append(
                f"ipFamilies are {sorted(families) or 'unset'}, not IPv4 and IPv6"
            )
    return verdict(problems, f"{len(services)} dual-stack Services", "Services are single stack")


# --- security --------------------------------------------------------------------------


def _security(template: PodTemplate, container: Mapping[str, Any], key: str) -> Any:
    """A container's security setting, falling back to the pod's (as the kubelet does)."""
    own = container.get("securityContext") or {}
    if key in own:
        return own[key]
    return (template.spec.get("securityContext") or {}).get(key)


def _each_container(ctx: CheckContext) -> Iterator[tuple[PodTemplate, Mapping[str, Any]]]:
    for template in _templates(ctx):
        for container in template.containers():
            yield template, container


@check(
    "privileged",
    title="No privileged containers",
    category=Category.SECURITY,
    weight=Weight.ESSENTIAL,
    needs=ARTIFACTS,
    overview="No container sets securityContext.privileged.",
    rationale="A privileged container has every capability and every host device: it can "
    "take the node over.  Data-plane access belongs to device plugins (SR-IOV, hugepages).",
    remediation="Remove `privileged: true`; request the devices through their device plugin "
    "and add only the capabilities the process needs.",
)
def privileged(ctx: CheckContext) -> Outcome:
    if (none := _no_workloads(ctx)) is not None:
        return none
    problems = _problems()
    for template, container in _each_container(ctx):
        if (container.get("securityContext") or {}).get("privileged") is True:
            problems[template.resource(container)].append("securityContext.privileged: true")
    return verdict(problems, "no privileged containers", "privileged containers")


@check(
    "privilege-escalation",
    title="No privilege escalation",
    category=Category.SECURITY,
    weight=Weight.NORMAL,
    needs=ARTIFACTS,
    overview="Every container sets allowPrivilegeEscalation: false.",
    rationale="Without it a process can gain more privileges than its parent (setuid "
    "binaries); the default is to allow it.",
    remediation="Set `securityContext.allowPrivilegeEscalation: false` on each container.",
)
def privilege_escalation(ctx: CheckContext) -> Outcome:
    if (none := _no_workloads(ctx)) is not None:
        return none
    problems = _problems()
    for template, container in _each_container(ctx):
        value = (container.get("securityContext") or {}).get("allowPrivilegeEscalation")
        if value is not False:
            shown = "unset (defaults to true)" if value is None else value
            problems[template.resource(container)].append(f"allowPrivilegeEscalation: {shown}")
    return verdict(
        problems, "no container may escalate privileges", "privilege escalation allowed"
    )


# Capabilities that give a container power over the node or the kernel.  NET_ADMIN,
# NET_RAW and IPC_LOCK stay allowed: a data-plane process needs them inside its own
# network namespace (interface setup, raw sockets, locking hugepage memory).
DANGEROUS_CAPABILITIES = frozenset(
    {
        "ALL",
        "SYS_ADMIN",
        "SYS_MODULE",
        "SYS_PTRACE",
        "SYS_RAWIO",
        "SYS_BOOT",
        "SYS_TIME",
        "DAC_READ_SEARCH",
        "BPF",
        "PERFMON",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
    }
)


@check(
    "dangerous-capabilities",
    title="No dangerous capabilities added",
    category=Category.SECURITY,
    weight=Weight.NORMAL,
    needs=ARTIFACTS,
    overview="No container adds ALL, SYS_ADMIN, SYS_MODULE, SYS_PTRACE, SYS_RAWIO, BPF or "
    "another capability that reaches past the pod.",
    rationale="These capabilities let a process load kernel modules, read other processes' "
    "memory or reconfigure the node.",
    remediation="Drop the capability; a DPDK data plane needs at most IPC_LOCK, NET_ADMIN "
    "and NET_RAW, and its devices from a device plugin.",
)
def dangerous_capabilities(ctx: CheckContext) -> Outcome:
    if (none := _no_workloads(ctx)) is not None:
        return none
    problems = _problems()
    for template, container in _each_container(ctx):
        caps = ((container.get("securityContext") or {}).get("capabilities") or {}).get("add")
        for cap in caps or ():
            name = str(cap).upper().removeprefix("CAP_")
            if name in DANGEROUS_CAPABILITIES:
                problems[template.resource(container)].append(f"adds capability {name}")
    return verdict(problems, "no dangerous capabilities added", "dangerous capabilities added")


@check(
    "non-root",
    title="Runs as non-root",
    category=Category.SECURITY,
    weight=Weight.NORMAL,
    needs=ARTIFACTS,
    overview="Every container runs with runAsNonRoot: true or a non-zero runAsUser "
    "(its own or its pod's).",
    rationale="A process running as root in the container is root on the node after any "
    "container escape.",
    remediation="Set `runAsNonRoot: true` and `runAsUser` to an unprivileged uid in the "
    "pod's securityContext; give the process its capabilities instead of root.",
)
def non_root(ctx: CheckContext) -> Outcome:
    if (none := _no_workloads(ctx)) is not None:
        return none
    problems = _problems()
    for template, container in _each_container(ctx):
        user = _security(template, container, "runAsUser")
        non_root_flag = _security(template, container, "runAsNonRoot")
        if user == 0:
            problems[template.resource(container)].append("runAsUser: 0")
        elif non_root_flag is not True and not (isinstance(user, int) and user > 0):
            problems[template.resource(container)].append("neither runAsNonRoot nor runAsUser")
    return verdict(problems, "every container runs as non-root", "containers may run as root")


@check(
    "read-only-root-fs",
    title="Read-only root filesystem",
    category=Category.SECURITY,
    weight=Weight.BONUS,
    needs=ARTIFACTS,
    overview="Every container sets readOnlyRootFilesystem: true.",
    rationale="A writable image lets an intruder persist changes and makes replicas drift "
    "apart; state belongs in volumes.",
    remediation="Set `securityContext.readOnlyRootFilesystem: true` and mount emptyDir "
    "volumes where the process writes.",
)
def read_only_root_fs(ctx: CheckContext) -> Outcome:
    if (none := _no_workloads(ctx)) is not None:
        return none
    problems = _problems()
    for template, container in _each_container(ctx):
        if (container.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True:
            problems[template.resource(container)].append("readOnlyRootFilesystem is not true")
    return verdict(problems, "every root filesystem is read-only", "writable root filesystems")


@check(
    "host-namespaces",
    title="No host network, PID or IPC",
    category=Category.SECURITY,
    weight=Weight.ESSENTIAL,
    needs=ARTIFACTS,
    overview="No pod sets hostNetwork, hostPID or hostIPC.",
    rationale="Sharing the node's namespaces exposes every host interface, process and "
    "shared memory segment to the pod, and ties the CNF to one node's ports.",
    remediation="Remove hostNetwork/hostPID/hostIPC; attach data-plane interfaces with "
    "Multus and SR-IOV.",
)
def host_namespaces(ctx: CheckContext) -> Outcome:
    if (none := _no_workloads(ctx)) is not None:
        return none
    problems = _problems()
    for template in _templates(ctx):
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if template.spec.get(key) is True:
                problems[template.resource()].append(f"{key}: true")
    return verdict(problems, "no pod shares the host's namespaces", "pods share host namespaces")


def _host_path_mounts(
    ctx: CheckContext,
) -> Iterator[tuple[PodTemplate, Mapping[str, Any] | None, str]]:
    """(template, mounting container or None, host path) for every hostPath volume."""
    for template in _templates(ctx):
        for name, volume in template.volumes().items():
            host = volume.get("hostPath")
            if not isinstance(host, Mapping):
                continue
            path = str(host.get("path", "")).rstrip("/") or "/"
            users: list[Mapping[str, Any] | None] = [
                c
                for c in template.containers()
                if any(vm.get("name") == name for vm in c.get("volumeMounts") or ())
            ]
            for container in users or [None]:
                yield template, container, path


def _under(path: str, roots: Iterable[str]) -> str | None:
    for root in roots:
        if path == root or path.startswith(root.rstrip("/") + "/"):
            return root
    return None


SENSITIVE_HOST_PATHS = (
    "/etc",
    "/root",
    "/home",
    "/boot",
    "/var/lib/kubelet",
    "/var/lib/etcd",
    "/var/lib/docker",
    "/var/lib/containerd",
)
RUNTIME_SOCKET = re.compile(r"(docker|containerd|crio|cri-dockerd|podman)\.sock$")
RUNTIME_DIRS = ("/var/run", "/run", "/var/run/docker", "/run/containerd", "/var/run/crio")
HARDWARE_HOST_PATHS = ("/dev", "/sys", "/proc")


@check(
    "sensitive-host-paths",
    title="No sensitive host paths mounted",
    category=Category.SECURITY,
    weight=Weight.ESSENTIAL,
    needs=ARTIFACTS,
    overview="No hostPath volume mounts the host's root, /etc, /root, /home, /boot or the "
    "kubelet's and container runtime's state.",
    rationale="These paths hold the node's credentials and configuration; mounting them "
    "hands the node to the pod.",
    remediation="Replace the hostPath with a ConfigMap, Secret, emptyDir or a CSI volume.",
)
def sensitive_host_paths(ctx: CheckContext) -> Outcome:
    if (none := _no_workloads(ctx)) is not None:
        return none
    problems = _problems()
    for template, container, path in _host_path_mounts(ctx):
        if path == "/" or _under(path, SENSITIVE_HOST_PATHS):
            problems[template.resource(container)].append(f"mounts host path {path}")
    return verdict(problems, "no sensitive host path is mounted", "sensitive host paths mounted")


@check(
    "runtime-socket",
    title="No container runtime socket mounted",
    category=Category.SECURITY,
    weight=Weight.ESSENTIAL,
    needs=ARTIFACTS,
    overview="No hostPath volume mounts docker.sock, containerd.sock, crio.sock or the "
    "runtime directories that hold them (/var/run, /run).",
    rationale="The runtime socket starts privileged containers on the node: whoever holds "
    "it is root on the node.",
    remediation="Remove the mount; talk to the Kubernetes API with a scoped service account "
    "instead.",
)
def runtime_socket(ctx: CheckContext) -> Outcome:
    if (none := _no_workloads(ctx)) is not None:
        return none
    problems = _problems()
    for template, container, path in _host_path_mounts(ctx):
        if RUNTIME_SOCKET.search(path) or path in RUNTIME_DIRS:
            problems[template.resource(container)].append(f"mounts runtime path {path}")
    return verdict(problems, "no runtime socket is mounted", "runtime sockets mounted")


@check(
    "service-account",
    title="Own service account without cluster-wide rights",
    category=Category.SECURITY,
    weight=Weight.NORMAL,
    needs=ARTIFACTS,
    overview="Every workload runs under its own service account (not `default`), and no "
    "ClusterRoleBinding in the artifacts grants that account cluster-wide rights.",
    rationale="The default account is shared by everything in the namespace; cluster-wide "
    "rights let a compromised CNF read or change other tenants' objects.",
    remediation="Create a ServiceAccount for the CNF, set `serviceAccountName`, and grant "
    "it a namespaced Role with only the verbs it needs.",
)
def service_account(ctx: CheckContext) -> Outcome:
    if (none := _no_workloads(ctx)) is not None:
        return none
    art = _art(ctx)
    cluster_bound: dict[tuple[str, str], str] = {}
    for binding in art.of_kind("ClusterRoleBinding"):
        role = (binding.doc.get("roleRef") or {}).get("name", "?")
        for subject in binding.doc.get("subjects") or ():
            if subject.get("kind") == "ServiceAccount":
                ns = str(subject.get("namespace") or art.namespace)
                cluster_bound[(ns, str(subject.get("name")))] = f"{binding.name} -> {role}"
    problems = _problems()
    for template in _templates(ctx):
        account = template.spec.get("serviceAccountName") or template.spec.get("serviceAccount")
        res = template.resource()
        if not account or account == "default":
            problems[res].append("runs under the namespace's default service account")
            account = "default"
        bound = cluster_bound.get((res.namespace or "", str(account)))
        if bound:
            problems[res].append(f"service account {account} has cluster-wide rights ({bound})")
    return verdict(problems, "own service accounts, namespaced rights", "service account issues")


# --- configuration and lifecycle -------------------------------------------------------


def _long_running(ctx: CheckContext) -> list[PodTemplate]:
    return [t for t in _templates(ctx) if t.owner.kind not in ("Job", "CronJob")]


def _probe_check(ctx: CheckContext, probe: str) -> Outcome:
    templates = _long_running(ctx)
    if not templates:
        return skipped("the artifacts define no long-running workload")
    problems = _problems()
    for template in templates:
        for container in template.spec.get("containers") or ():
            if not isinstance(container.get(probe), Mapping):
                problems[template.resource(container)].append(f"no {probe}")
    return verdict(problems, f"every container has a {probe}", f"containers without {probe}")


@check(
    "liveness-probe",
    title="Liveness probes",
    category=Category.CONFIGURATION_AND_LIFECYCLE,
    weight=Weight.ESSENTIAL,
    needs=ARTIFACTS,
    overview="Every container of a long-running workload defines a livenessProbe.",
    rationale="Without it a hung data plane keeps its pod and its share of the traffic; "
    "the kubelet restarts only what a probe reports dead.",
    remediation="Add a livenessProbe (exec, httpGet, tcpSocket or grpc) that fails when the "
    "forwarding loop is stuck.",
)
def liveness_probe(ctx: CheckContext) -> Outcome:
    return _probe_check(ctx, "livenessProbe")


@check(
    "readiness-probe",
    title="Readiness probes",
    category=Category.CONFIGURATION_AND_LIFECYCLE,
    weight=Weight.ESSENTIAL,
    needs=ARTIFACTS,
    overview="Every container of a long-running workload defines a readinessProbe.",
    rationale="Readiness decides when a new replica gets traffic; without it a replica "
    "receives flows before its data plane is up, and a rolling update drops them.",
    remediation="Add a readinessProbe that passes only once the data plane forwards.",
)
def readiness_probe(ctx: CheckContext) -> Outcome:
    return _probe_check(ctx, "readinessProbe")


def image_reference_problem(image: str) -> str | None:
    """Why an image reference is not pinned, or None when it has a version or digest."""
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image} has no tag (means latest)"
    tag = last.rsplit(":", 1)[1]
    if tag in ("latest", ""):
        return f"image {image} uses the tag {tag or '(empty)'}"
    return None


@check(
    "image-pinned",
    title="Images pinned by version or digest",
    category=Category.CONFIGURATION_AND_LIFECYCLE,
    weight=Weight.ESSENTIAL,
    needs=ARTIFACTS,
    overview="Every container image has a version tag or a digest; none uses `latest` or no tag.",
    rationale="A floating tag makes replicas run different code after a restart and makes "
    "results impossible to reproduce.",
    remediation="Reference each image by a release tag, ideally with its @sha256 digest.",
)
def image_pinned(ctx: CheckContext) -> Outcome:
    if (none := _no_workloads(ctx)) is not None:
        return none
    problems = _problems()
    for template, container in _each_container(ctx):
        why = image_reference_problem(str(container.get("image", "")))
        if why:
            problems[template.resource(container)].append(why)
    return verdict(problems, "every image is pinned", "images not pinned")


_CONFIG_FILE = re.compile(r"(/[\w.@-]+)+\.(conf|cfg|cnf|ini|yaml|yml|json|toml|xml|properties)$")


def _config_paths(container: Mapping[str, Any]) -> list[str]:
    out = []
    for arg in [*(container.get("command") or ()), *(container.get("args") or ())]:
        for token in re.split(r"[\s=]+", str(arg)):
            if _CONFIG_FILE.fullmatch(token):
                out.append(token)
    return out


@check(
    "config-externalized",
    title="Configuration from ConfigMaps and environment",
    category=Category.CONFIGURATION_AND_LIFECYCLE,
    weight=Weight.NORMAL,
    needs=ARTIFACTS,
    overview="Every configuration file a container's command names is mounted from a "
    "ConfigMap, Secret or projected volume, not baked into the image.",
    rationale="Configuration baked into the image cannot be changed per site or rolled "
    "back without a rebuild, and differs invisibly between image versions.",
    remediation="Ship the file in a ConfigMap mounted at that path, or pass the settings "
    "through environment variables.",
)
def config_externalized(ctx: CheckContext) -> Outcome:
    if (none := _no_workloads(ctx)) is not None:
        return none
    problems = _problems()
    evidence = []
    for template, container in _each_container(ctx):
        volumes = template.volumes()
        external = []
        for vm in container.get("volumeMounts") or ():
            volume = volumes.get(str(vm.get("name"))) or {}
            if any(k in volume for k in ("configMap", "secret", "projected")):
                external.append(str(vm.get("mountPath", "")).rstrip("/"))
        for path in _config_paths(container):
            if not any(path == m or path.startswith(m + "/") for m in external if m):
                problems[template.resource(container)].append(
                    f"reads {path}, which no ConfigMap or Secret provides"
                )
            else:
                evidence.append(f"{template.resource(container)}: {path} from a volume")
    return verdict(
        problems, "configuration comes from outside the image", "baked configuration", evidence
    )


_IPV4 = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?:/\d{1,2})?(?![\w.])")
_IPV6 = re.compile(r"(?<![\w:])([0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})(?:/\d{1,3})?(?![\w:])")


def hardcoded_ips(text: str, allowed: Iterable[str] = ()) -> list[str]:
    """IP addresses in `text` other than loopback, unspecified and the allowed networks."""
    nets = [ipaddress.ip_network(a, strict=False) for a in allowed]
    found = []
    for pattern in (_IPV4, _IPV6):
        for match in pattern.finditer(text):
            try:
                addr = ipaddress.ip_address(match.group(1))
            except ValueError:
                continue
            if addr.is_loopback or addr.is_unspecified or any(addr in n for n in nets):
                continue
            found.append(str(addr))
    return found


def _ip_sources(m: Manifest, template: PodTemplate | None) -> Iterator[tuple[str, str]]:
    """(where, text) pairs of the places an address would be hardcoded."""
    if template is not None:
        for key, value in template.annotations.items():
            yield f"annotation {key}", value
        for container in template.containers():
            name = container.get("name")
            for i, arg in enumerate(
                [*(container.get("command") or ()), *(container.get("args") or ())]
            ):
                yield f"container {name} command/args[{i}]", str(arg)
            for env in container.get("env") or ():
                if "value" in env:
                    yield f"container {name} env {env.get('name')}", str(env["value"])
    if m.kind == "Service":
        spec = m.doc.get("spec") or {}
        for key in ("clusterIP", "loadBalancerIP"):
            if spec.get(key) and spec.get(key) != "None":
                yield f"spec.{key}", str(spec[key])
        for key in ("clusterIPs", "externalIPs"):
            for value in spec.get(key) or ():
                yield f"spec.{key}", str(value)


@check(
    "hardcoded-ip",
    title="No hardcoded IP addresses",
    category=Category.CONFIGURATION_AND_LIFECYCLE,
    weight=Weight.NORMAL,
    needs=ARTIFACTS,
    overview="No container argument, environment value, pod annotation or Service spec "
    "holds a literal IP address.  Exceptions: loopback, unspecified (0.0.0.0, ::), the "
    "networks the profile allows, NetworkAttachmentDefinition IPAM ranges and ConfigMaps.",
    rationale="Addresses differ per site and per cluster; a hardcoded one breaks the CNF "
    "elsewhere and bypasses service discovery.",
    remediation="Use Service DNS names, downward API fields or values the operator sets; "
    "keep site addressing in a ConfigMap.",
)
def hardcoded_ip(ctx: CheckContext) -> Outcome:
    problems = _problems()
    for m in _art(ctx).manifests:
        template = next((t for t in _templates(ctx) if t.owner is m), None)
        for where, text in _ip_sources(m, template):
            for addr in hardcoded_ips(text, ctx.allowed_ips):
                container = where.split()[1] if where.startswith("container ") else None
                problems[m.resource(container)].append(f"{where}: {addr}")
    return verdict(problems, "no hardcoded IP addresses", "hardcoded IP addresses")


RECOMMENDED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
)


@check(
    "recommended-labels",
    title="Recommended labels",
    category=Category.CONFIGURATION_AND_LIFECYCLE,
    weight=Weight.BONUS,
    needs=ARTIFACTS,
    overview="Every workload carries app.kubernetes.io/name, instance and version, and its "
    "pods carry name and instance.",
    rationale="Tools (and this harness) find a CNF's objects and tell releases apart by "
    "these labels.",
    remediation="Add the app.kubernetes.io labels to the workload and its pod template.",
)
def recommended_labels(ctx: CheckContext) -> Outcome:
    if (none := _no_workloads(ctx)) is not None:
        return none
    problems = _problems()
    for template in _templates(ctx):
        labels = template.owner.metadata.get("labels") or {}
        for key in RECOMMENDED_LABELS:
            if key not in labels:
                problems[template.resource()].append(f"no label {key}")
        for key in RECOMMENDED_LABELS[:2]:
            if key not in template.labels:
                problems[template.resource()].append(f"pod template has no label {key}")
    return verdict(problems, "recommended labels present", "recommended labels missing")


@check(
    "not-default-namespace",
    title="Not deployed to the default namespace",
    category=Category.CONFIGURATION_AND_LIFECYCLE,
    weight=Weight.NORMAL,
    needs=ARTIFACTS,
    overview="No namespaced object goes to the `default` namespace.",
    rationale="`default` has no quotas, policies or isolation of its own and mixes the CNF "
    "with whatever else lands there.",
    remediation="Install into a namespace of its own (`--namespace`), and do not hardcode "
    "`namespace: default` in templates.",
)
def not_default_namespace(ctx: CheckContext) -> Outcome:
    problems = _problems()
    for m in _art(ctx).manifests:
        if m.namespace == "default":
            problems[m.resource()].append("in namespace default")
    return verdict(
        problems, "nothing in the default namespace", "objects in the default namespace"
    )


@check(
    "resources",
    title="Resources requested and limited",
    category=Category.CONFIGURATION_AND_LIFECYCLE,
    weight=Weight.NORMAL,
    needs=ARTIFACTS,
    overview="Every container requests and limits CPU and memory.",
    rationale="A data plane without requests lands on a full node and shares its cores; "
    "without limits it starves its neighbours.  Equal requests and limits give the "
    "Guaranteed class that CPU pinning needs.",
    remediation="Set resources.requests and resources.limits for cpu and memory.",
)
def resources(ctx: CheckContext) -> Outcome:
    if (none := _no_workloads(ctx)) is not None:
        return none
    problems = _problems()
    for template, container in _each_container(ctx):
        spec = container.get("resources") or {}
        for section in ("requests", "limits"):
            have = spec.get(section) or {}
            missing = [r for r in ("cpu", "memory") if r not in have]
            if missing and not (section == "requests" and _defaults_from_limits(spec, missing)):
                problems[template.resource(container)].append(
                    f"no {section} for {', '.join(missing)}"
                )
    return verdict(problems, "every container has requests and limits", "resources not set")


def _defaults_from_limits(spec: Mapping[str, Any], missing: list[str]) -> bool:
    """Kubernetes takes a missing request from the limit of the same resource."""
    limits = spec.get("limits") or {}
    return all(r in limits for r in missing)


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a label set."""
    if not selector:
        return False  # an empty PDB selector matches nothing in policy/v1 semantics here
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(str(key)) != str(value):
            return False
    for expr in selector.get("matchExpressions") or ():
        key, op = str(expr.get("key")), expr.get("operator")
        values = [str(v) for v in expr.get("values") or ()]
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _scalable(ctx: CheckContext) -> list[PodTemplate]:
    return [t for t in _templates(ctx) if t.owner.kind in SCALABLE_KINDS]


@check(
    "pod-disruption-budget",
    title="PodDisruptionBudget",
    category=Category.CONFIGURATION_AND_LIFECYCLE,
    weight=Weight.NORMAL,
    needs=ARTIFACTS,
    overview="Every Deployment and StatefulSet is covered by a PodDisruptionBudget whose "
    "selector matches its pods.",
    rationale="Without a budget a node drain may evict every replica at once and the "
    "traffic stops.",
    remediation="Add a policy/v1 PodDisruptionBudget with `maxUnavailable: 1` (or "
    "`minAvailable`) selecting the CNF's pods.",
)
def pod_disruption_budget(ctx: CheckContext) -> Outcome:
    workloads = _scalable(ctx)
    if not workloads:
        return skipped("the artifacts define no Deployment or StatefulSet")
    pdbs = _art(ctx).of_kind("PodDisruptionBudget")
    problems = _problems()
    evidence = []
    for template in workloads:
        res = template.resource()
        cover = [
            p
            for p in pdbs
            if p.namespace == res.namespace
            and selector_matches((p.doc.get("spec") or {}).get("selector") or {}, template.labels)
        ]
        if cover:
            evidence.append(f"{res}: covered by PodDisruptionBudget {cover[0].name}")
        else:
            problems[res].append("no PodDisruptionBudget selects its pods")
    return verdict(
        problems, "every workload has a disruption budget", "no disruption budget", evidence
    )


HOSTNAME_TOPOLOGY = "kubernetes.io/hostname"


def _spreads_replicas(template: PodTemplate) -> bool:
    affinity = (template.spec.get("affinity") or {}).get("podAntiAffinity") or {}
    terms = list(affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or ())
    terms += [
        t.get("podAffinityTerm") or {}
        for t in affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
    ]
    terms += list(template.spec.get("topologySpreadConstraints") or ())
    return any(
        t.get("topologyKey") == HOSTNAME_TOPOLOGY
        and selector_matches(t.get("labelSelector") or {}, template.labels)
        for t in terms
    )


@check(
    "pod-anti-affinity",
    title="Replicas spread across nodes",
    category=Category.HARDWARE_RESOURCES_AND_SCHEDULING,
    weight=Weight.NORMAL,
    needs=ARTIFACTS,
    overview="Every Deployment and StatefulSet has a pod anti-affinity or a topology spread "
    "constraint on kubernetes.io/hostname that selects its own pods.",
    rationale="Replicas on one node share its NIC and its fate: scaling out then adds no "
    "capacity and a node failure takes every replica.",
    remediation="Add podAntiAffinity (preferred or required) or topologySpreadConstraints "
    "with topologyKey kubernetes.io/hostname and the pods' own labels.",
)
def pod_anti_affinity(ctx: CheckContext) -> Outcome:
    workloads = _scalable(ctx)
    if not workloads:
        return skipped("the artifacts define no Deployment or StatefulSet")
    problems = _problems()
    for template in workloads:
        if not _spreads_replicas(template):
            problems[template.resource()].append(
                "no anti-affinity or spread constraint on kubernetes.io/hostname"
            )
    return verdict(problems, "replicas spread across nodes", "replicas may share a node")


# --- hardware --------------------------------------------------------------------------


@check(
    "hardware-hostpath",
    title="No /dev, /sys or /proc host mounts",
    category=Category.HARDWARE_RESOURCES_AND_SCHEDULING,
    weight=Weight.ESSENTIAL,
    needs=ARTIFACTS,
    overview="No hostPath volume mounts /dev, /sys or /proc (or a path below them) to reach "
    "NICs, VFIO devices or hugepages.",
    rationale="Hardware reached through host paths bypasses the scheduler's accounting: two "
    "pods grab the same VF, and the pod runs only on nodes laid out like the vendor's.",
    remediation="Request NIC VFs through the SR-IOV device plugin (for example "
    "intel.com/sriov_netdevice) and hugepages as hugepages-1Gi/2Mi resources.",
)
def hardware_hostpath(ctx: CheckContext) -> Outcome:
    if (none := _no_workloads(ctx)) is not None:
        return none
    problems = _problems()
    for template, container, path in _host_path_mounts(ctx):
        if _under(path, HARDWARE_HOST_PATHS):
            problems[template.resource(container)].append(f"mounts host path {path}")
    return verdict(problems, "hardware comes from device plugins", "hardware through host paths")


NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
RESOURCE_NAME_ANNOTATION = "k8s.v1.cni.cncf.io/resourceName"


def _network_names(value: str) -> list[str]:
    """Network names from a Multus networks annotation (comma list or JSON list)."""
    value = value.strip()
    if value.startswith("["):
        try:
            items = json.loads(value)
        except json.JSONDecodeError:
            return []
        return [str(i.get("name")) for i in items if isinstance(i, Mapping) and i.get("name")]
    names = []
    for item in value.split(","):
        name = item.strip().split("@", 1)[0]
        if name:
            names.append(name.rsplit("/", 1)[-1])
    return names


def _requested(container: Mapping[str, Any]) -> dict[str, str]:
    spec = container.get("resources") or {}
    out = {str(k): str(v) for k, v in (spec.get("requests") or {}).items()}
    out.update({str(k): str(v) for k, v in (spec.get("limits") or {}).items()})
    return out


@check(
    "device-plugin-resources",
    title="Hugepages and NIC VFs requested as resources",
    category=Category.HARDWARE_RESOURCES_AND_SCHEDULING,
    weight=Weight.NORMAL,
    needs=ARTIFACTS,
    overview="A pod that mounts hugepages requests hugepages-<size> with equal request and "
    "limit; a pod that attaches a network whose NetworkAttachmentDefinition names a device "
    "plugin resource requests that resource.",
    rationale="The scheduler places pods by the resources they request; hugepages or VFs "
    "used without being requested are double-booked on the node.",
    remediation="Add hugepages-1Gi (or 2Mi) and the SR-IOV resource (for example "
    "intel.com/sriov_netdevice) to the container's requests and limits.",
)
def device_plugin_resources(ctx: CheckContext) -> Outcome:
    if (none := _no_workloads(ctx)) is not None:
        return none
    art = _art(ctx)
    nad_resources = {
        (m.namespace, m.name): str(m.metadata.get("annotations", {}).get(RESOURCE_NAME_ANNOTATION))
        for m in art.of_kind("NetworkAttachmentDefinition")
        if RESOURCE_NAME_ANNOTATION in (m.metadata.get("annotations") or {})
    }
    problems = _problems()
    evidence = []
    for template in _templates(ctx):
        volumes = template.volumes()
        hugepage_vols = {
            n
            for n, v in volumes.items()
            if str((v.get("emptyDir") or {}).get("medium", "")).startswith("HugePages")
        }
        all_requested: dict[str, str] = {}
        for container in template.containers():
            wanted = _requested(container)
            all_requested.update(wanted)
            mounts = {str(vm.get("name")) for vm in container.get("volumeMounts") or ()}
            huge = [k for k in wanted if k.startswith("hugepages-")]
            if mounts & hugepage_vols and not huge:
                problems[template.resource(container)].append(
                    "mounts hugepages without requesting a hugepages-<size> resource"
                )
            spec = container.get("resources") or {}
            for key in huge:
                req = (spec.get("requests") or {}).get(key)
                lim = (spec.get("limits") or {}).get(key)
                if req is not None and lim is not None and str(req) != str(lim):
                    problems[template.resource(container)].append(
                        f"{key} request {req} differs from limit {lim}"
                    )
            evidence += [f"{template.resource(container)}: {k}={wanted[k]}" for k in huge]
        for net in _network_names(template.annotations.get(NETWORKS_ANNOTATION, "")):
            resource = nad_resources.get((template.owner.namespace, net))
            if resource and resource not in all_requested:
                problems[template.resource()].append(
                    f"attaches network {net} without requesting {resource}"
                )
            elif resource:
                evidence.append(f"{template.resource()}: network {net} via {resource}")
    return verdict(
        problems, "hardware requested through device plugins", "hardware not requested", evidence
    )


STATIC_CHECK_IDS = (
    "helm-chart-v3",
    "helm-lint",
    "k8s-schema",
    "api-versions",
    "dual-stack",
    "privileged",
    "privilege-escalation",
    "dangerous-capabilities",
    "non-root",
    "read-only-root-fs",
    "host-namespaces",
    "sensitive-host-paths",
    "runtime-socket",
    "service-account",
    "liveness-probe",
    "readiness-probe",
    "image-pinned",
    "config-externalized",
    "hardcoded-ip",
    "recommended-labels",
    "not-default-namespace",
    "resources",
    "pod-disruption-budget",
    "pod-anti-affinity",
    "hardware-hostpath",
    "device-plugin-resources",
)


def static_checks() -> list[Check]:
    return [lookup(i) for i in STATIC_CHECK_IDS]
