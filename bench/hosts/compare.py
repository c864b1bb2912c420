"""A host's fingerprint against the testbed profile, and two testbeds against each other.

Each property the profile expects is a match, a deviation (a warning: the result stands
but the annex says how the host differs, or the property could not be read) or a
mismatch (an error: results from this host are not results on the standardized
testbed).  `comparable` decides whether two stored fingerprints describe the same kind
of testbed, over the key fields the fingerprint hash covers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rich.markup import escape
from rich.table import Table

from bench.hosts.errors import HostError
from bench.hosts.fingerprint import Fingerprint, Nic, kernel_series, normalize_pci
from bench.profiles import ExpectedHardware

log = logging.getLogger(__name__)

HUGEPAGE_KIB = {"2Mi": 2048, "1Gi": 1048576}


class Status(StrEnum):
    MATCH = "match"
    DEVIATION = "deviation"
    MISMATCH = "mismatch"


STATUS_STYLE = {Status.MATCH: "green", Status.DEVIATION: "yellow", Status.MISMATCH: "bold red"}


@dataclass(frozen=True)
class Comparison:
    """One expected property on one host."""

    host: str
    property: str
    expected: str
    actual: str
    status: Status
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "host": self.host,
            "property": self.property,
            "expected": self.expected,
            "actual": self.actual,
            "status": self.status.value,
            "detail": self.detail,
        }


def _gbps(bps: float | None) -> str:
    return "unknown" if bps is None else f"{bps / 1e9:g}G"


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _share(hits: int, total: int) -> Status:
    """All of them is a match, some a deviation, none a mismatch."""
    return Status.MATCH if hits == total else Status.DEVIATION if hits else Status.MISMATCH


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


class _Comparer:
    def __init__(
        self, fp: Fingerprint, expected: ExpectedHardware, host: str, ports: Sequence[str]
    ) -> None:
        self.fp = fp
        self.expected = expected
        self.host = host or fp.hostname or "?"
        self.ports = [normalize_pci(p) for p in ports]
        self.rows: list[Comparison] = []
        self.pfs, self.pf_note = self._relevant_pfs()

    def row(self, prop: str, expected: str, actual: str, status: Status, detail: str = "") -> None:
        self.rows.append(Comparison(self.host, prop, expected, actual, status, detail))

    def not_collected(self, prop: str, expected: str, fact: str) -> None:
        reason = self.fp.missing.get(fact, "not in the fingerprint")
        self.row(prop, expected, "unknown", Status.DEVIATION, f"not collected: {reason}")

    def _relevant_pfs(self) -> tuple[list[Nic], str]:
        """The PFs the NIC properties apply to, and a note saying which those are."""
        if self.ports:
            found = [n for n in (self.fp.nic(p) for p in self.ports) if n is not None]
            absent = [p for p in self.ports if self.fp.nic(p) is None]
            note = "generator ports " + ", ".join(self.ports)
            return found, note + (f"; no PCI function {', '.join(absent)}" if absent else "")
        model = self.expected.nic_model
        if model:
            matching = [pf for pf in self.fp.pfs if _norm(model) in _norm(pf.model or "")]
            return matching, f"PFs of {model!r}"
        return list(self.fp.pfs), "all PFs"

    # --- properties -------------------------------------------------------------------

    def cpu_model(self, want: str) -> None:
        have = self.fp.cpu_model
        if have is None:
            self.not_collected("cpu_model", want, "cpu_model")
            return
        status = Status.MATCH if _norm(have) == _norm(want) else Status.MISMATCH
        self.row("cpu_model", want, have, status)

    def nic_model(self, want: str) -> None:
        models = sorted({pf.model or f"{pf.vendor_id}:{pf.device_id}" for pf in self.fp.pfs})
        if not self.pfs:
            self.row(
                "nic_model",
                want,
                ", ".join(models) or "no NIC",
                Status.MISMATCH,
                f"none of {self.pf_note}",
            )
            return
        wrong = [pf for pf in self.pfs if _norm(want) not in _norm(pf.model or "")]
        actual = ", ".join(sorted({pf.model or pf.device_id for pf in self.pfs}))
        absent = "no PCI function" in self.pf_note
        status = Status.MISMATCH if wrong or absent else Status.MATCH
        detail = self.pf_note + (f"; {len(wrong)} of another model" if wrong else "")
        self.row("nic_model", want, actual, status, detail)

    def nic_driver(self, want: str) -> None:
        if not self.pfs:
            self.row("nic_driver", want, "no NIC", Status.MISMATCH, self.pf_note)
            return
        seen, bound = [], 0
        for pf in self.pfs:
            vf_drivers = sorted({vf.driver or "none" for vf in self.fp.vfs_of(pf)})
            vf_text = f" (VFs {'/'.join(vf_drivers)})" if vf_drivers else ""
            seen.append(f"{pf.driver or 'none'}{vf_text}")
            bound += want in (pf.driver, *vf_drivers)
        status = _share(bound, len(self.pfs))
        self.row("nic_driver", want, ", ".join(sorted(set(seen))), status, self.pf_note)

    def link_speed(self, want_bps: float) -> None:
        if not self.pfs:
            self.row("link_speed", _gbps(want_bps), "no NIC", Status.MISMATCH, self.pf_note)
            return
        speeds = [pf.link_speed_bps for pf in self.pfs]
        known = [s for s in speeds if s is not None]
        actual = ", ".join(_gbps(s) for s in speeds)
        if any(s < want_bps for s in known):
            status, detail = Status.MISMATCH, "slower than the standardized link"
        elif len(known) < len(speeds):
            status = Status.DEVIATION
            detail = "unknown for some ports: link down, or bound to a DPDK driver (no netdev)"
        elif any(s > want_bps for s in known):
            status, detail = Status.DEVIATION, "faster than the standardized link"
        else:
            status, detail = Status.MATCH, ""
        self.row(
            "link_speed",
            _gbps(want_bps),
            actual,
            status,
            _join(detail, self.pf_note),
        )

    def sriov_vfs(self, want: int) -> None:
        capable = [pf for pf in self.pfs if pf.sriov_total_vfs]
        if not capable:
            self.row("sriov_vfs", str(want), "no SR-IOV PF", Status.MISMATCH, self.pf_note)
            return
        configured = max(pf.sriov_configured_vfs or 0 for pf in capable)
        most = max(pf.sriov_total_vfs or 0 for pf in capable)
        actual = ", ".join(f"{pf.pci}: {pf.sriov_configured_vfs or 0}" for pf in capable)
        if configured == want:
            status, detail = Status.MATCH, ""
        elif configured > want:
            status, detail = Status.DEVIATION, "more VFs than the standardized testbed"
        elif most < want:
            status, detail = Status.MISMATCH, f"the NIC supports at most {most} VFs"
        else:
            status, detail = Status.MISMATCH, f"configure {want} VFs (sriov_numvfs)"
        self.row("sriov_vfs", str(want), actual, status, _join(detail, self.pf_note))

    def hugepages(self, size: str, count: int) -> None:
        want = f"{count} x {size}"
        if not self.fp.hugepages:
            self.not_collected("hugepages", want, "hugepages")
            return
        size_kib = HUGEPAGE_KIB[size]
        pools = [p for p in self.fp.hugepages if p.size_kib == size_kib]
        total = sum(p.total for p in pools)
        per_node = " + ".join(f"{p.total} (node {p.node})" for p in pools if p.node is not None)
        if total == count:
            status, detail = Status.MATCH, ""
        elif total > count:
            status, detail = Status.DEVIATION, "more hugepages than the standardized testbed"
        else:
            status, detail = (
                Status.MISMATCH,
                f"reserve {count} x {size} (hugepages= on the kernel command line)",
            )
        self.row(
            "hugepages",
            want,
            f"{total} x {size}",
            status,
            _join(detail, per_node),
        )

    def kernel(self, want: str) -> None:
        have = self.fp.kernel
        if have is None:
            self.not_collected("kernel", want, "kernel")
            return
        if have.startswith(want):
            status, detail = Status.MATCH, ""
        elif kernel_series(have) == kernel_series(want):
            status, detail = Status.DEVIATION, "another build of the same kernel series"
        else:
            status, detail = Status.MISMATCH, ""
        self.row("kernel", want, have, status, detail)

    def isolated_cores(self, want: bool) -> None:
        isolated = self.fp.isolated_cpus
        if isolated is None:
            self.not_collected("isolated_cores", "yes" if want else "no", "isolated_cpus")
            return
        nohz = f"nohz_full {self.fp.nohz_full}" if self.fp.nohz_full else "no nohz_full"
        actual = isolated or "none"
        if bool(isolated) == want:
            status, detail = Status.MATCH, nohz if want else ""
        elif want:
            status, detail = (
                Status.MISMATCH,
                "isolate the data-plane cores (isolcpus=, nohz_full=)",
            )
        else:
            status, detail = Status.DEVIATION, "cores are isolated on a testbed that expects none"
        self.row("isolated_cores", "yes" if want else "no", actual, status, detail)

    def cpu_governor(self, want: str) -> None:
        if not self.fp.governors:
            self.not_collected("cpu_governor", want, "governors")
            return
        actual = ", ".join(f"{g} ({n} CPUs)" for g, n in self.fp.governors.items())
        status = _share(self.fp.governors.get(want, 0), sum(self.fp.governors.values()))
        self.row("cpu_governor", want, actual, status)

    def run(self) -> list[Comparison]:
        e = self.expected
        if e.cpu_model is not None:
            self.cpu_model(e.cpu_model)
        if e.nic_model is not None:
            self.nic_model(e.nic_model)
        if e.nic_driver is not None:
            self.nic_driver(e.nic_driver)
        if e.link_speed is not None:
            self.link_speed(e.link_speed)
        if e.sriov_vfs is not None:
            self.sriov_vfs(e.sriov_vfs)
        if e.hugepages is not None:
            self.hugepages(e.hugepages.size, e.hugepages.count)
        if e.kernel is not None:
            self.kernel(e.kernel)
        if e.isolated_cores is not None:
            self.isolated_cores(e.isolated_cores)
        if e.cpu_governor is not None:
            self.cpu_governor(e.cpu_governor)
        return self.rows


def compare(
    fp: Fingerprint,
    expected: ExpectedHardware,
    *,
    host: str = "",
    ports: Sequence[str] = (),
) -> list[Comparison]:
    """Each property ``expected`` sets, on the host ``fp`` describes.

    ``ports`` are the generator's port PCI addresses when ``fp`` is the generator host:
    the NIC properties then apply to exactly those functions.
    """
    return _Comparer(fp, expected, host, ports).run()


def has_mismatch(rows: Iterable[Comparison]) -> bool:
    return any(r.status is Status.MISMATCH for r in rows)


def comparison_table(rows: Iterable[Comparison], title: str = "") -> Table:
    """The rows as a rich table: one line per host and property, status coloured."""
    table = Table(title=title or None, show_lines=False)
    for column in ("host", "property", "expected", "actual", "status", "detail"):
        table.add_column(column, overflow="fold")
    for r in rows:
        status = f"[{STATUS_STYLE[r.status]}]{r.status.value}[/]"
        cells = [escape(c) for c in (r.host, r.property, r.expected, r.actual)]
        table.add_row(*cells, status, escape(r.detail))
    return table


# --- comparability of stored fingerprints --------------------------------------------------


def _hosts(fp: Fingerprint | Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(role, name, key fields) per host of a host or testbed fingerprint."""
    if isinstance(fp, Fingerprint):
        return [("host", fp.hostname or "?", fp.key_fields())]
    if "hosts" in fp:
        out = []
        for entry in fp["hosts"]:
            host = Fingerprint.from_dict(entry["fingerprint"])
            out.append((str(entry.get("role", "host")), str(entry.get("name")), host.key_fields()))
        return out
    if "schema_version" in fp:
        host = Fingerprint.from_dict(fp)
        return [("host", host.hostname or "?", host.key_fields())]
    raise HostError("a fingerprint must be a host fingerprint or a testbed's (with 'hosts')")


