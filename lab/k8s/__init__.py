"""A Kubernetes-API-compatible server for the embedded lab.

`ApiServer` answers kube-apiserver's REST API on loopback (discovery, CRUD, watch,
patch, scale and status subresources, pod logs, bearer tokens) over an in-memory store,
and runs a controller loop that does what kube-controller-manager, kube-scheduler and
the kubelets do: deployments own replica sets own pods, pods are scheduled against the
nodes' allocatable resources (SR-IOV VFs and hugepages included), start and turn Ready
on their probes' schedule in the lab's virtual time, and join the data-plane model while
Ready.  The real ``kubectl`` and the official ``kubernetes`` client drive it unmodified.
"""

from __future__ import annotations

from lab.k8s.kubelet import PodTiming, model_name_for_image
from lab.k8s.nodes import SRIOV_RESOURCE, ClusterShape
from lab.k8s.server import ApiServer

__all__ = ["SRIOV_RESOURCE", "ApiServer", "ClusterShape", "PodTiming", "model_name_for_image"]
