"""What a testbed host is: CPU, NUMA, isolation, hugepages, NICs, SR-IOV, software.

Every collector reads procfs and sysfs through a `HostFS`, so the same code reads a live
host, a host over SSH, or a fixture tree under a root prefix.  Commands (``ethtool``,
``dpkg-query``) run only when the root is ``/``: under a prefix they would describe the
wrong machine.  A collector that finds nothing records why in `Fingerprint.missing`
instead of failing, because a host lacking cpufreq or SR-IOV is a fact about the host.

The fingerprint hash covers the key fields only (`Fingerprint.key_fields`): what changes
the throughput a CNF can reach, and nothing that differs between identical machines
(hostnames, PCI addresses, free hugepages, the time of collection).

Format history: schema_version 1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shlex
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from bench.hosts.errors import HostError
from bench.hosts.runner import HostFS, LocalRunner, Runner

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

#: Drivers that hand a PCI device to a user-space (DPDK) data plane.
DPDK_DRIVERS = frozenset({"vfio-pci", "uio_pci_generic", "igb_uio"})
#: Where a TRex release is unpacked by convention (one ``vX.YY`` directory per release).
DEFAULT_TREX_DIRS = ("/opt/trex", "/opt/trex-core", "/root/trex")
PCI_IDS_PATHS = ("/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids", "/usr/share/pci.ids")
DPDK_PC_DIRS = (
    "/usr/lib/x86_64-linux-gnu/pkgconfig",
    "/usr/lib/aarch64-linux-gnu/pkgconfig",
    "/usr/lib64/pkgconfig",
    "/usr/lib/pkgconfig",
    "/usr/local/lib/x86_64-linux-gnu/pkgconfig",
    "/usr/local/lib64/pkgconfig",
    "/usr/local/lib/pkgconfig",
)
PCI_DEVICES = "/sys/bus/pci/devices"
CPU_DIR = "/sys/devices/system/cpu"
NODE_DIR = "/sys/devices/system/node"
NETWORK_CLASS_PREFIX = "0x02"
PCI_ATTRIBUTES = (
    "class",
    "vendor",
    "device",
    "numa_node",
    "driver",
    "physfn",
    "sriov_totalvfs",
    "sriov_numvfs",
)
# PCI ids of NICs common on NFV testbeds, for hosts without a pci.ids database.
KNOWN_NICS = {
    ("0x8086", "0x159b"): ("Intel Corporation", "Ethernet Controller E810-XXV for SFP"),
    ("0x8086", "0x1592"): ("Intel Corporation", "Ethernet Controller E810-C for QSFP"),
    ("0x8086", "0x1889"): ("Intel Corporation", "Ethernet Adaptive Virtual Function"),
    ("0x8086", "0x1572"): ("Intel Corporation", "Ethernet Controller X710 for 10GbE SFP+"),
    ("0x8086", "0x158b"): ("Intel Corporation", "Ethernet Controller XXV710 for 25GbE SFP28"),
    ("0x8086", "0x154c"): ("Intel Corporation", "Ethernet Virtual Function 700 Series"),
    ("0x15b3", "0x101d"): ("Mellanox Technologies", "MT2892 Family [ConnectX-6 Dx]"),
    ("0x15b3", "0x101e"): ("Mellanox Technologies", "ConnectX Family mlx5Gen Virtual Function"),
    ("0x15b3", "0x1017"): ("Mellanox Technologies", "MT27800 Family [ConnectX-5]"),
    ("0x15b3", "0x1018"): (
        "Mellanox Technologies",
        "MT27800 Family [ConnectX-5 Virtual Function]",
    ),
}


# --- the fingerprint ---------------------------------------------------------------------


@dataclass(frozen=True)
class Nic:
    """One network-class PCI function: a physical function (PF) or a virtual one (VF)."""

    pci: str
    vendor_id: str
    device_id: str
    vendor: str | None = None
    model: str | None = None
    driver: str | None = None
    numa_node: int | None = None
    interfaces: tuple[str, ...] = ()
    link_speed_bps: float | None = None
    firmware: str | None = None
    sriov_total_vfs: int | None = None  # None: the function cannot have VFs
    sriov_configured_vfs: int | None = None
    physfn: str | None = None  # the PF's PCI address when this is a VF
    vfs: tuple[str, ...] = ()  # the VFs' PCI addresses when this is a PF

    @property
    def is_vf(self) -> bool:
        return self.physfn is not None

    @property
    def dpdk_bound(self) -> bool:
        return self.driver in DPDK_DRIVERS


@dataclass(frozen=True)
class HugepagePool:
    size_kib: int
    node: int | None  # None: the host-wide pool (no NUMA information)
    total: int
    free: int | None = None


@dataclass(frozen=True)
class DpdkDevice:
    """A PCI device bound to a driver that gives it to a user-space data plane."""

    pci: str
    driver: str
    vendor_id: str
    device_id: str
    model: str | None = None


@dataclass(frozen=True)
class Fingerprint:
    """One host as collected; `missing` says, per field, why it could not be read."""

    hostname: str | None = None
    root: str = "/"
    collected_at: float = 0.0
    cpu_model: str | None = None
    sockets: int | None = None
    cores: int | None = None
    threads: int | None = None
    numa_nodes: dict[str, str] = field(default_factory=dict)  # node id -> cpulist
    cmdline: str | None = None
    isolated_cpus: str | None = None  # cpulist; "" when none
    nohz_full: str | None = None
    governors: dict[str, int] = field(default_factory=dict)  # governor -> CPU count
    default_hugepage_kib: int | None = None
    hugepages: tuple[HugepagePool, ...] = ()
    nics: tuple[Nic, ...] = ()
    dpdk_devices: tuple[DpdkDevice, ...] = ()
    kernel: str | None = None
    os: str | None = None
    trex_version: str | None = None
    dpdk_version: str | None = None
    missing: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    # --- views ----------------------------------------------------------------------

    @property
    def pfs(self) -> tuple[Nic, ...]:
        return tuple(n for n in self.nics if not n.is_vf)

    def vfs_of(self, pf: Nic) -> tuple[Nic, ...]:
        return tuple(n for n in self.nics if n.physfn == pf.pci)

    def nic(self, pci: str) -> Nic | None:
        short = normalize_pci(pci)
        return next((n for n in self.nics if n.pci == short), None)

    def hugepages_total(self, size_kib: int) -> int:
        return sum(p.total for p in self.hugepages if p.size_kib == size_kib)

    # --- storage --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["sha256"] = self.sha256
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fingerprint:
        """Rebuild a stored fingerprint; raise `HostError` naming a field it cannot read."""
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise HostError(f"fingerprint schema_version {version!r}: this version reads 1")
        known = {f.name for f in fields(cls)}
        body = {k: v for k, v in data.items() if k in known}
        try:
            body["hugepages"] = tuple(HugepagePool(**p) for p in body.get("hugepages", ()))
            body["nics"] = tuple(_nic_from_dict(n) for n in body.get("nics", ()))
            body["dpdk_devices"] = tuple(DpdkDevice(**d) for d in body.get("dpdk_devices", ()))
            return cls(**body)
        except TypeError as exc:
            raise HostError(f"fingerprint: unreadable field: {exc}") from exc

    def key_fields(self) -> dict[str, Any]:
        """The fields that decide whether results from two hosts are comparable."""
        pfs = []
        for pf in self.pfs:
            vf_drivers = sorted({vf.driver or "none" for vf in self.vfs_of(pf)})
            pfs.append(
                {
                    "model": f"{pf.vendor_id}:{pf.device_id}",
                    "driver": pf.driver,
                    "link_speed_bps": pf.link_speed_bps,
                    "numa_node": pf.numa_node,
                    "sriov_configured_vfs": pf.sriov_configured_vfs,
                    "vf_drivers": vf_drivers,
                }
            )
        pfs.sort(key=lambda d: json.dumps(d, sort_keys=True))
        hugepages: dict[str, int] = {}
        for pool in self.hugepages:
            if pool.total == 0:  # an empty pool of a size the kernel offers changes nothing
                continue
            key = f"{pool.size_kib}kB/node{pool.node if pool.node is not None else '-'}"
            hugepages[key] = hugepages.get(key, 0) + pool.total
        return {
            "cpu_model": self.cpu_model,
            "sockets": self.sockets,
            "cores": self.cores,
            "threads": self.threads,
            "numa_nodes": len(self.numa_nodes) or None,
            "isolated_cpus": self.isolated_cpus,
            "nohz_full": self.nohz_full,
            "governors": sorted(self.governors),
            "hugepages": dict(sorted(hugepages.items())),
            "nics": pfs,
            "kernel": kernel_series(self.kernel),
            "trex_version": self.trex_version,
            "dpdk_version": self.dpdk_version,
        }

    @property
    def sha256(self) -> str:
        canonical = json.dumps(self.key_fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _nic_from_dict(data: Mapping[str, Any]) -> Nic:
    body = dict(data)
    body["interfaces"] = tuple(body.get("interfaces", ()))
    body["vfs"] = tuple(body.get("vfs", ()))
    return Nic(**body)


def kernel_series(release: str | None) -> str | None:
    """``5.15.0-91-generic`` -> ``5.15``: builds of one series perform alike."""
    if release is None:
        return None
    match = re.match(r"(\d+\.\d+)", release)
    return match.group(1) if match else release


def normalize_pci(address: str) -> str:
    """A PCI address with its domain (``3b:00.0`` -> ``0000:3b:00.0``), lower case."""
    address = address.strip().lower()
    return address if address.count(":") == 2 else f"0000:{address}"


def parse_cpulist(text: str) -> list[int]:
    """A kernel cpulist (``0-3,8,10-11``) as CPU numbers; flags such as ``domain,`` in an
    ``isolcpus=`` value are skipped."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part or not part[0].isdigit():
            continue
        low, _, high = part.partition("-")
        cpus.extend(range(int(low), int(high or low) + 1))
    return cpus


