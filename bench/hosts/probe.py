"""Probe a testbed: reach each host, fingerprint it, compare it with the profile.

The hosts of a testbed are its ``hosts`` list, plus the generator host when the
generator has SSH settings and no host has the generator role.  An embedded-lab testbed
has no hosts to reach: its fingerprint is this machine's, and its expected hardware is
what the lab emulates, so nothing is compared.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from bench.hosts.compare import Comparison, Status, compare, has_mismatch
from bench.hosts.errors import HostError
from bench.hosts.fingerprint import (
    DEFAULT_TREX_DIRS,
    Fingerprint,
    collect_fingerprint,
    local_fingerprint,
    manifest_fingerprint,
)
from bench.hosts.ssh import SshTarget, connect
from bench.profiles import TestbedProfile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeHost:
    name: str
    role: str
    target: SshTarget
    ports: tuple[str, ...] = ()  # the generator's port PCI addresses on this host


@dataclass
class ProbeReport:
    testbed: str
    rows: list[Comparison] = field(default_factory=list)
    fingerprints: dict[str, tuple[str, Fingerprint]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return has_mismatch(self.rows)

    def manifest_fingerprint(self) -> dict[str, Any]:
        """The testbed fingerprint for a run manifest, with two flat views beside the
        full host fingerprints: ``summary`` (host.fact -> text) and ``comparison``
        (host.property -> status and values) for readers such as the annex."""
        body = manifest_fingerprint(
            (name, role, fp) for name, (role, fp) in self.fingerprints.items()
        )
        body["summary"] = {
            f"{name}.{fact}": value
            for name, (_, fp) in self.fingerprints.items()
            for fact, value in describe(fp)
            if not fact.startswith("missing ")
        }
        body["comparison"] = {
            f"{r.host}.{r.property}": f"{r.status.value}: expected {r.expected}, "
            f"actual {r.actual}" + (f" ({r.detail})" if r.detail else "")
            for r in self.rows
        }
        body["notes"] = list(self.notes)
        return body


def testbed_hosts(profile: TestbedProfile) -> list[ProbeHost]:
    """The hosts to reach over SSH, with the generator's ports on the generator host."""
    ports = tuple(p.pci for p in profile.generator.ports if p.pci)
    hosts = [
        ProbeHost(
            h.name,
            h.role,
            SshTarget.from_spec(h.address, h.ssh, profile.hosts),
            ports if h.role == "generator" else (),
        )
        for h in profile.hosts
        if h.role != "jump"
    ]
    gen = profile.generator
    if gen.ssh is not None and not any(h.role == "generator" for h in hosts):
        target = SshTarget.from_spec(gen.host, gen.ssh, profile.hosts)
        hosts.insert(0, ProbeHost("generator", "generator", target, ports))
    return hosts


def _trex_dirs(profile: TestbedProfile) -> tuple[str, ...]:
    server = profile.generator.server
    return (*DEFAULT_TREX_DIRS, server.install_dir) if server else DEFAULT_TREX_DIRS


def probe_testbed(profile: TestbedProfile, *, root: str = "/") -> ProbeReport:
    """Fingerprint every host of ``profile`` and compare it with ``profile.expected``.

    A host that cannot be reached becomes a mismatch row (the probe goes on with the
    others); ``root`` points the collectors at a tree on each host instead of its own
    procfs and sysfs.
    """
    report = ProbeReport(profile.name)
    if profile.lab is not None:
        report.fingerprints["lab"] = ("lab", local_fingerprint(root))
        report.notes.append(
            "embedded lab: its expected hardware is emulated, so this machine is not "
            "compared with it"
        )
        return report
    hosts = testbed_hosts(profile)
    if not hosts:
        report.notes.append("the testbed lists no hosts and its generator has no ssh settings")
    for host in hosts:
        try:
            with connect(host.target) as runner:
                fp = collect_fingerprint(runner, root=root, trex_dirs=_trex_dirs(profile))
        except HostError as exc:
            log.error("%s: %s", host.name, exc)
            report.rows.append(
                Comparison(
                    host.name, "ssh", host.target.label, "unreachable", Status.MISMATCH, str(exc)
                )
            )
            continue
        report.fingerprints[host.name] = (host.role, fp)
        report.rows.extend(compare(fp, profile.expected, host=host.name, ports=host.ports))
    return report


def fingerprint_testbed(profile: TestbedProfile, *, root: str = "/") -> dict[str, Any]:
    """The testbed fingerprint a run manifest stores (``testbed.fingerprint``); raise
    `HostError` when a host cannot be reached, since a run must know its testbed."""
    report = probe_testbed(profile, root=root)
    unreachable = [r for r in report.rows if r.property == "ssh"]
    if unreachable:
        raise HostError(unreachable[0].detail)
    return report.manifest_fingerprint()


def describe(fp: Fingerprint) -> list[tuple[str, str]]:
    pools = ", ".join(
        f"{p.total} x {p.size_kib // 1024}M" + (f" (node {p.node})" if p.node is not None else "")
        for p in fp.hugepages
        if p.total
    )
    nics: list[tuple[str, str]] = []
    for pf in fp.pfs:
        vfs = fp.vfs_of(pf)
        vf_text = f", {len(vfs)} VFs on {'/'.join(sorted({v.driver or 'none' for v in vfs}))}"
        speed = f"{pf.link_speed_bps / 1e9:g}G" if pf.link_speed_bps else "speed unknown"
        nics.append(
            (
                f"nic {pf.pci}",
                f"{pf.model or pf.device_id} [{pf.driver or 'no driver'}] {speed}"
                f"{vf_text if vfs else ''}",
            )
        )
    facts = [
        ("hostname", fp.hostname or "unknown"),
        ("cpu", f"{fp.cpu_model} ({fp.sockets} sockets, {fp.cores} cores, {fp.threads} threads)"),
        ("numa", ", ".join(f"node {n}: {cpus}" for n, cpus in fp.numa_nodes.items()) or "none"),
        ("isolated", f"{fp.isolated_cpus or 'none'}; nohz_full {fp.nohz_full or 'none'}"),
        ("governor", ", ".join(f"{g} x{n}" for g, n in fp.governors.items()) or "unknown"),
        ("hugepages", pools or "none"),
        *nics,
        ("dpdk-bound", str(len(fp.dpdk_devices))),
        ("kernel", fp.kernel or "unknown"),
        ("os", fp.os or "unknown"),
        ("trex", fp.trex_version or "none"),
        ("dpdk", fp.dpdk_version or "none"),
        ("sha256", fp.sha256),
    ]
    facts.extend((f"missing {k}", v) for k, v in fp.missing.items())
    return facts
