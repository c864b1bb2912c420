"""The lab's API server through the official `kubernetes` client: REST semantics.

Discovery, CRUD, resourceVersion conflicts, Status errors (401, 403, 404, 409, 422, 415),
selectors, the three patch types, the scale subresource, watches (resume, 410 Gone,
selector transitions), strict field validation and the OpenAPI index kubectl reads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic, watch
from kubernetes.client.exceptions import ApiException

from tests.k8s_lab import LabApi, deployment, lab_api


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabApi]:
    with lab_api(tmp_path_factory.mktemp("k8s-api")) as api:
        yield api


@pytest.fixture(scope="module")
def api(lab: LabApi) -> client.ApiClient:
    return lab.api_client()


def _status(exc: ApiException) -> dict[str, Any]:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["code"] == exc.status
    return body


def _namespace(api: client.ApiClient, name: str) -> None:
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})


def test_discovery_lists_groups_resources_and_subresources(api: client.ApiClient) -> None:
    version = client.VersionApi(api).get_code()
    assert version.git_version.startswith("v1.") and version.major == "1"
    groups = {g.name: g for g in client.ApisApi(api).get_api_versions().groups}
    assert {"apps", "policy", "k8s.cni.cncf.io"} <= set(groups)
    assert groups["apps"].preferred_version.group_version == "apps/v1"
    apps = client.AppsV1Api(api).get_api_resources()
    names = {r.name: r for r in apps.resources}
    assert names["deployments"].kind == "Deployment" and names["deployments"].namespaced
    assert "deploy" in names["deployments"].short_names
    assert "deployments/scale" in names and "deployments/status" in names
    core = {r.name for r in client.CoreV1Api(api).get_api_resources().resources}
    assert {"pods", "pods/log", "nodes", "namespaces", "secrets", "events"} <= core


def test_dynamic_client_discovers_and_lists(api: client.ApiClient) -> None:
    dyn = dynamic.DynamicClient(api)
    nodes = dyn.resources.get(api_version="v1", kind="Node").get()
    assert [n.metadata.name for n in nodes.items] == ["worker-0", "worker-1", "worker-2"]
    nad = dyn.resources.get(api_version="k8s.cni.cncf.io/v1", kind="NetworkAttachmentDefinition")
    assert nad.namespaced


def test_nodes_carry_sriov_and_hugepages_capacity(api: client.ApiClient) -> None:
    node = client.CoreV1Api(api).read_node("worker-1")
    assert node.status.capacity["intel.com/sriov_netdevice"] == "8"
    assert node.status.allocatable["hugepages-1Gi"] == "16Gi"
    assert int(node.status.allocatable["cpu"]) < int(node.status.capacity["cpu"])
    assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)


def test_crud_versions_and_conflicts(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    _namespace(api, "crud")
    created = core.create_namespaced_config_map(
        "crud", {"metadata": {"name": "c"}, "data": {"k": "1"}}
    )
    rv1 = int(created.metadata.resource_version)
    listing = core.list_namespaced_config_map("crud")
    assert int(listing.metadata.resource_version) >= rv1
    created.data = {"k": "2"}
    updated = core.replace_namespaced_config_map("c", "crud", created)
    assert int(updated.metadata.resource_version) > rv1
    # The stale version (rv1) must be refused with 409 Conflict.
    created.data = {"k": "3"}
    created.metadata.resource_version = str(rv1)
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("c", "crud", created)
    assert err.value.status == 409 and _status(err.value)["reason"] == "Conflict"
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("crud", {"metadata": {"name": "c"}})
    assert err.value.status == 409 and _status(err.value)["reason"] == "AlreadyExists"
    core.delete_namespaced_config_map("c", "crud")
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("c", "crud")
    status = _status(err.value)
    assert err.value.status == 404 and status["reason"] == "NotFound"
    assert status["message"] == 'configmaps "c" not found'


def test_generation_moves_with_spec_only(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    _namespace(api, "gen")
    d = apps.create_namespaced_deployment("gen", deployment(vfs=0))
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment("router", "gen", {"metadata": {"labels": {"x": "y"}}})
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment("router", "gen", {"spec": {"replicas": 2}})
    assert d.metadata.generation == 2


def test_invalid_objects_answer_422(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    _namespace(api, "bad")
    body = deployment(vfs=0)
    body["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment("bad", body)
    status = _status(err.value)
    assert err.value.status == 422 and status["reason"] == "Invalid"
    assert "selector` does not match template `labels`" in status["message"]
    assert status["details"]["causes"][0]["field"] == "spec.template.metadata.labels"
    body = deployment(vfs=0)
    body["metadata"]["name"] = "Bad_Name"
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment("bad", body)
    assert err.value.status == 422 and "metadata.name" in _status(err.value)["message"]


def test_missing_namespace_is_404(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(api).create_namespaced_config_map("nowhere", {"metadata": {"name": "c"}})
    assert err.value.status == 404
    assert _status(err.value)["message"] == 'namespaces "nowhere" not found'


def test_bad_token_is_401_and_viewer_writes_are_403(lab: LabApi) -> None:
    bad = lab.api_client(token="not-a-token")
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(bad).list_node()
    assert err.value.status == 401 and _status(err.value)["reason"] == "Unauthorized"
    viewer = lab.api_client(token=lab.server.viewer_token)
    assert client.CoreV1Api(viewer).list_node().items
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(viewer).create_namespace({"metadata": {"name": "nope"}})
    status = _status(err.value)
    assert err.value.status == 403 and status["reason"] == "Forbidden"
    assert 'User "lab-viewer" cannot create resource "namespaces"' in status["message"]


def test_label_and_field_selectors(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    _namespace(api, "sel")
    for name, tier in (("a", "web"), ("b", "db"), ("c", "web")):
        core.create_namespaced_config_map(
            "sel", {"metadata": {"name": name, "labels": {"tier": tier, "env": "lab"}}}
        )
    names = lambda items: sorted(i.metadata.name for i in items)  # noqa: E731
    assert names(core.list_namespaced_config_map("sel", label_selector="tier=web").items) == [
        "a",
        "c",
    ]
    assert names(core.list_namespaced_config_map("sel", label_selector="tier!=web").items) == ["b"]
    assert names(
        core.list_namespaced_config_map("sel", label_selector="tier in (db,cache),env").items
    ) == ["b"]
    assert names(core.list_namespaced_config_map("sel", label_selector="!tier").items) == []
    assert names(
        core.list_namespaced_config_map("sel", field_selector="metadata.name=c").items
    ) == ["c"]
    everywhere = core.list_config_map_for_all_namespaces(label_selector="env=lab").items
    assert {i.metadata.namespace for i in everywhere} == {"sel"}


def test_list_chunks_with_limit_and_continue(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    _namespace(api, "chunks")
    for i in range(5):
        core.create_namespaced_config_map("chunks", {"metadata": {"name": f"c{i}"}})
    first = core.list_namespaced_config_map("chunks", limit=2)
    assert [i.metadata.name for i in first.items] == ["c0", "c1"]
    rest = core.list_namespaced_config_map("chunks", limit=10, _continue=first.metadata._continue)
    assert [i.metadata.name for i in rest.items] == ["c2", "c3", "c4"]


def test_patches_merge_strategic_and_json(lab: LabApi, api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    _namespace(api, "patch")
    body = deployment(vfs=0)
    body["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "s:1"})
    apps.create_namespaced_deployment("patch", body)
    # Strategic merge: containers merge by name, the other container stays.
    d = apps.patch_namespaced_deployment(
        "router",
        "patch",
        {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "s:2"}]}}}},
    )
    images = {c.name: c.image for c in d.spec.template.spec.containers}
    assert images == {"router": "registry.lab.local/cnfbench/vpp-router:24.02", "sidecar": "s:2"}
    # JSON merge patch: null deletes a key.
    code, _ = lab.request(
        "PATCH",
        "/apis/apps/v1/namespaces/patch/deployments/router",
        {"metadata": {"labels": {"merged": "yes", "app": None}}},
        content_type="application/merge-patch+json",
    )
    assert code == 200
    d = apps.read_namespaced_deployment("router", "patch")
    assert d.metadata.labels == {"merged": "yes"}
    # JSON patch, including a failing test operation that must change nothing.
    d = apps.patch_namespaced_deployment(
        "router",
        "patch",
        [
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/metadata/labels/jp", "value": "1"},
        ],
    )
    assert d.spec.replicas == 3 and d.metadata.labels["jp"] == "1"
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment(
            "router",
            "patch",
            [
                {"op": "test", "path": "/spec/replicas", "value": 9},
                {"op": "replace", "path": "/spec/replicas", "value": 5},
            ],
        )
    assert err.value.status == 422
    assert apps.read_namespaced_deployment("router", "patch").spec.replicas == 3


def _raw_status(code: int, body: bytes) -> dict[str, Any]:
    status = json.loads(body)
    assert status["kind"] == "Status" and status["code"] == code
    return status


def test_server_side_apply_is_refused_clearly(lab: LabApi) -> None:
    client.CoreV1Api(lab.api_client()).create_namespaced_config_map(
        "default", {"metadata": {"name": "x"}}
    )
    code, body = lab.request(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/x",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
        content_type="application/apply-patch+yaml",
    )
    status = _raw_status(code, body)
    assert code == 415 and status["reason"] == "UnsupportedMediaType"
    assert "application/merge-patch+json" in status["message"]


def test_scale_subresource(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    _namespace(api, "scale")
    apps.create_namespaced_deployment("scale", deployment(vfs=0, replicas=2))
    scale = apps.read_namespaced_deployment_scale("router", "scale")
    assert scale.kind == "Scale" and scale.api_version == "autoscaling/v1"
    assert scale.spec.replicas == 2 and scale.status.selector == "app=router"
    apps.patch_namespaced_deployment_scale("router", "scale", {"spec": {"replicas": 4}})
    assert apps.read_namespaced_deployment("router", "scale").spec.replicas == 4
    # Read, modify, write: the controller's status updates move the resourceVersion, so
    # a write from a stale read is a Conflict and is retried, as clients do.
    for _ in range(20):
        scale = apps.read_namespaced_deployment_scale("router", "scale")
        scale.spec.replicas = 1
        try:
            apps.replace_namespaced_deployment_scale("router", "scale", scale)
            break
        except ApiException as exc:
            assert exc.status == 409 and _status(exc)["reason"] == "Conflict"
    assert apps.read_namespaced_deployment("router", "scale").spec.replicas == 1
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment_scale("router", "scale", {"spec": {"replicas": -1}})
    assert err.value.status == 422


def test_status_subresource_and_main_resource_are_separate(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    _namespace(api, "status")
    core.create_namespaced_service(
        "status", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    )
    svc = core.patch_namespaced_service(
        "s", "status", {"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}}
    )
    assert not (svc.status.load_balancer and svc.status.load_balancer.ingress)
    svc = core.patch_namespaced_service_status(
        "s", "status", {"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}}
    )
    assert svc.status.load_balancer.ingress[0].ip == "127.0.0.1"
    assert svc.spec.cluster_ip.startswith("10.96.")


def test_watch_resumes_from_a_version_and_filters(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    _namespace(api, "watch")
    start = core.list_namespaced_config_map("watch").metadata.resource_version
    core.create_namespaced_config_map(
        "watch", {"metadata": {"name": "w1", "labels": {"pick": "yes"}}}
    )
    core.create_namespaced_config_map("watch", {"metadata": {"name": "w2"}})
    core.patch_namespaced_config_map("w1", "watch", {"metadata": {"labels": {"pick": "no"}}})
    seen = []
    for event in watch.Watch().stream(
        core.list_namespaced_config_map,
        "watch",
        label_selector="pick=yes",
        resource_version=start,
        timeout_seconds=1,
    ):
        seen.append((event["type"], event["object"].metadata.name))
    # w1 was ADDED matching, then stopped matching: a DELETED for this watcher.
    assert seen == [("ADDED", "w1"), ("DELETED", "w1")]


def test_watch_streams_events_as_they_happen(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    _namespace(api, "live")
    rv = core.list_namespaced_config_map("live").metadata.resource_version
    got: list[str] = []

    def consume() -> None:
        for event in watch.Watch().stream(
            core.list_namespaced_config_map, "live", resource_version=rv, timeout_seconds=3
        ):
            got.append(f"{event['type']} {event['object'].metadata.name}")
            if len(got) == 2:
                return

    t = threading.Thread(target=consume)
    t.start()
    core.create_namespaced_config_map("live", {"metadata": {"name": "x"}})
    core.delete_namespaced_config_map("x", "live")
    t.join(timeout=5)
    assert got == ["ADDED x", "DELETED x"]


def test_watch_from_an_expired_version_is_410(lab: LabApi, api: client.ApiClient) -> None:
    from lab.k8s import store as store_module

    core = client.CoreV1Api(api)
    _namespace(api, "expire")
    old = core.list_namespaced_config_map("expire").metadata.resource_version
    limit = store_module.WATCH_LOG_EVENTS
    store_module.WATCH_LOG_EVENTS = 5
    try:
        for i in range(12):
            core.create_namespaced_config_map("expire", {"metadata": {"name": f"e{i}"}})
    finally:
        store_module.WATCH_LOG_EVENTS = limit
    code, body = lab.request(
        "GET",
        "/api/v1/namespaces/expire/configmaps",
        query={"watch": "true", "resourceVersion": "1", "timeoutSeconds": "1"},
    )
    assert code == 200
    event = json.loads(body.decode().splitlines()[0])
    assert int(old) > 1
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"


def test_strict_field_validation_names_the_unknown_field(
    lab: LabApi, api: client.ApiClient
) -> None:
    body = deployment(vfs=0)
    body["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    _namespace(api, "strict")
    code, raw = lab.request(
        "POST",
        "/apis/apps/v1/namespaces/strict/deployments",
        body,
        query={"fieldValidation": "Strict"},
    )
    status = _raw_status(code, raw)
    assert code == 400
    assert 'unknown field "spec.template.spec.containers[0].imagee"' in status["message"]


def test_openapi_index_points_kubectl_at_field_validation(lab: LabApi) -> None:
    code, data = lab.request("GET", "/openapi/v3")
    assert code == 200
    url = json.loads(data)["paths"]["apis/apps/v1"]["serverRelativeURL"]
    code, data = lab.request("GET", url.split("?")[0])
    doc = json.loads(data)
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}


def test_unknown_paths_and_methods_answer_a_status(lab: LabApi) -> None:
    code, body = lab.request("GET", "/apis/example.com/v1/widgets")
    assert code == 404 and _raw_status(code, body)["reason"] == "NotFound"
    code, body = lab.request("POST", "/api/v1/namespaces/default/pods/x", {})
    assert code == 405 and _raw_status(code, body)["reason"] == "MethodNotAllowed"
    code, body = lab.request("GET", "/api/v1/nodes", token="wrong")
    assert code == 401 and _raw_status(code, body)["reason"] == "Unauthorized"


def test_kubeconfig_is_private(lab: LabApi) -> None:
    assert (lab.kubeconfig.stat().st_mode & 0o777) == 0o600
    assert lab.server.token in Path(lab.kubeconfig).read_text()