def format_cpulist(cpus: Iterable[int]) -> str:
    """CPU numbers as the kernel prints a cpulist."""
    ordered = sorted(set(cpus))
    runs: list[str] = []
    start = prev = None
    for cpu in [*ordered, None]:
        if cpu is not None and prev is not None and cpu == prev + 1:
            prev = cpu
            continue
        if start is not None:
            runs.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = cpu
    return ",".join(runs)


# --- collectors --------------------------------------------------------------------------


class _Collector:
    """Reads one host; each ``_collect_*`` fills part of ``facts`` or records a gap."""

    def __init__(self, fs: HostFS, runner: Runner | None, trex_dirs: Iterable[str]) -> None:
        self.fs = fs
        self.runner = runner if fs.root in ("", "/") else None
        self.trex_dirs = tuple(trex_dirs)
        self.facts: dict[str, Any] = {}
        self.missing: dict[str, str] = {}
        self._pci_names: dict[tuple[str, str], tuple[str | None, str | None]] | None = None

    def prefetch(self) -> None:
        """Tell the filesystem every path the collectors read, so a host reached with
        one command per file reads them all in one."""
        pci = f"{PCI_DEVICES}/*"
        patterns = [
            "/proc/cpuinfo",
            "/proc/cmdline",
            "/proc/meminfo",
            "/proc/sys/kernel/hostname",
            "/proc/sys/kernel/osrelease",
            "/etc/os-release",
            CPU_DIR,
            *(f"{CPU_DIR}/{name}" for name in ("online", "isolated", "nohz_full")),
            f"{CPU_DIR}/cpu*/topology/physical_package_id",
            f"{CPU_DIR}/cpu*/topology/core_id",
            f"{CPU_DIR}/cpu*/cpufreq/scaling_governor",
            NODE_DIR,
            f"{NODE_DIR}/node*/cpulist",
            f"{NODE_DIR}/node*/hugepages",
            f"{NODE_DIR}/node*/hugepages/hugepages-*/nr_hugepages",
            f"{NODE_DIR}/node*/hugepages/hugepages-*/free_hugepages",
            "/sys/kernel/mm/hugepages",
            "/sys/kernel/mm/hugepages/hugepages-*/nr_hugepages",
            "/sys/kernel/mm/hugepages/hugepages-*/free_hugepages",
            PCI_DEVICES,
            pci,
            *(f"{pci}/{name}" for name in PCI_ATTRIBUTES),
            f"{pci}/virtfn*",
            f"{pci}/net",
            f"{pci}/net/*/speed",
            f"{pci}/virtio*/net",
            f"{pci}/virtio*/net/*/speed",
            f"{pci}/infiniband",
            f"{pci}/infiniband/*/fw_ver",
            *PCI_IDS_PATHS,
            *(f"{d}/libdpdk.pc" for d in DPDK_PC_DIRS),
            *self.trex_dirs,
            *(f"{d}/v*" for d in self.trex_dirs),
        ]
        self.fs.prefetch(patterns)

    def text(self, path: str) -> str | None:
        value = self.fs.read_text(path)
        return None if value is None else value.strip()

    def integer(self, path: str) -> int | None:
        value = self.text(path)
        try:
            return None if value is None else int(value, 0)
        except ValueError:
            return None

    def command(self, command: str) -> str | None:
        if self.runner is None:
            return None
        result = self.runner.run(command, check=False, timeout_s=10.0)
        return result.stdout.strip() if result.ok else None

    def collect(self) -> Fingerprint:
        self.prefetch()
        for step in (
            self._collect_identity,
            self._collect_cpu,
            self._collect_numa,
            self._collect_isolation,
            self._collect_governors,
            self._collect_hugepages,
            self._collect_nics,
            self._collect_software,
        ):
            step()
        return Fingerprint(
            root=self.fs.root, collected_at=time.time(), missing=self.missing, **self.facts
        )

    # --- identity, kernel, OS -------------------------------------------------------

    def _collect_identity(self) -> None:
        self.facts["hostname"] = self.text("/proc/sys/kernel/hostname")
        kernel = self.text("/proc/sys/kernel/osrelease") or self.command("uname -r")
        if kernel is None:
            self.missing["kernel"] = "no /proc/sys/kernel/osrelease"
        self.facts["kernel"] = kernel
        os_release = self.fs.read_text("/etc/os-release")
        if os_release is None:
            self.missing["os"] = "no /etc/os-release"
            return
        values = dict(_os_release_items(os_release))
        self.facts["os"] = values.get("PRETTY_NAME") or values.get("NAME")

    # --- CPU ------------------------------------------------------------------------

    def _online_cpus(self) -> list[int]:
        online = self.text(f"{CPU_DIR}/online")
        if online is not None:
            return parse_cpulist(online)
        entries = self.fs.listdir(CPU_DIR) or []
        return sorted(int(e[3:]) for e in entries if re.fullmatch(r"cpu\d+", e))

    def _collect_cpu(self) -> None:
        cpuinfo = self.fs.read_text("/proc/cpuinfo") or ""
        processors = _cpuinfo_blocks(cpuinfo)
        models = [p.get("model name") for p in processors if p.get("model name")]
        self.facts["cpu_model"] = models[0] if models else None
        if not models:
            self.missing["cpu_model"] = "no 'model name' in /proc/cpuinfo"

        cpus = self._online_cpus()
        if not cpus:
            self.missing["cpu_topology"] = f"no CPUs listed in {CPU_DIR}"
            return
        self.facts["threads"] = len(cpus)
        topology = self._topology(cpus) or _topology_from_cpuinfo(processors)
        if not topology:
            self.missing["cpu_topology"] = "no topology in sysfs and no ids in /proc/cpuinfo"
            return
        self.facts["sockets"] = len({package for package, _ in topology})
        self.facts["cores"] = len(set(topology))

    def _topology(self, cpus: list[int]) -> list[tuple[int, int]]:
        """(package, core) per CPU from sysfs; [] when any CPU lacks it."""
        topology = []
        for cpu in cpus:
            base = f"{CPU_DIR}/cpu{cpu}/topology"
            package = self.integer(f"{base}/physical_package_id")
            core = self.integer(f"{base}/core_id")
            if package is None or core is None:
                return []
            topology.append((package, core))
        return topology

    def _collect_numa(self) -> None:
        entries = self.fs.listdir(NODE_DIR)
        nodes = sorted((int(e[4:]) for e in entries or () if re.fullmatch(r"node\d+", e)), key=int)
        if not nodes:
            self.missing["numa_nodes"] = f"no {NODE_DIR}/node* (kernel without NUMA)"
            return
        self.facts["numa_nodes"] = {
            str(n): self.text(f"{NODE_DIR}/node{n}/cpulist") or "" for n in nodes
        }

    def _collect_isolation(self) -> None:
        cmdline = self.text("/proc/cmdline")
        self.facts["cmdline"] = cmdline
        params = _cmdline_params(cmdline or "")
        if cmdline is None:
            self.missing["cmdline"] = "no /proc/cmdline"

        # The kernel's own view wins over the command line: it has already parsed
        # the flags (isolcpus=managed_irq,domain,2-31) and dropped invalid CPUs.
        isolated = self.text(f"{CPU_DIR}/isolated")
        if isolated is None and "isolcpus" in params:
            isolated = format_cpulist(parse_cpulist(params["isolcpus"]))
        if isolated is None:
            self.missing["isolated_cpus"] = f"no {CPU_DIR}/isolated and no isolcpus="
        self.facts["isolated_cpus"] = isolated

        nohz = self.text(f"{CPU_DIR}/nohz_full")
        if nohz in (None, "(null)"):
            nohz = params.get("nohz_full")
        if nohz is None:
            self.missing["nohz_full"] = "nohz_full is not set (no sysfs entry, no cmdline)"
        self.facts["nohz_full"] = nohz

    def _collect_governors(self) -> None:
        counts: Counter[str] = Counter()
        for cpu in self._online_cpus():
            governor = self.text(f"{CPU_DIR}/cpu{cpu}/cpufreq/scaling_governor")
            if governor:
                counts[governor] += 1
        if not counts:
            self.missing["governors"] = "no cpufreq scaling_governor (a VM, or cpufreq off)"
        self.facts["governors"] = dict(sorted(counts.items()))

    # --- hugepages ------------------------------------------------------------------

    def _pools(self, directory: str, node: int | None) -> list[HugepagePool]:
        pools = []
        for entry in self.fs.listdir(directory) or ():
            match = re.fullmatch(r"hugepages-(\d+)kB", entry)
            if not match:
                continue
            total = self.integer(f"{directory}/{entry}/nr_hugepages")
            if total is None:
                continue
            free = self.integer(f"{directory}/{entry}/free_hugepages")
            pools.append(HugepagePool(int(match.group(1)), node, total, free))
        return pools

    def _collect_hugepages(self) -> None:
        meminfo = self.fs.read_text("/proc/meminfo") or ""
        match = re.search(r"^Hugepagesize:\s+(\d+)\s*kB", meminfo, re.MULTILINE)
        self.facts["default_hugepage_kib"] = int(match.group(1)) if match else None

        pools: list[HugepagePool] = []
        for node in self.facts.get("numa_nodes", {}):
            pools.extend(self._pools(f"{NODE_DIR}/node{node}/hugepages", int(node)))
        if not pools:
            pools = self._pools("/sys/kernel/mm/hugepages", None)
        if not pools:
            self.missing["hugepages"] = "no hugepage pools in sysfs (hugetlbfs not built in)"
        self.facts["hugepages"] = tuple(pools)

    # --- NICs, SR-IOV, DPDK bindings ------------------------------------------------

    def pci_name(self, vendor_id: str, device_id: str) -> tuple[str | None, str | None]:
        if self._pci_names is None:
            self._pci_names = {}
            for path in PCI_IDS_PATHS:
                text = self.fs.read_text(path)
                if text is not None:
                    self._pci_names = _parse_pci_ids(text)
                    break
        key = (vendor_id, device_id)
        return self._pci_names.get(key) or KNOWN_NICS.get(key) or (None, None)

    def _netdevs(self, base: str) -> dict[str, str]:
        """The function's kernel netdevs: name -> its sysfs directory."""
        names = self.fs.listdir(f"{base}/net")
        if names is not None:
            return {name: f"{base}/net/{name}" for name in names}
        # virtio puts the netdev one level down (virtioN/net/ethX)
        for entry in self.fs.listdir(base) or ():
            if entry.startswith("virtio"):
                names = self.fs.listdir(f"{base}/{entry}/net") or []
                return {name: f"{base}/{entry}/net/{name}" for name in names}
        return {}

    def _link(self, path: str) -> str | None:
        target = self.fs.readlink(path)
        return None if target is None else target.rstrip("/").rsplit("/", 1)[-1]

    def _firmware(self, base: str, interfaces: tuple[str, ...]) -> str | None:
        # mlx5 publishes its firmware in sysfs through its RDMA device; others only
        # through ethtool, which needs a kernel netdev.
        for ib in self.fs.listdir(f"{base}/infiniband") or ():
            version = self.text(f"{base}/infiniband/{ib}/fw_ver")
            if version:
                return version
        for interface in interfaces:
            out = self.command(f"ethtool -i {shlex.quote(interface)}")
            for line in (out or "").splitlines():
                key, _, value = line.partition(":")
                if key.strip() == "firmware-version" and value.strip():
                    return value.strip()
        return None

    def _speed_bps(self, netdevs: dict[str, str]) -> float | None:
        for directory in netdevs.values():
            # sysfs gives Mb/s, and -1 (or EINVAL on read) when the link is down
            speed = self.integer(f"{directory}/speed")
            if speed is not None and speed > 0:
                return speed * 1e6
        return None

    def _nic(self, address: str, vendor_id: str, device_id: str) -> Nic:
        base = f"{PCI_DEVICES}/{address}"
        vendor, model = self.pci_name(vendor_id, device_id)
        netdevs = self._netdevs(base)
        interfaces = tuple(netdevs)
        numa = self.integer(f"{base}/numa_node")
        entries = self.fs.listdir(base) or []
        virtfns = sorted(
            (e for e in entries if re.fullmatch(r"virtfn\d+", e)), key=lambda e: int(e[6:])
        )
        return Nic(
            pci=address,
            vendor_id=vendor_id,
            device_id=device_id,
            vendor=vendor,
            model=model,
            driver=self._link(f"{base}/driver"),
            numa_node=numa if numa is not None and numa >= 0 else None,
            interfaces=interfaces,
            link_speed_bps=self._speed_bps(netdevs),
            firmware=self._firmware(base, interfaces),
            sriov_total_vfs=self.integer(f"{base}/sriov_totalvfs"),
            sriov_configured_vfs=self.integer(f"{base}/sriov_numvfs"),
            physfn=self._link(f"{base}/physfn"),
            vfs=tuple(v for v in (self._link(f"{base}/{e}") for e in virtfns) if v),
        )

    def _collect_nics(self) -> None:
        addresses = self.fs.listdir(PCI_DEVICES)
        if addresses is None:
            self.missing["nics"] = f"no {PCI_DEVICES}"
            self.facts["nics"] = ()
            return
        nics: list[Nic] = []
        dpdk: list[DpdkDevice] = []
        for address in addresses:
            base = f"{PCI_DEVICES}/{address}"
            pci_class = self.text(f"{base}/class") or ""
            vendor_id = self.text(f"{base}/vendor") or "?"
            device_id = self.text(f"{base}/device") or "?"
            if pci_class.startswith(NETWORK_CLASS_PREFIX):
                nics.append(self._nic(address, vendor_id, device_id))
            driver = self._link(f"{base}/driver")
            if driver in DPDK_DRIVERS:
                _, model = self.pci_name(vendor_id, device_id)
                dpdk.append(DpdkDevice(address, driver, vendor_id, device_id, model))
        if not nics:
            self.missing["nics"] = "no network-class PCI function"
        if not any(n.sriov_total_vfs for n in nics):
            self.missing["sriov"] = "no NIC with SR-IOV capability (sriov_totalvfs)"
        pfs = [n for n in nics if not n.is_vf]
        if no_firmware := [n.pci for n in pfs if n.firmware is None]:
            how = "ethtool not run under a root prefix" if self.runner is None else "no ethtool"
            self.missing["firmware"] = f"not found for {', '.join(no_firmware)} ({how})"
        if no_speed := [n.pci for n in pfs if n.link_speed_bps is None]:
            self.missing["link_speed"] = (
                f"unknown for {', '.join(no_speed)} (link down, or no kernel netdev)"
            )
        self.facts["nics"] = tuple(nics)
        self.facts["dpdk_devices"] = tuple(dpdk)

    # --- TRex and DPDK --------------------------------------------------------------

    def _collect_software(self) -> None:
        self.facts["trex_version"] = self._trex_version()
        if self.facts["trex_version"] is None:
            self.missing["trex_version"] = f"no TRex release under {', '.join(self.trex_dirs)}"
        self.facts["dpdk_version"] = self._dpdk_version()
        if self.facts["dpdk_version"] is None:
            self.missing["dpdk_version"] = "no libdpdk.pc and no dpdk package"

    def _trex_version(self) -> str | None:
        versions: list[str] = []
        for directory in self.trex_dirs:
            entries = self.fs.listdir(directory)
            if entries is None:
                continue
            # a release directory itself, or a link to one (/opt/trex/current -> v3.04)
            named = self.fs.readlink(directory) or directory
            name = named.rstrip("/").rsplit("/", 1)[-1]
            if "t-rex-64" in entries and re.fullmatch(r"v\d+\.\d+", name):
                versions.append(name)
            versions.extend(
                e
                for e in entries
                if re.fullmatch(r"v\d+\.\d+", e) and self.fs.listdir(f"{directory}/{e}")
            )
        if not versions:
            return None
        return max(versions, key=lambda v: tuple(int(x) for x in v[1:].split(".")))

    def _dpdk_version(self) -> str | None:
        for directory in DPDK_PC_DIRS:
            text = self.fs.read_text(f"{directory}/libdpdk.pc")
            match = re.search(r"^Version:\s*(\S+)", text or "", re.MULTILINE)
            if match:
                return match.group(1)
        return self.command("dpkg-query -W -f='${Version}' dpdk")


