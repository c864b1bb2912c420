"""Typed, validated profiles: traffic, testbed, CNF, tiers, and the run that ties them.

Every profile is a YAML file with a `kind` and a `schema_version`.  Unknown keys are
errors; quantities carry explicit units (``25Gbps``, ``1Mpps``, ``30s``, ``0.5%``).
Problems are reported as ``file:line: field.path: message``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bench.errors import ProfileError
from bench.yamlio import Location, dotted, line_for, load_with_lines
from traffic import units
from traffic.errors import UnitError
from traffic.model import GOAL_PRESETS, Direction, Goal

PROFILE_SCHEMA_VERSION = 1
PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"


def _unit(parse: Any) -> Any:
    def convert(value: Any) -> Any:
        try:
            return parse(value)
        except UnitError as exc:
            raise ValueError(str(exc)) from exc

    return BeforeValidator(convert)


BitRate = Annotated[float, _unit(units.parse_bitrate_bps), Field(gt=0)]
PacketRate = Annotated[float, _unit(units.parse_packet_rate_pps), Field(ge=0)]
Duration = Annotated[float, _unit(units.parse_duration_s), Field(gt=0)]
Ratio = Annotated[float, _unit(units.parse_percent), Field(ge=0, lt=1)]
Bytes = Annotated[int, _unit(units.parse_bytes), Field(gt=0)]


def _frame(value: Any) -> str:
    try:
        return units.frame_label(units.parse_frame_size(value))
    except UnitError as exc:
        raise ValueError(str(exc)) from exc


FrameSizeText = Annotated[str, BeforeValidator(_frame)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Header(Strict):
    schema_version: Literal[1] = 1
    name: str = Field(min_length=1)
    description: str = ""


# --- traffic ---------------------------------------------------------------------------


class GoalSpec(Strict):
    name: str
    loss_ratio: Ratio
    exceed_ratio: Ratio = 0.0
    relative_width: Ratio = 0.005
    initial_trial_duration: Duration = 1.0
    final_trial_duration: Duration = 60.0
    duration_sum: Duration = 60.0

    def to_goal(self) -> Goal:
        try:
            return Goal(
                self.name,
                self.loss_ratio,
                self.exceed_ratio,
                self.relative_width,
                self.initial_trial_duration,
                self.final_trial_duration,
                self.duration_sum,
            )
        except ValueError as exc:
            raise ValueError(str(exc)) from exc


SearchMethod = Literal["mlrsearch", "rfc2544-binary", "tst009-binary"]


class SearchSpec(Strict):
    method: SearchMethod = "mlrsearch"
    preset: Literal["rfc2544", "tst009", "quick"] | None = "tst009"
    goals: tuple[GoalSpec, ...] = ()
    warm_start: bool = True
    warm_start_margin: Ratio = 0.1
    min_load: PacketRate = 10_000.0

    @model_validator(mode="after")
    def _goals_or_preset(self) -> SearchSpec:
        if not self.goals and self.preset is None:
            raise ValueError("give a goal preset or a list of goals")
        for spec in self.goals:
            spec.to_goal()
        return self

    def resolved_goals(self) -> tuple[Goal, ...]:
        if self.goals:
            return tuple(g.to_goal() for g in self.goals)
        assert self.preset is not None
        return GOAL_PRESETS[self.preset]


class LatencySpec(Strict):
    rate: PacketRate = 1000.0  # per direction
    loads: tuple[Ratio | Literal["NDR"], ...] = (0.1, 0.5, 0.9, "NDR")
    trial_duration: Duration = 10.0


class SessionsSpec(Strict):
    """Session capacity: the largest flow count at which PDR stays above a fraction of
    the NDR measured with the profile's first flow count."""

    flow_counts: tuple[Annotated[int, Field(ge=1)], ...] = ()
    hold_fraction: Ratio = 0.9

    @field_validator("flow_counts")
    @classmethod
    def _ascending(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if list(v) != sorted(set(v)):
            raise ValueError("flow counts must be distinct and ascending")
        return v


class TrafficProfile(Header):
    kind: Literal["traffic"]
    frame_sizes: tuple[FrameSizeText, ...] = Field(min_length=1)
    flow_counts: tuple[Annotated[int, Field(ge=1)], ...] = Field(min_length=1)
    directions: tuple[Direction, ...] = (Direction.BIDIRECTIONAL,)
    search: SearchSpec = SearchSpec()
    latency: LatencySpec = LatencySpec()
    sessions: SessionsSpec = SessionsSpec()
    learning_frames: bool = True
    rx_delay: Duration = 0.1
    warmup_trial: Duration | None = None


# --- testbed ---------------------------------------------------------------------------


class SshSpec(Strict):
    user: str = "root"
    port: int = Field(22, ge=1, le=65535)
    key_file: str | None = None
    password_env: str | None = None
    use_agent: bool = True
    jump_host: str | None = None
    known_hosts: str | None = None
    trust_new_host_key: bool = False
    timeout: Duration = 10.0


class PortSpec(Strict):
    id: int = Field(ge=0)
    speed: BitRate
    pci: str | None = None
    dst_mac: str | None = Field(None, pattern=r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")
    vlan: int | None = Field(None, ge=1, le=4094)


class TrexServerSpec(Strict):
    """How the TRex server is run on the generator host (over ``generator.ssh``)."""

    install_dir: str = "/opt/trex/current"  # the release directory holding t-rex-64
    config_path: str = "/etc/trex_cfg.yaml"
    command: str = "./t-rex-64 -i --cfg {cfg}"  # run in install_dir; {cfg}: config_path
    log_path: str = "/tmp/cnfbench-trex.log"
    pid_path: str = "/tmp/cnfbench-trex.pid"
    start_timeout: Duration = 60.0
    stop_timeout: Duration = 10.0
    cores: tuple[Annotated[int, Field(ge=0)], ...] = ()  # data-plane threads; () keeps TRex's
    master_core: int = Field(0, ge=0)
    latency_core: int = Field(1, ge=0)
    numa_node: int = Field(0, ge=0)


class GeneratorSpec(Strict):
    type: Literal["trex", "nfvbench"] = "trex"
    host: str = "127.0.0.1"
    client: Literal["auto", "current", "legacy"] = "auto"
    trex_path: str | None = None  # a TRex installation's root, or its client directory
    sync_port: int = Field(4501, ge=1, le=65535)
    async_port: int = Field(4500, ge=1, le=65535)
    nfvbench_url: str | None = None
    ports: tuple[PortSpec, ...] = Field(min_length=2)
    ssh: SshSpec | None = None
    server: TrexServerSpec | None = None  # None: the TRex server is run by someone else

    @field_validator("ports")
    @classmethod
    def _distinct_ids(cls, v: tuple[PortSpec, ...]) -> tuple[PortSpec, ...]:
        ids = [p.id for p in v]
        if len(set(ids)) != len(ids):
            raise ValueError(f"port ids must be distinct, got {ids}")
        return v


class HugepagesSpec(Strict):
    size: Literal["2Mi", "1Gi"] = "1Gi"
    count: int = Field(ge=0)


class ExpectedHardware(Strict):
    """The standardized testbed that results are comparable on.

    NIC properties apply to the generator's ports (by PCI address) on the generator
    host, and to the PFs of ``nic_model`` on the other hosts; ``nic_driver`` matches the
    PF's driver or its VFs'; ``sriov_vfs`` is the VF count configured on a PF;
    ``hugepages.count`` is the host's total of that size over its NUMA nodes; ``kernel``
    is a release prefix (``5.15`` matches ``5.15.0-91-generic``).
    """

    cpu_model: str | None = None
    nic_model: str | None = None
    nic_driver: str | None = None
    link_speed: BitRate | None = None
    sriov_vfs: int | None = Field(None, ge=0)
    hugepages: HugepagesSpec | None = None
    kernel: str | None = None
    isolated_cores: bool | None = None
    cpu_governor: str | None = None


class HostSpec(Strict):
    name: str
    address: str
    role: Literal["generator", "worker", "jump"] = "worker"
    ssh: SshSpec = SshSpec()


class ClusterSpec(Strict):
    kubeconfig: str | None = None  # None: in-cluster config or the default kubeconfig
    context: str | None = None
    version: str | None = None  # the Kubernetes version checks validate against


class LabSpec(Strict):
    """An embedded lab stands in for the testbed: an ephemeral one is started per run."""

    seed: int = 1
    time_scale: float = Field(200.0, gt=0)
    # Attach to a lab started with `cnfbench lab up --state-dir DIR` instead of starting
    # an ephemeral one; the lab then keeps running after the run.
    state_dir: str | None = None
    nodes: int = Field(3, ge=1)
    vfs_per_node: int = Field(8, ge=0)


class TestbedProfile(Header):
    __test__ = False  # not a pytest test class, despite its name

    kind: Literal["testbed"]
    generator: GeneratorSpec
    steering: Literal["shared-front", "per-replica"] = "shared-front"
    expected: ExpectedHardware = ExpectedHardware()
    hosts: tuple[HostSpec, ...] = ()
    cluster: ClusterSpec = ClusterSpec()
    lab: LabSpec | None = None


# --- CNF -------------------------------------------------------------------------------


class ChartSpec(Strict):
    path: str | None = None
    repo: str | None = None
    name: str | None = None
    version: str | None = None
    values: dict[str, Any] = {}
    release: str | None = None

    @model_validator(mode="after")
    def _source(self) -> ChartSpec:
        if (self.path is None) == (self.repo is None):
            raise ValueError("give exactly one of path (a chart directory) or repo")
        if self.repo is not None and not (self.name and self.version):
            raise ValueError("a chart from a repo needs its name and version")
        return self


class WorkloadSpec(Strict):
    kind: Literal["Deployment", "StatefulSet"] = "Deployment"
    name: str


class CnfPortMap(Strict):
    """Which generator port faces which CNF interface."""

    generator_port: int = Field(ge=0)
    cnf_interface: str
    network: str | None = None  # the Multus network attachment name


class CnfProfile(Header):
    kind: Literal["cnf"]
    vendor: str
    product: str = ""
    chart: ChartSpec | None = None
    manifests: str | None = None
    namespace: str = "cnf"
    workload: WorkloadSpec
    replicas: tuple[Annotated[int, Field(ge=1)], ...] = Field(min_length=1)
    ports: tuple[CnfPortMap, ...] = ()
    # Traffic at a low rate for this long after every scale, before measuring: a CNF's
    # replicas warm their caches and flow tables before they forward at full capacity.
    warmup: Duration | None = None
    install: Literal["template", "helm"] = "template"
    uninstall: bool = True
    lab_model: str | None = None  # the lab's vendor model that emulates this CNF

    @model_validator(mode="after")
    def _artifacts(self) -> CnfProfile:
        if (self.chart is None) == (self.manifests is None):
            raise ValueError("give exactly one of chart or manifests")
        if list(self.replicas) != sorted(set(self.replicas)):
            raise ValueError("the replica ladder must be distinct and ascending")
        return self


# --- tiers -----------------------------------------------------------------------------


class PerformanceRequirements(Strict):
    scaling_efficiency_min: Ratio | None = None  # E(R) at the top of the ladder
    latency_p99_us_max: float | None = Field(None, gt=0)  # at 90 % of NDR
    disruption_lost_frames_max: int | None = Field(None, ge=0)
    disruption_outage_s_max: float | None = Field(None, ge=0)
    session_capacity_min: int | None = Field(None, ge=0)


class CheckRequirements(Strict):
    essential: Literal["all"] | None = "all"
    normal_share: Ratio = 0.0


class TierSpec(Strict):
    name: Literal["bronze", "silver", "gold"]
    checks: CheckRequirements = CheckRequirements()
    performance: PerformanceRequirements = PerformanceRequirements()


class DisruptionSpec(Strict):
    load_fraction: Ratio = 0.5  # of the measured NDR
    sample_interval: Duration = 0.1
    replicas: int | None = Field(None, ge=2)  # None: the top of the CNF's replica ladder


class TierProfile(Header):
    kind: Literal["tiers"]
    tiers: tuple[TierSpec, ...] = Field(min_length=1)
    disruption: DisruptionSpec = DisruptionSpec()
    require_dual_stack: bool = False  # the dual-stack check applies only when true

    @field_validator("tiers")
    @classmethod
    def _ordered(cls, v: tuple[TierSpec, ...]) -> tuple[TierSpec, ...]:
        order = ["bronze", "silver", "gold"]
        names = [t.name for t in v]
        if names != sorted(names, key=order.index) or len(set(names)) != len(names):
            raise ValueError("tiers must be distinct and in the order bronze, silver, gold")
        return v


# --- run -------------------------------------------------------------------------------


class RunProfile(Header):
    kind: Literal["run"]
    cnf: str
    testbed: str
    traffic: str
    tiers: str | None = None
    time_budget: Duration = 3600.0
    results_dir: str = "results"
    checks: bool = True
    repeat: int = Field(1, ge=1)


AnyProfile = TrafficProfile | TestbedProfile | CnfProfile | TierProfile | RunProfile
_KINDS: dict[str, type[Header]] = {
    "traffic": TrafficProfile,
    "testbed": TestbedProfile,
    "cnf": CnfProfile,
    "tiers": TierProfile,
    "run": RunProfile,
}


@dataclass(frozen=True)
class Loaded:
    """A validated profile with where it came from and its content hash."""

    path: Path
    profile: Any
    text: str
    sha256: str


def _problems(path: Path, exc: ValidationError, lines: dict[Location, int]) -> list[str]:
    out = []
    for err in exc.errors():
        loc: Location = tuple(err["loc"])
        # pydantic puts union tags and validator names into loc; keep the data path only
        loc = tuple(p for p in loc if not (isinstance(p, str) and "[" in p))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif err["type"] == "missing":
            message = "required field is missing"
        out.append(f"{path}:{line_for(lines, loc)}: {dotted(loc)}: {message}")
    return out


def load_profile(path: Path | str, expect: type[Any] | None = None) -> Loaded:
    """Load and validate one profile; raise `ProfileError` listing every problem."""
    path = Path(path)
    data, lines = load_with_lines(path)
    if not isinstance(data, dict):
        raise ProfileError([f"{path}:1: (top): a profile must be a mapping with a 'kind'"])
    kind = data.get("kind")
    model = _KINDS.get(str(kind))
    if model is None:
        where = line_for(lines, ("kind",))
        raise ProfileError(
            [f"{path}:{where}: kind: must be one of {', '.join(_KINDS)}, got {kind!r}"]
        )
    if expect is not None and model is not expect:
        wanted = next(k for k, v in _KINDS.items() if v is expect)
        raise ProfileError(
            [f"{path}:{line_for(lines, ('kind',))}: kind: expected {wanted!r}, got {kind!r}"]
        )
    try:
        profile = model.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(_problems(path, exc, lines)) from exc
    text = path.read_text(encoding="utf-8")
    return Loaded(path, profile, text, hashlib.sha256(text.encode()).hexdigest())


@dataclass(frozen=True)
class RunBundle:
    """A run profile with the four profiles it names, all validated."""

    run: Loaded
    cnf: Loaded
    testbed: Loaded
    traffic: Loaded
    tiers: Loaded | None

    @property
    def all(self) -> list[Loaded]:
        out = [self.run, self.cnf, self.testbed, self.traffic]
        return out + ([self.tiers] if self.tiers else [])

    def resolve(self, relative: str) -> Path:
        """A path named in the CNF profile (chart, manifests), relative to that file."""
        return (self.cnf.path.parent / relative).resolve()


def load_run(path: Path | str) -> RunBundle:
    run = load_profile(path, RunProfile)
    rp: RunProfile = run.profile
    base = run.path.parent
    problems: list[str] = []
    loaded: dict[str, Loaded | None] = {}
    wanted: list[tuple[str, str | None, type[Any]]] = [
        ("cnf", rp.cnf, CnfProfile),
        ("testbed", rp.testbed, TestbedProfile),
        ("traffic", rp.traffic, TrafficProfile),
        ("tiers", rp.tiers, TierProfile),
    ]
    for field, rel, model in wanted:
        if rel is None:
            loaded[field] = None
            continue
        target = (base / rel).resolve()
        if not target.is_file():
            _, lines = load_with_lines(run.path)
            problems.append(f"{run.path}:{line_for(lines, (field,))}: {field}: no file {target}")
            continue
        try:
            loaded[field] = load_profile(target, model)
        except ProfileError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ProfileError(problems)
    cnf, testbed, traffic = loaded["cnf"], loaded["testbed"], loaded["traffic"]
    assert cnf is not None and testbed is not None and traffic is not None
    return RunBundle(run, cnf, testbed, traffic, loaded["tiers"])


def validate_files(paths: Iterable[Path]) -> tuple[list[str], list[str]]:
    """Validate each file; return (one-line summaries, problems)."""
    summaries: list[str] = []
    problems: list[str] = []
    for path in paths:
        try:
            loaded = load_profile(path)
            if isinstance(loaded.profile, RunProfile):
                load_run(path)
        except ProfileError as exc:
            problems.extend(exc.problems)
            continue
        summaries.append(f"{path}: ok: {summarize(loaded.profile)}")
    return summaries, problems


def summarize(profile: Any) -> str:
    p = profile
    if isinstance(p, TrafficProfile):
        return (
            f"traffic {p.name!r}: frames {', '.join(p.frame_sizes)}; flows "
            f"{', '.join(map(str, p.flow_counts))}; {p.search.method} "
            f"({p.search.preset or 'custom goals'})"
        )
    if isinstance(p, TestbedProfile):
        speeds = ", ".join(f"{port.speed / 1e9:g}G" for port in p.generator.ports)
        where = "embedded lab" if p.lab else p.generator.host
        return f"testbed {p.name!r}: {p.generator.type} on {where}, ports {speeds}"
    if isinstance(p, CnfProfile):
        ladder = "-".join(map(str, p.replicas))
        return f"cnf {p.name!r} by {p.vendor}: {p.workload.kind}/{p.workload.name}, {ladder}"
    if isinstance(p, TierProfile):
        return f"tiers {p.name!r}: {', '.join(t.name for t in p.tiers)}"
    if isinstance(p, RunProfile):
        return f"run {p.name!r}: {p.cnf} on {p.testbed} with {p.traffic}"
    return type(p).__name__


def demo_run_profile() -> Path:
    return PROFILES_DIR / "runs" / "demo.yaml"
