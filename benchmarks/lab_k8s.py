"""The lab's Kubernetes API server: request latency, watch latency, and lifecycle timings.

Measured against an in-process lab API server (TLS, bearer token) with the official
client and the cluster driver:

1. request latency of ``list pods`` (40 pods in the namespace) and ``get deployment``;
2. watch latency: from a write returning to its MODIFIED event arriving on a watch;
3. lifecycle timings, in lab seconds, reported by `bench.cluster.Cluster` and compared
   with what the lab's model prescribes for the vpp-router chart: scale 1 -> 8 (image
   pull 4 s + start 1 s + application init 2 s, probes every 2 s: 7 s), 8 -> 1 (the
   process exits 1 s after SIGTERM), a deleted pod's recovery (no pull: 3 s), and a
   rolling update of 8 replicas with maxSurge 1 and maxUnavailable 0.

Each lifecycle timing is printed with the model's figure and the excess in wall
milliseconds: the overhead of the controller's passes, the watch and the client, which
weighs more in lab seconds as the time scale grows (the lab then reads slower than the
model).  Targets: p99 request latency under 50 ms; overhead under 100 wall ms per
measurement (under 2 lab s at time scale 20, which tests of timings should use).

Run: ``python benchmarks/lab_k8s.py [--time-scale 20 50 200]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubernetes import client, watch

from bench.cluster import Cluster
from bench.profiles import CnfProfile, load_profile
from lab.clock import VirtualClock
from lab.dataplane import DataPlane, load_vendor
from lab.k8s import ApiServer
from lab.k8s.service import vendor_model

CNF_DIR = Path(__file__).resolve().parent.parent / "profiles" / "cnfs"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def request_latency(api: client.ApiClient, namespace: str, n: int) -> dict[str, float]:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    lists, gets = [], []
    for _ in range(n):
        t = time.perf_counter()
        core.list_namespaced_pod(namespace)
        lists.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        apps.read_namespaced_deployment("router", namespace)
        gets.append((time.perf_counter() - t) * 1e3)
    return {
        "list_p50_ms": statistics.median(lists),
        "list_p99_ms": percentile(lists, 0.99),
        "get_p50_ms": statistics.median(gets),
        "get_p99_ms": percentile(gets, 0.99),
    }


def watch_latency(api: client.ApiClient, namespace: str, n: int) -> dict[str, float]:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "probe"}})
    rv = core.read_namespaced_config_map("probe", namespace).metadata.resource_version
    sent: dict[str, float] = {}
    delays: list[float] = []
    done = threading.Event()

    def consume() -> None:
        stream = watch.Watch()
        for event in stream.stream(
            core.list_namespaced_config_map,
            namespace,
            resource_version=rv,
            field_selector="metadata.name=probe",
            timeout_seconds=60,
        ):
            mark = (event["object"].data or {}).get("i")
            if mark in sent:
                delays.append((time.perf_counter() - sent[mark]) * 1e3)
            if len(delays) >= n:
                stream.stop()
        done.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    time.sleep(0.2)
    for i in range(n):
        core.patch_namespaced_config_map("probe", namespace, {"data": {"i": str(i)}})
        sent[str(i)] = time.perf_counter()
        time.sleep(0.005)
    done.wait(30)
    return {"watch_p50_ms": statistics.median(delays), "watch_p99_ms": percentile(delays, 0.99)}


def lifecycle(cluster: Cluster) -> dict[str, Any]:
    cnf: CnfProfile = load_profile(CNF_DIR / "vpp-router.yaml", CnfProfile).profile
    installation, _ = cluster.install(cnf, CNF_DIR, timeout_s=300)
    ref = installation.workload
    up = cluster.scale(ref, 8, timeout_s=300)
    down = cluster.scale(ref, 1, timeout_s=300)
    cluster.scale(ref, 4, timeout_s=300)
    recovery = cluster.delete_pod(ref, timeout_s=300)
    cluster.scale(ref, 8, timeout_s=300)
    rollout = cluster.rollout(ref, "registry.lab.local/cnfbench/vpp-router:24.06", timeout_s=900)
    cluster.uninstall(installation)
    return {
        "scale_1_8_s": up.time_to_ready_s,
        "scale_8_1_s": down.time_to_ready_s,
        "recovery_s": recovery.time_to_recovered_s,
        "rollout_8_s": rollout.duration_s,
    }


# What the lab's model prescribes, in lab seconds.  Scaling down is complete as soon as
# the replica set has marked the extra pods for deletion (they no longer count).
MODEL = {"scale_1_8_s": 7.0, "scale_8_1_s": 0.0, "recovery_s": 3.0}


def run(time_scale: float) -> None:
    clock = VirtualClock(time_scale)
    plane = DataPlane(load_vendor("vpp-router"), seed=1, noise=False)
    server = ApiServer(clock=clock, sink=plane, models=vendor_model)
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = server.write_kubeconfig(Path(tmp) / "kubeconfig")
            with Cluster.connect(kubeconfig, time_scale=time_scale) as cluster:
                timings = lifecycle(cluster)
                core = client.CoreV1Api(cluster.api)
                core.create_namespace({"metadata": {"name": "bench"}})
                for i in range(40):
                    core.create_namespaced_pod(
                        "bench",
                        {
                            "metadata": {"name": f"p{i}"},
                            "spec": {"containers": [{"name": "c", "image": "x:1"}]},
                        },
                    )
                client.AppsV1Api(cluster.api).create_namespaced_deployment(
                    "bench",
                    {
                        "metadata": {"name": "router"},
                        "spec": {
                            "selector": {"matchLabels": {"a": "b"}},
                            "template": {
                                "metadata": {"labels": {"a": "b"}},
                                "spec": {"containers": [{"name": "c", "image": "x:1"}]},
                            },
                        },
                    },
                )
                latency = request_latency(cluster.api, "bench", 300)
                latency.update(watch_latency(cluster.api, "bench", 100))
    finally:
        server.stop()
    print(f"time scale {time_scale:g}")
    for key, value in latency.items():
        print(f"  {key:16} {value:8.2f}")
    for key, value in timings.items():
        model = MODEL.get(key)
        extra = ""
        if model is not None and value is not None:
            # The excess over the model is wall-clock overhead (passes, watch, client).
            overhead_ms = (value - model) / time_scale * 1e3
            extra = f"  model {model:5.2f} lab s, overhead {overhead_ms:6.1f} wall ms"
        print(f"  {key:16} {value:8.2f} lab s{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, nargs="+", default=[20.0, 50.0, 200.0])
    args = parser.parse_args()
    for scale in args.time_scale:
        run(scale)


if __name__ == "__main__":
    main()