def _os_release_items(text: str) -> Iterable[tuple[str, str]]:
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            yield key.strip(), value.strip().strip("\"'")


def _cpuinfo_blocks(text: str) -> list[dict[str, str]]:
    blocks = []
    for block in text.split("\n\n"):
        entry = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                entry[key.strip()] = value.strip()
        if "processor" in entry:
            blocks.append(entry)
    return blocks


def _topology_from_cpuinfo(processors: list[dict[str, str]]) -> list[tuple[int, int]]:
    out = []
    for p in processors:
        if "physical id" not in p or "core id" not in p:
            return []
        out.append((int(p["physical id"]), int(p["core id"])))
    return out


def _cmdline_params(cmdline: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for word in cmdline.split():
        if word == "--":  # what follows goes to init, not to the kernel
            break
        key, _, value = word.partition("=")
        params[key] = value
    return params


def _parse_pci_ids(text: str) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """Vendor and device names from a pci.ids database (``vvvv  name`` lines, then
    ``\\tdddd  name`` lines for that vendor's devices)."""
    names: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    vendor_id = vendor = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("C "):  # the device class section follows the vendors
            break
        if not line.startswith("\t"):
            raw_id, _, raw_name = line.partition("  ")
            vendor_id, vendor = f"0x{raw_id.strip().lower()}", raw_name.strip()
        elif not line.startswith("\t\t") and vendor_id is not None:
            device_id, _, model = line.strip().partition("  ")
            names[(vendor_id, f"0x{device_id.lower()}")] = (vendor, model.strip())
    return names


def collect_fingerprint(
    runner: Runner,
    *,
    root: str = "/",
    trex_dirs: Iterable[str] = DEFAULT_TREX_DIRS,
    fs: HostFS | None = None,
) -> Fingerprint:
    """Fingerprint the host behind ``runner``; ``root`` points the collectors at a tree
    (a fixture, a chroot) instead of the host's own procfs and sysfs, and ``fs`` chooses
    how files are read (the runner's own way by default)."""
    fs = runner.filesystem(root) if fs is None else fs
    fingerprint = _Collector(fs, runner, trex_dirs).collect()
    log.info(
        "%s: fingerprint %s (%d NICs, %d gaps)",
        runner.name,
        fingerprint.sha256[:12],
        len(fingerprint.nics),
        len(fingerprint.missing),
    )
    return fingerprint


def local_fingerprint(
    root: str = "/", trex_dirs: Iterable[str] = DEFAULT_TREX_DIRS
) -> Fingerprint:
    """This machine's fingerprint: what the embedded lab records as its testbed."""
    return collect_fingerprint(LocalRunner(), root=root, trex_dirs=trex_dirs)


def manifest_fingerprint(hosts: Iterable[tuple[str, str, Fingerprint]]) -> dict[str, Any]:
    """The testbed's fingerprint for a run manifest, from (name, role, fingerprint) per
    host; its hash covers each host's role and key fields, not the host names."""
    entries: list[dict[str, Any]] = []
    keys: list[str] = []
    for name, role, fp in hosts:
        entries.append({"name": name, "role": role, "fingerprint": fp.to_dict()})
        keys.append(f"{role}:{fp.sha256}")
    keys.sort()
    return {
        "schema_version": SCHEMA_VERSION,
        "hosts": entries,
        "sha256": hashlib.sha256("\n".join(keys).encode()).hexdigest(),
    }
