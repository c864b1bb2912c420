"""The lab's supervisor: one process that owns the clock, the data plane and the servers.

``python -m lab up --state-dir DIR`` builds a `LabContext` (virtual clock, data plane
of one vendor model, seeded), starts every service in `SERVICES` on loopback, then
writes ``DIR/state.json`` atomically with the endpoints each service published.  It
runs until SIGTERM or SIGINT, stops the services in reverse order and removes
``state.json``, so nothing is left running or advertised.

A service is anything with a ``name``, ``start(ctx) -> endpoints`` and ``stop()``.
To add one (a Kubernetes-API server, an NFVBench server), write a class with that
shape and append its factory to `SERVICES` before `ControlService`; the control
channel serves the routes services register in ``ctx.routes``.

state.json (schema_version 1)::

    {"schema_version": 1, "pid": 123, "seed": 1, "time_scale": 200.0,
     "vendor": "vpp-router", "replicas": 1, "started_at": "...", "host": "127.0.0.1",
     "trex": {"host", "sync_port", "async_port", "api"},
     "kubernetes": {"url", "kubeconfig", "context", "version", "nodes", "vfs_per_node"},
     "nfvbench": {"url"}, "control": {"url"}, "services": {name: endpoints, ...}}
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lab.clock import VirtualClock
from lab.control import ControlService, trex_routes
from lab.dataplane import DataPlane, load_vendor
from lab.errors import LabError
from lab.k8s.service import KubernetesService
from lab.nfvbench_server import NfvbenchService
from lab.trex import TRexServer

log = logging.getLogger(__name__)

STATE_SCHEMA_VERSION = 1
STATE_FILE = "state.json"
LOOPBACK = "127.0.0.1"
WARM_SINCE_S = -1e6  # replicas given at start became ready long ago: already warm

Route = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class LabOptions:
    state_dir: Path
    seed: int = 1
    time_scale: float = 200.0
    vendor: str = "vpp-router"
    replicas: int = 1
    noise: bool = True
    port_speed_bps: float = 25e9
    trex_sync_port: int = 0
    trex_async_port: int = 0
    trex_api: str = "auto"
    control_port: int = 0
    nodes: int = 3  # the Kubernetes-compatible cluster's worker nodes
    vfs_per_node: int = 8  # SR-IOV VFs each node's device plugin offers
    k8s_port: int = 0
    k8s_version: str = "v1.32.4"  # what the Kubernetes API server reports as its version


@dataclass
class LabContext:
    """What every service of one lab shares."""

    options: LabOptions
    clock: VirtualClock
    dataplane: DataPlane
    host: str = LOOPBACK
    services: dict[str, Service] = field(default_factory=dict)
    # Control routes: (HTTP method, path) -> handler(request JSON or query) -> JSON.
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)


class Service(Protocol):
    name: str

    def start(self, ctx: LabContext) -> dict[str, Any]: ...

    def stop(self) -> None: ...


class TRexService:
    """The TRex-compatible server over the lab's data plane."""

    name = "trex"

    def __init__(self) -> None:
        self.server: TRexServer | None = None

    def start(self, ctx: LabContext) -> dict[str, Any]:
        opts = ctx.options
        self.server = TRexServer(
            ctx.dataplane,
            ctx.clock,
            host=ctx.host,
            sync_port=opts.trex_sync_port,
            async_port=opts.trex_async_port,
            api=opts.trex_api,
        )
        self.server.start()
        ctx.routes.update(trex_routes(self.server))
        return {**self.server.endpoints(), "api": opts.trex_api}

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


# Started in this order, stopped in reverse.  The control channel comes last so that it
# can serve every route the others registered.
SERVICES: list[Callable[[], Service]] = [
    TRexService,
    KubernetesService,
    NfvbenchService,
    ControlService,
]


class Supervisor:
    def __init__(self, options: LabOptions) -> None:
        self.options = options
        self.ctx: LabContext | None = None
        self._started: list[Service] = []
        self._stop = threading.Event()

    @property
    def state_path(self) -> Path:
        return self.options.state_dir / STATE_FILE

    def build(self) -> LabContext:
        opts = self.options
        if opts.replicas < 0:
            raise LabError(f"replicas must not be negative: {opts.replicas}")
        model = load_vendor(opts.vendor)
        dataplane = DataPlane(
            model, opts.seed, (opts.port_speed_bps, opts.port_speed_bps), noise=opts.noise
        )
        dataplane.set_replicas(opts.replicas, at_s=WARM_SINCE_S)
        return LabContext(opts, VirtualClock(opts.time_scale), dataplane)

    def start(self) -> dict[str, Any]:
        """Start every service and publish state.json; returns the state written."""
        self.ctx = ctx = self.build()
        endpoints: dict[str, dict[str, Any]] = {}
        try:
            for factory in SERVICES:
                service = factory()
                endpoints[service.name] = service.start(ctx)
                ctx.services[service.name] = service
                self._started.append(service)
        except (OSError, LabError):
            self.stop_services()
            raise
        state = self._state(endpoints)
        write_json_atomic(self.state_path, state)
        log.info("lab up: %s", json.dumps(state))
        return state

    def _state(self, endpoints: dict[str, dict[str, Any]]) -> dict[str, Any]:
        opts = self.options
        return {
            "schema_version": STATE_SCHEMA_VERSION,
            "pid": os.getpid(),
            "seed": opts.seed,
            "time_scale": opts.time_scale,
            "vendor": opts.vendor,
            "replicas": opts.replicas,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": LOOPBACK,
            "state_dir": str(opts.state_dir),
            **{
                name: ep
                for name, ep in endpoints.items()
                if name in ("trex", "control", "kubernetes", "nfvbench")
            },
            "services": endpoints,
        }

    def serve_forever(self) -> None:
        """Run until SIGTERM or SIGINT, then stop everything and withdraw state.json."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda _n, _f: self._stop.set())
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            self.shutdown()

    def request_stop(self) -> None:
        self._stop.set()

    def stop_services(self) -> None:
        while self._started:
            service = self._started.pop()
            try:
                service.stop()
            except OSError as exc:
                log.warning("stopping %s: %s", service.name, exc)

    def shutdown(self) -> None:
        self.stop_services()
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if state.get("pid") == os.getpid():
            self.state_path.unlink(missing_ok=True)
        log.info("lab down")


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so a reader sees the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
