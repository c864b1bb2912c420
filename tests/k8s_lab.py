"""The lab's Kubernetes API server in-process, for the k8s and cluster-driver tests.

`lab_api()` starts an `ApiServer` on a free loopback port over a virtual clock and a
real data-plane model, writes its kubeconfig, and gives helpers to run the real kubectl
and to build the official client.  Timings run in lab time at `time_scale`, so a pod's
few seconds of start-up take tens of milliseconds.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config

from lab.clock import VirtualClock
from lab.dataplane import DataPlane, load_vendor
from lab.k8s import ApiServer, ClusterShape, PodTiming
from lab.k8s.kubeconfig import kubeconfig_text
from lab.k8s.service import vendor_model

KUBECTL = "kubectl"


@dataclass
class LabApi:
    server: ApiServer
    kubeconfig: Path
    dataplane: DataPlane
    clock: VirtualClock
    cache_dir: Path

    def kubectl(
        self, *args: str, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        done = subprocess.run(
            [KUBECTL, "--cache-dir", str(self.cache_dir), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}"
            )
        return done

    @functools.cached_property
    def client(self) -> client.ApiClient:
        """One official client on the lab's kubeconfig, shared by a test's calls."""
        return self.api_client()

    def api_client(self, token: str | None = None) -> client.ApiClient:
        """A new official client on the lab's kubeconfig (or one with another token)."""
        path = self.kubeconfig
        if token is not None:
            path = self.kubeconfig.with_name(f"kubeconfig-{abs(hash(token))}")
            path.write_text(kubeconfig_text(self.server.url, token, ca_pem=self.server.tls.ca_pem))
        configuration = client.Configuration()
        config.load_kube_config(
            config_file=str(path), client_configuration=configuration, persist_config=False
        )
        return client.ApiClient(configuration)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
        token: str | None = None,
        accept: str = "application/json",
    ) -> tuple[int, bytes]:
        """One raw HTTPS request to the server: (status, body)."""
        context = ssl.create_default_context(cadata=self.server.tls.ca_pem.decode())
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.server.port, context=context, timeout=30
        )
        url = path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Authorization": f"Bearer {token or self.server.token}", "Accept": accept}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        try:
            conn.request(method, url, body=data, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def wait_for(self, what: Callable[[], Any], timeout_s: float = 10.0) -> Any:
        """Wait (wall seconds) until `what()` is truthy and return it."""
        end = time.monotonic() + timeout_s
        while True:
            value = what()
            if value:
                return value
            if time.monotonic() > end:
                raise AssertionError(f"condition not met within {timeout_s} s")
            time.sleep(0.01)


@contextmanager
def lab_api(
    tmp_path: Path,
    *,
    time_scale: float = 50.0,
    nodes: int = 3,
    vfs_per_node: int = 8,
    timing: PodTiming | None = None,
    vendor: str = "vpp-router",
) -> Iterator[LabApi]:
    clock = VirtualClock(time_scale)
    dataplane = DataPlane(load_vendor(vendor), seed=1, noise=False)
    server = ApiServer(
        clock=clock,
        shape=ClusterShape(nodes=nodes, vfs_per_node=vfs_per_node),
        timing=timing,
        sink=dataplane,
        models=vendor_model,
    )
    server.start()
    try:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        yield LabApi(server, kubeconfig, dataplane, clock, tmp_path / "kube-cache")
    finally:
        server.stop()


SRIOV_NADS = """
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: sriov-west, namespace: NS}
spec: {config: '{"type":"sriov"}'}
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: sriov-east, namespace: NS}
spec: {config: '{"type":"sriov"}'}
"""


def deployment(
    name: str = "router",
    *,
    replicas: int = 1,
    image: str = "registry.lab.local/cnfbench/vpp-router:24.02",
    vfs: int = 2,
    max_surge: int | str = 1,
    max_unavailable: int | str = 0,
    readiness: bool = True,
    liveness: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A CNF-like Deployment: SR-IOV VFs on two Multus networks, hugepages, probes."""
    requests = {"cpu": "2", "memory": "2Gi", "hugepages-1Gi": "1Gi"}
    if vfs:
        requests["intel.com/sriov_netdevice"] = str(vfs)
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "resources": {"requests": dict(requests), "limits": dict(requests)},
    }
    if readiness:
        container["readinessProbe"] = {
            "httpGet": {"path": "/ready", "port": 8080},
            "initialDelaySeconds": 1,
            "periodSeconds": 1,
        }
    if liveness:
        container["livenessProbe"] = liveness
    pod_annotations = {"k8s.v1.cni.cncf.io/networks": "sriov-west,sriov-east"} if vfs else {}
    pod_annotations.update(annotations or {})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable},
            },
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": pod_annotations},
                "spec": {"terminationGracePeriodSeconds": 5, "containers": [container]},
            },
        },
    }
