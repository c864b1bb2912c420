"""The testbed a run works on: lab or real hardware, generator, cluster, and cleanup.

`Environment` turns a run's profiles into live handles: it starts an ephemeral embedded
lab when the testbed profile has a ``lab:`` section (or attaches to a running one named
by ``lab.state_dir``), opens the traffic generator and the cluster, and undoes all of it
in `cleanup`, which is safe to call after any failure or interrupt: traffic stopped and
ports released, the workload back at its original replica count, the lab stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench import checkstage
from bench.cluster import (
    Cluster,
    ClusterError,
    Installation,
    ObjectRef,
    WorkloadNotFound,
    WorkloadRef,
)
from bench.errors import BenchError, InputError
from bench.hosts.probe import fingerprint_testbed
from bench.labctl import LabHandle, read_lab, start_lab
from bench.profiles import CnfProfile, RunBundle, TestbedProfile
from bench.progress import RunProgress
from bench.store import RunStore
from bench.sweep import PointOutcome
from traffic.errors import GeneratorError
from traffic.generators import make_generator
from traffic.model import Generator

log = logging.getLogger(__name__)

NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status"


class ClusterWorkload:
    """The sweep's view of the CNF workload on the cluster (`bench.sweep.Workload`)."""

    def __init__(self, cluster: Cluster, cnf: CnfProfile) -> None:
        self.cluster = cluster
        self.cnf = cnf
        self.ref = WorkloadRef.of(cnf)

    def scale_to(self, replicas: int) -> float:
        result = self.cluster.scale(self.ref, replicas)
        return float(result.time_to_ready_s or 0.0)

    def replica_macs(self) -> Mapping[int, tuple[str, ...]]:
        """Per generator port, the MAC of each ready pod's interface that faces it."""
        wanted = {p.generator_port: (p.network, p.cnf_interface) for p in self.cnf.ports}
        macs: dict[int, list[str]] = {port: [] for port in wanted}
        for pod in self.cluster.pods(self.ref):
            if not pod.ready or pod.terminating:
                continue
            for port, (network, interface) in wanted.items():
                for attachment in pod.networks:
                    named = network and attachment.name.split("/")[-1] == network
                    if attachment.mac and (attachment.interface == interface or named):
                        macs[port].append(attachment.mac)
                        break
        return {port: tuple(sorted(found)) for port, found in macs.items()}


