"""The check registry: what a conformance check is, what it returns, and how it runs.

A check is a function from a `CheckContext` to an `Outcome`, registered with its
metadata by the `check` decorator.  `run_check` times it, turns an expected failure of
its tools (a cluster that answers an error, a generator that drops the session) into an
``error`` result, and returns a `CheckResult`.  Bugs are not caught: they keep their
traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError, InputError
from traffic.errors import TrafficError

if TYPE_CHECKING:
    from bench.checks.context import CheckContext

log = logging.getLogger(__name__)

CHECKS_SCHEMA_VERSION = 1


class Category(StrEnum):
    COMPATIBILITY = "compatibility"
    STATELESSNESS = "statelessness"
    SCALABILITY = "scalability"
    SECURITY = "security"
    CONFIGURATION_AND_LIFECYCLE = "configuration-and-lifecycle"
    OBSERVABILITY = "observability"
    INSTALLABILITY_AND_UPGRADEABILITY = "installability-and-upgradeability"
    HARDWARE_RESOURCES_AND_SCHEDULING = "hardware-resources-and-scheduling"


class Weight(StrEnum):
    """How much a check counts toward a tier: every essential one must pass."""

    ESSENTIAL = "essential"
    NORMAL = "normal"
    BONUS = "bonus"


class Need(StrEnum):
    ARTIFACTS = "artifacts"  # the chart or manifests
    CLUSTER = "cluster"  # a cluster with the CNF installed
    GENERATOR = "generator"  # a traffic generator and a measured NDR


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True)
class Resource:
    """A Kubernetes object (and optionally one of its containers) a result points at."""

    kind: str
    namespace: str | None
    name: str
    container: str | None = None

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        inner = f" container {self.container}" if self.container else ""
        return f"{self.kind} {where}{self.name}{inner}"

    def sort_key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.namespace or "", self.name, self.container or "")

    def as_dict(self) -> dict[str, str | None]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "container": self.container,
        }


@dataclass(frozen=True)
class Outcome:
    """What a check function decided; `run_check` adds the check's identity and timing."""

    status: Status
    message: str
    evidence: tuple[str, ...] = ()
    impacted: tuple[Resource, ...] = ()
    figures: Mapping[str, float] = field(default_factory=dict)


def passed(message: str, evidence: Iterable[str] = (), **figures: float) -> Outcome:
    return Outcome(Status.PASSED, message, tuple(evidence), (), figures)


def failed(
    message: str,
    impacted: Iterable[Resource] = (),
    evidence: Iterable[str] = (),
    **figures: float,
) -> Outcome:
    unique = tuple(sorted(set(impacted), key=Resource.sort_key))
    return Outcome(Status.FAILED, message, tuple(evidence), unique, figures)


def skipped(reason: str) -> Outcome:
    return Outcome(Status.SKIPPED, reason)


def verdict(
    problems: Mapping[Resource, list[str]], ok: str, bad: str, evidence: Iterable[str] = ()
) -> Outcome:
    """Failed when any resource has problems (each listed as evidence), passed otherwise."""
    if not problems:
        return passed(ok, evidence)
    ordered = sorted(problems.items(), key=lambda kv: kv[0].sort_key())
    lines = [f"{res}: {p}" for res, items in ordered for p in items]
    return failed(f"{bad} ({len(problems)} impacted)", problems, lines)


CheckFn = Callable[["CheckContext"], Outcome]


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    category: Category
    weight: Weight
    needs: frozenset[Need]
    overview: str
    rationale: str
    remediation: str
    fn: CheckFn = field(repr=False, compare=False)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "category": self.category.value,
            "weight": self.weight.value,
            "needs": sorted(n.value for n in self.needs),
            "overview": self.overview,
            "rationale": self.rationale,
            "remediation": self.remediation,
        }


