"""The Kubernetes API server as a service of the lab supervisor.

`KubernetesService.start` builds the API server over the lab's clock and data plane
(Ready pods whose image names a vendor model join it), writes ``<state-dir>/kubeconfig``
and returns the endpoints the supervisor publishes in ``state.json``::

    {"url": "https://127.0.0.1:PORT", "kubeconfig": ".../kubeconfig",
     "context": "cnfbench-lab", "version": "v1.32.4", "nodes": 3, "vfs_per_node": 8}
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.dataplane import VendorModel, load_vendor, vendor_names
from lab.k8s.nodes import ClusterShape
from lab.k8s.server import ApiServer

if TYPE_CHECKING:
    from lab.supervisor import LabContext

log = logging.getLogger(__name__)

KUBECONFIG_FILE = "kubeconfig"
CONTEXT = "cnfbench-lab"


def vendor_model(name: str) -> VendorModel | None:
    """The lab's model for an image's name, or None when the image is no known CNF."""
    return load_vendor(name) if name in vendor_names() else None


class KubernetesService:
    name = "kubernetes"

    def __init__(self) -> None:
        self.server: ApiServer | None = None
        self.kubeconfig: Path | None = None

    def start(self, ctx: LabContext) -> dict[str, Any]:
        opts = ctx.options
        shape = ClusterShape(nodes=opts.nodes, vfs_per_node=opts.vfs_per_node)
        self.server = ApiServer(
            clock=ctx.clock,
            shape=shape,
            sink=ctx.dataplane,
            models=vendor_model,
            seed=opts.seed,
            port=opts.k8s_port,
            version=opts.k8s_version,
        )
        self.server.start()
        path = self.kubeconfig = self.server.write_kubeconfig(opts.state_dir / KUBECONFIG_FILE)
        return {
            "url": self.server.url,
            "kubeconfig": str(path),
            "context": CONTEXT,
            "version": self.server.version,
            "nodes": shape.nodes,
            "vfs_per_node": shape.vfs_per_node,
        }

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.kubeconfig is not None:
            # Its token dies with the server; leave no stale credential behind.
            self.kubeconfig.unlink(missing_ok=True)