class Environment:
    # Stages a resumed run does not repeat; the probe always runs again, since a
    # resumed run must be on the testbed it started on.
    skippable_when_done: frozenset[str] = frozenset()

    def __init__(
        self, bundle: RunBundle, store: RunStore, progress: RunProgress, force: bool = False
    ) -> None:
        self.bundle = bundle
        self.store = store
        self.progress = progress
        self.force = force
        self.testbed: TestbedProfile = bundle.testbed.profile
        self.cnf: CnfProfile = bundle.cnf.profile
        self.lab: LabHandle | None = None
        self.installation: Installation | None = None
        self._lab_dir: tempfile.TemporaryDirectory[str] | None = None
        self.generator: Generator
        self.cluster: Cluster
        self.workload: ClusterWorkload
        self.original_replicas: int | None = None
        self.restored = False
        self.sweep_results: dict[str, PointOutcome] = {}

    # --- setting up -----------------------------------------------------------------------

    @property
    def port_speed_bps(self) -> float:
        return min(p.speed for p in self.testbed.generator.ports)

    def enter(self) -> None:
        self._start_lab()
        self.cluster = self._open_cluster()
        self.workload = ClusterWorkload(self.cluster, self.cnf)
        self.generator = self._make_generator()
        info = self.generator.open()
        self.store.update_manifest(
            generator={
                "kind": info.kind,
                "version": info.version,
                "client": info.client,
                "ports": [
                    {"port_id": p.port_id, "speed_bps": p.speed_bps, "mac": p.mac}
                    for p in info.ports
                ],
            }
        )

    def _start_lab(self) -> None:
        lab = self.testbed.lab
        if lab is None:
            return
        if lab.state_dir:
            endpoints = read_lab(Path(lab.state_dir).expanduser())
            self.lab = LabHandle(endpoints, None)
            log.info("using the running lab in %s", endpoints.state_dir)
            return
        self._lab_dir = tempfile.TemporaryDirectory(prefix="cnfbench-lab-")
        self.lab = start_lab(
            Path(self._lab_dir.name),
            seed=lab.seed,
            time_scale=lab.time_scale,
            replicas=0,
            extra_args=[
                "--nodes",
                str(lab.nodes),
                "--vfs-per-node",
                str(lab.vfs_per_node),
                "--exit-with",
                str(os.getpid()),
            ],
        )

    def _open_cluster(self) -> Cluster:
        if self.lab is not None:
            return Cluster.from_lab(self.lab.endpoints)
        return Cluster.from_spec(self.testbed.cluster, base_dir=self.bundle.testbed.path.parent)

    def _make_generator(self) -> Generator:
        spec = self.testbed.generator
        if self.lab is not None:
            # the lab's servers listen on ports of its own choosing
            ep = self.lab.endpoints
            spec = spec.model_copy(
                update={
                    "host": ep.trex_host,
                    "sync_port": ep.trex_sync_port,
                    "async_port": ep.trex_async_port,
                    "nfvbench_url": ep.services.get("nfvbench", {}).get("url"),
                }
            )
        return make_generator(spec, rx_delay_s=self.bundle.traffic.profile.rx_delay)

    # --- stages ---------------------------------------------------------------------------

    def probe(self) -> None:
        fingerprint = fingerprint_testbed(self.testbed)
        stored = (self.store.manifest.get("testbed") or {}).get("fingerprint_sha256")
        if stored and stored != fingerprint["sha256"] and not self.force:
            raise InputError(
                f"{self.store.directory}: the testbed fingerprint changed since this run "
                "started; resuming would mix results from two testbeds (use --force to "
                "resume anyway)"
            )
        version = self.cluster.version()
        nodes = [
            {"name": n.name, "ready": n.ready, "allocatable": n.allocatable}
            for n in self.cluster.nodes()
        ]
        self.store.update_manifest(
            testbed={
                "name": self.testbed.name,
                "steering": self.testbed.steering,
                "fingerprint": fingerprint,
                "fingerprint_sha256": fingerprint["sha256"],
                "comparison": fingerprint.get("comparison"),
            },
            cluster={
                "version": version.git_version,
                "minor": version.short,
                "platform": version.platform,
                "server": self.cluster.server,
                "nodes": nodes,
            },
        )

    def install(self) -> None:
        stored = self._stored_installation()
        if stored is not None and self._workload_exists():
            # a resumed run on a cluster that still runs the CNF: keep it as it is
            self.installation = stored
            self.original_replicas = int(self.store.manifest["cnf"]["original_replicas"])
            log.info("%s is still installed; resuming on it", self.workload.ref)
            return
        installation, ready = self.cluster.install(self.cnf, self.bundle.cnf.path.parent)
        self.installation = installation
        self.original_replicas = self.cluster.remember_replicas(self.workload.ref)
        manifest = self.store.manifest
        cnf: dict[str, Any] = dict(manifest.get("cnf") or {})
        cnf.update(
            images=list(installation.images),
            chart_id=installation.chart,
            rendered_sha256=installation.rendered_sha256,
            installation=dataclasses.asdict(installation),
            original_replicas=self.original_replicas,
            time_to_ready_s=ready.time_to_ready_s if ready else None,
        )
        self.store.update_manifest(cnf=cnf)

    def _workload_exists(self) -> bool:
        try:
            self.cluster.workload(self.workload.ref)
        except WorkloadNotFound:
            return False
        return True

    def _stored_installation(self) -> Installation | None:
        record = (self.store.manifest.get("cnf") or {}).get("installation")
        if not record:
            return None
        return Installation(
            release=record["release"],
            namespace=record["namespace"],
            method=record["method"],
            workload=WorkloadRef(**record["workload"]),
            objects=tuple(ObjectRef(**o) for o in record["objects"]),
            images=tuple(record["images"]),
            rendered_sha256=record["rendered_sha256"],
            chart=record.get("chart"),
            created_namespace=bool(record.get("created_namespace")),
        )

    def checks(self) -> None:
        checkstage.run_checks(self)

    def restore(self) -> None:
        if self.original_replicas is None:
            stored = (self.store.manifest.get("cnf") or {}).get("original_replicas")
            self.original_replicas = int(stored) if stored is not None else None
        if self.original_replicas is not None:
            self.cluster.scale(self.workload.ref, self.original_replicas, require_ready=False)
        self.restored = True

    def uninstall(self) -> None:
        installation = self.installation or self._stored_installation()
        if installation is not None:
            self.cluster.uninstall(installation)
        self.restored = True

    # --- tearing down -----------------------------------------------------------------------

    def cleanup(self) -> None:
        """Undo what `enter` and the stages did; never raises for a second failure."""
        generator = getattr(self, "generator", None)
        if generator is not None:
            try:
                generator.close()
            except GeneratorError as exc:
                log.warning("closing the generator: %s", exc)
        if not self.restored and getattr(self, "cluster", None) is not None:
            try:
                self.restore()
            except (ClusterError, BenchError) as exc:
                log.warning("restoring the original replica count: %s", exc)
        if self.lab is not None and self._lab_dir is not None:
            try:
                self.lab.stop()
            except BenchError as exc:
                log.warning("stopping the lab: %s", exc)
            self._lab_dir.cleanup()
            self._lab_dir = None