@dataclass(frozen=True)
class CheckResult:
    check: Check
    status: Status
    message: str
    evidence: tuple[str, ...] = ()
    impacted: tuple[Resource, ...] = ()
    figures: Mapping[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    started_at: float = 0.0  # Unix time

    @property
    def id(self) -> str:
        return self.check.id

    def to_record(self) -> dict[str, Any]:
        """The result as a JSON-able mapping (checks.json entries and journal records)."""
        return {
            "id": self.check.id,
            "title": self.check.title,
            "category": self.check.category.value,
            "weight": self.check.weight.value,
            "needs": sorted(n.value for n in self.check.needs),
            "status": self.status.value,
            "message": self.message,
            "evidence": list(self.evidence),
            "impacted": [r.as_dict() for r in self.impacted],
            "figures": dict(self.figures),
            "remediation": self.check.remediation if self.status is Status.FAILED else "",
            "duration_s": round(self.duration_s, 6),
            "started_at": self.started_at,
        }


_REGISTRY: dict[str, Check] = {}


def check(
    id: str,
    *,
    title: str,
    category: Category,
    weight: Weight,
    needs: Iterable[Need],
    overview: str,
    rationale: str,
    remediation: str,
) -> Callable[[CheckFn], CheckFn]:
    """Register a check function under `id` with its metadata."""

    def register(fn: CheckFn) -> CheckFn:
        if id in _REGISTRY:
            raise ValueError(f"check id {id!r} is registered twice")
        _REGISTRY[id] = Check(
            id, title, category, weight, frozenset(needs), overview, rationale, remediation, fn
        )
        return fn

    return register


def registered() -> list[Check]:
    """The checks registered so far (`bench.checks.all_checks` imports every module)."""
    return list(_REGISTRY.values())


def lookup(check_id: str) -> Check:
    try:
        return _REGISTRY[check_id]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise InputError(f"no check {check_id!r}; known checks: {known}") from None


# The failures of the tools a check uses that make its result an error rather than a
# verdict: our own user-facing errors, the traffic plane's, and the OS's.
TOOL_ERRORS: tuple[type[BaseException], ...] = (BenchError, TrafficError, OSError)


def run_check(chk: Check, ctx: CheckContext) -> CheckResult:
    started = time.time()
    t0 = time.monotonic()
    missing = ctx.missing(chk.needs)
    if missing:
        outcome = skipped(f"needs {', '.join(sorted(missing))}, which this run does not have")
    else:
        try:
            outcome = chk.fn(ctx)
        except TOOL_ERRORS as exc:
            log.warning("check %s: %s", chk.id, exc)
            outcome = Outcome(Status.ERROR, f"{type(exc).__name__}: {exc}".splitlines()[0])
    log.debug("check %s: %s: %s", chk.id, outcome.status.value, outcome.message)
    return CheckResult(
        chk,
        outcome.status,
        outcome.message,
        outcome.evidence,
        outcome.impacted,
        outcome.figures,
        time.monotonic() - t0,
        started,
    )


def run_checks(checks: Iterable[Check], ctx: CheckContext) -> list[CheckResult]:
    return [run_check(c, ctx) for c in checks]


def summary(results: Iterable[CheckResult]) -> dict[str, Any]:
    """Counts by status and by weight, and whether any essential check failed."""
    results = list(results)
    by_status = {s.value: 0 for s in Status}
    by_weight: dict[str, dict[str, int]] = {w.value: {s.value: 0 for s in Status} for w in Weight}
    for r in results:
        by_status[r.status.value] += 1
        by_weight[r.check.weight.value][r.status.value] += 1
    essential_failed = sorted(
        r.id
        for r in results
        if r.check.weight is Weight.ESSENTIAL and r.status in (Status.FAILED, Status.ERROR)
    )
    return {
        "total": len(results),
        "by_status": by_status,
        "by_weight": by_weight,
        "essential_failed": essential_failed,
    }


def checks_document(results: Iterable[CheckResult], **meta: Any) -> dict[str, Any]:
    """The body of ``checks.json`` (schema ``checks``)."""
    results = list(results)
    return {
        "schema_version": CHECKS_SCHEMA_VERSION,
        **meta,
        "summary": summary(results),
        "results": [r.to_record() for r in results],
    }
