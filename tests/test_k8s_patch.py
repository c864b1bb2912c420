"""The lab API server's patch formats: RFC 7386 merge, strategic merge, RFC 6902 JSON patch."""

from __future__ import annotations

import pytest

from lab.k8s.errors import ApiError
from lab.k8s.patch import json_patch, merge_patch, strategic_merge_patch

POD_SPEC = {
    "containers": [
        {
            "name": "a",
            "image": "a:1",
            "env": [{"name": "X", "value": "1"}],
            "ports": [{"containerPort": 80}, {"containerPort": 9100}],
        },
        {"name": "b", "image": "b:1"},
    ],
    "tolerations": [{"key": "k"}],
}


def test_merge_patch_follows_rfc_7386_examples() -> None:
    # RFC 7386 appendix A, a few of the cases.
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": ["b"]}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}


def test_strategic_merge_merges_containers_by_name() -> None:
    patched = strategic_merge_patch(
        {"spec": POD_SPEC}, {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}
    )
    containers = patched["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("a", "a:1"), ("b", "b:2")]
    assert containers[0]["env"] == [{"name": "X", "value": "1"}]


def test_strategic_merge_nested_keys_and_directives() -> None:
    patch = {
        "containers": [
            {
                "name": "a",
                "env": [{"name": "Y", "value": "2"}],
                "ports": [{"containerPort": 9100, "name": "metrics"}],
            },
            {"name": "b", "$patch": "delete"},
        ],
        "$setElementOrder/containers": [{"name": "a"}],
        "tolerations": [{"key": "other"}],
    }
    patched = strategic_merge_patch(POD_SPEC, patch)
    (a,) = patched["containers"]
    assert a["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]
    assert a["ports"] == [{"containerPort": 80}, {"containerPort": 9100, "name": "metrics"}]
    assert patched["tolerations"] == [{"key": "other"}]  # no merge key: replaced
    assert "$setElementOrder/containers" not in patched


def test_strategic_merge_replace_and_primitive_lists() -> None:
    meta = {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}}
    assert strategic_merge_patch(meta, {"finalizers": ["c"]})["finalizers"] == ["a", "b", "c"]
    dropped = strategic_merge_patch(meta, {"$deleteFromPrimitiveList/finalizers": ["a"]})
    assert dropped["finalizers"] == ["b"]
    replaced = strategic_merge_patch(meta, {"labels": {"$patch": "replace", "z": "3"}})
    assert replaced["labels"] == {"z": "3"}


def test_service_ports_merge_by_port() -> None:
    svc = {"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}
    patched = strategic_merge_patch(svc, {"spec": {"ports": [{"port": 443, "targetPort": 8443}]}})
    assert patched["spec"]["ports"][1] == {"port": 443, "name": "https", "targetPort": 8443}


def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2]}, "c": "x"}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/a/b/-", "value": 3},
            {"op": "add", "path": "/a/b/0", "value": 0},
            {"op": "replace", "path": "/c", "value": "y"},
            {"op": "copy", "from": "/c", "path": "/d"},
            {"op": "move", "from": "/d", "path": "/e~1f"},
            {"op": "remove", "path": "/a/b/1"},
            {"op": "test", "path": "/e~1f", "value": "y"},
        ],
    )
    assert out == {"a": {"b": [0, 2, 3]}, "c": "y", "e/f": "y"}
    assert doc == {"a": {"b": [1, 2]}, "c": "x"}  # the input is not changed


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/c", "value": "nope"}],
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/a/zz", "value": 1}],
        [{"op": "add", "path": "/a/b/9", "value": 1}],
    ],
)
def test_json_patch_failures_are_422(ops: list[dict[str, object]]) -> None:
    with pytest.raises(ApiError) as err:
        json_patch({"a": {"b": [1]}, "c": "x"}, ops)
    assert err.value.code == 422 and err.value.reason == "Invalid"


def test_json_patch_must_be_a_list_of_operations() -> None:
    with pytest.raises(ApiError) as err:
        json_patch({}, {"op": "add"})
    assert err.value.code == 400
    with pytest.raises(ApiError) as err:
        json_patch({}, [{"op": "frobnicate", "path": "/a"}])
    assert err.value.code == 400
