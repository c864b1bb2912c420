"""The lab cluster's worker nodes: capacity, allocatable, and their SR-IOV VFs.

Each node has one SR-IOV physical function whose virtual functions the device plugin
advertises as the extended resource `ClusterShape.sriov_resource`.  A VF has a PCI
address and a MAC, both derived from the node index so that they are stable for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SRIOV_RESOURCE = "intel.com/sriov_netdevice"


@dataclass(frozen=True)
class ClusterShape:
    """How many nodes the lab cluster has and what each offers."""

    nodes: int = 3
    vfs_per_node: int = 8
    cpu_per_node: int = 32
    memory_per_node: str = "128Gi"
    hugepages_1gi_per_node: int = 16
    pods_per_node: int = 110
    sriov_resource: str = SRIOV_RESOURCE
    kubelet_version: str = "v1.32.4"
    # CPUs and memory the kubelet reserves for the system: capacity minus allocatable.
    reserved_cpu: int = 2
    reserved_memory: str = "4Gi"

    def node_name(self, index: int) -> str:
        return f"worker-{index}"


@dataclass(frozen=True)
class VirtualFunction:
    node: str
    index: int
    pf: str
    pci_address: str
    mac: str


def node_vfs(shape: ClusterShape, node_index: int) -> list[VirtualFunction]:
    """The VFs of one node's PF: PCI ``0000:3b:02.0`` onward, locally administered MACs."""
    out = []
    for vf in range(shape.vfs_per_node):
        device, function = 2 + vf // 8, vf % 8
        pci = f"0000:3b:{device:02x}.{function}"
        mac = f"02:5e:{node_index:02x}:3b:{device:02x}:{function:02x}"
        out.append(VirtualFunction(shape.node_name(node_index), vf, "ens1f0", pci, mac))
    return out


def _memory_gi(text: str) -> int:
    return int(text.removesuffix("Gi"))


def node_object(shape: ClusterShape, index: int, created: str) -> dict[str, Any]:
    name = shape.node_name(index)
    hugepages = f"{shape.hugepages_1gi_per_node}Gi"
    capacity = {
        "cpu": str(shape.cpu_per_node),
        "memory": shape.memory_per_node,
        "hugepages-1Gi": hugepages,
        "hugepages-2Mi": "0",
        "ephemeral-storage": "479Gi",
        "pods": str(shape.pods_per_node),
        shape.sriov_resource: str(shape.vfs_per_node),
    }
    memory_left = _memory_gi(shape.memory_per_node) - _memory_gi(shape.reserved_memory)
    allocatable = dict(capacity)
    allocatable["cpu"] = str(shape.cpu_per_node - shape.reserved_cpu)
    # Hugepages are carved out of memory, so allocatable memory excludes them.
    allocatable["memory"] = f"{memory_left - shape.hugepages_1gi_per_node}Gi"
    allocatable["ephemeral-storage"] = "440Gi"
    condition_time = created
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/worker": "",
                "feature.node.kubernetes.io/network-sriov.capable": "true",
                "topology.kubernetes.io/zone": "lab-a",
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"]},
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": [
                _condition(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                    condition_time,
                ),
                _condition(
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                    condition_time,
                ),
                _condition(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                    condition_time,
                ),
                _condition(
                    "Ready",
                    "True",
                    "KubeletReady",
                    "kubelet is posting ready status",
                    condition_time,
                ),
            ],
            # Only loopback: the lab never names an address it would not answer on.
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": f"lab-boot-{index}",
                "containerRuntimeVersion": "containerd://1.7.22",
                "kernelVersion": "6.1.0-lab",
                "kubeProxyVersion": shape.kubelet_version,
                "kubeletVersion": shape.kubelet_version,
                "machineID": f"lab-machine-{index}",
                "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "systemUUID": f"00000000-0000-0000-0000-{index:012d}",
            },
        },
    }


def _condition(kind: str, status: str, reason: str, message: str, at: str) -> dict[str, str]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": at,
        "lastTransitionTime": at,
    }