def _show(field: str, value: Any) -> str:
    if value is None:
        return "unknown"
    if field == "nics":
        parts = [
            f"{n['model']} {n['driver']} {_gbps(n['link_speed_bps'])} "
            f"{n['sriov_configured_vfs'] or 0} VFs"
            for n in value
        ]
        return "; ".join(parts) or "none"
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


def _diff(label: str, a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return [
        f"{label}{field}: {_show(field, a.get(field))} vs {_show(field, b.get(field))}"
        for field in sorted(set(a) | set(b))
        if a.get(field) != b.get(field)
    ]


def comparable(
    a: Fingerprint | Mapping[str, Any], b: Fingerprint | Mapping[str, Any]
) -> list[str]:
    """Why results on ``a`` and on ``b`` are not comparable: one line per differing key
    field (an empty list means comparable).

    Both may be host fingerprints or testbed fingerprints (as `manifest_fingerprint`
    stores them in a run manifest).  Hosts are matched by role, not by name: two
    identical machines with different names are the same testbed.
    """
    hosts_a, hosts_b = _hosts(a), _hosts(b)
    reasons: list[str] = []
    for role in sorted({r for r, _, _ in hosts_a} | {r for r, _, _ in hosts_b}):
        side_a = sorted((k for r, _, k in hosts_a if r == role), key=_sort_key)
        side_b = sorted((k for r, _, k in hosts_b if r == role), key=_sort_key)
        if len(side_a) != len(side_b):
            reasons.append(f"{role} hosts: {len(side_a)} vs {len(side_b)}")
            continue
        for index, (ka, kb) in enumerate(zip(side_a, side_b, strict=True)):
            label = f"{role}{'' if len(side_a) == 1 else f' {index + 1}'}: "
            reasons.extend(_diff(label, ka, kb))
    return reasons


def _sort_key(key_fields: dict[str, Any]) -> str:
    return json.dumps(key_fields, sort_keys=True)
