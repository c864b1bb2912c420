"""An HTTP server on loopback that answers like kube-apiserver.

It serves discovery, CRUD, watch, patch, the scale and status subresources and pod logs
for the resource types in `lab.k8s.resources`, authenticates bearer tokens, and runs the
controller loop (`lab.k8s.controller`) over the same store.  Requests it cannot serve
answer with a ``Status`` saying so (405, 415, 404), never with a pretend success.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import re
import secrets
import select
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from lab.errors import LabError
from lab.k8s import admission, openapi, podexec, protobuf, resources
from lab.k8s.controller import NAMESPACE, PDB, Controller
from lab.k8s.controller import pod_ready as is_ready
from lab.k8s.errors import (
    ApiError,
    bad_request,
    forbidden,
    method_not_allowed,
    not_found,
    unauthorized,
    unsupported_media_type,
)
from lab.k8s.kubeconfig import write_kubeconfig
from lab.k8s.kubelet import Clock, ModelLookup, PodTiming, ReplicaSink
from lab.k8s.nodes import ClusterShape
from lab.k8s.patch import json_patch, merge_patch, strategic_merge_patch
from lab.k8s.resources import ResourceType
from lab.k8s.selectors import field_matcher, label_matcher, selector_matches, selector_text
from lab.k8s.store import Event, Store, now_rfc3339
from lab.k8s.tables import table
from lab.k8s.tls import make_serving_cert

log = logging.getLogger(__name__)

Obj = dict[str, Any]

PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
DEFAULT_WATCH_TIMEOUT_S = 1800.0
FOLLOW_POLL_S = 0.02  # wall seconds between looks at a followed log
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


@dataclass(frozen=True)
class Stream:
    """A streamed response: watch events (JSON lines) or a followed log (text)."""

    chunks: Iterator[bytes]
    content_type: str = "application/json"


@dataclass(frozen=True)
class Upgrade:
    """A request to switch protocols (pods/exec): the handler takes over the socket."""

    target: Target
    command: list[str]
    container: str


@dataclass(frozen=True)
class User:
    name: str
    can_write: bool


class _FallbackClock:
    """Lab time when no `lab.clock.VirtualClock` is given: wall time × time_scale."""

    def __init__(self, time_scale: float) -> None:
        self.time_scale = time_scale
        self._t0 = time.monotonic()

    def now_s(self) -> float:
        return (time.monotonic() - self._t0) * self.time_scale


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: bytes
    user: User | None = None
    multi: dict[str, list[str]] = field(default_factory=dict)  # repeated query parameters
    warnings: list[str] = field(default_factory=list)

    def param(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name, default)

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("true", "1")

    @property
    def wants_table(self) -> bool:
        return "as=Table" in (self.headers.get("Accept") or "")

    def json_body(self) -> Any:
        if not self.body:
            raise bad_request("the request has no body")
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if ctype == "application/vnd.kubernetes.protobuf":
            return protobuf.decode(self.body)
        try:
            if ctype in ("application/yaml", "application/apply-patch+yaml"):
                return yaml.safe_load(self.body)
            return json.loads(self.body)
        except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
            raise bad_request(f"the body of the request could not be decoded: {exc}") from exc


@dataclass
class Target:
    """What a resource path names."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


class ApiServer:
    """The lab's kube-apiserver: `start()`, use `url` and `token`, then `stop()`."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        time_scale: float = 1.0,
        shape: ClusterShape | None = None,
        timing: PodTiming | None = None,
        sink: ReplicaSink | None = None,
        models: ModelLookup | None = None,
        seed: int = 1,
        port: int = 0,
        version: str = "v1.32.4",
        token: str | None = None,
    ) -> None:
        if not re.fullmatch(r"v\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?", version):
            raise LabError(f"Kubernetes version must look like v1.32.4, got {version!r}")
        self.clock: Clock = clock if clock is not None else _FallbackClock(time_scale)
        self.store = Store()
        self.controller = Controller(
            self.store, self.clock, shape=shape, timing=timing, sink=sink, models=models, seed=seed
        )
        self.version = version
        self.token = token or secrets.token_urlsafe(24)
        self.viewer_token = secrets.token_urlsafe(24)
        self._users = {
            self.token: User("lab-admin", True),
            self.viewer_token: User("lab-viewer", False),
        }
        self._port = port
        self.tls = make_serving_cert()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> ApiServer:
        self.controller.bootstrap()
        self.controller.start()
        handler = _handler_for(self)
        self._httpd = _HttpServer(("127.0.0.1", self._port), handler)
        self._httpd.daemon_threads = True
        self._httpd.socket = self.tls.context().wrap_socket(
            self._httpd.socket, server_side=True, do_handshake_on_connect=False
        )
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="lab-k8s-api", daemon=True
        )
        self._thread.start()
        log.info("Kubernetes API server on %s", self.url)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.store.close()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        self.controller.stop()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def write_kubeconfig(self, path: Path | str, namespace: str = "default") -> Path:
        """A kubeconfig with the server's CA and the admin token (file mode 0600)."""
        return write_kubeconfig(
            path, self.url, self.token, ca_pem=self.tls.ca_pem, namespace=namespace
        )

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # --- authentication and authorisation -------------------------------------------------

    def authenticate(self, req: Request) -> None:
        header = req.headers.get("Authorization") or ""
        token = header[7:].strip() if header.startswith("Bearer ") else ""
        user = self._users.get(token)
        if user is None:
            raise unauthorized()
        req.user = user

    def authorize(self, req: Request, verb: str, target: Target | None) -> None:
        assert req.user is not None
        if verb in WRITE_VERBS and not req.user.can_write:
            raise forbidden(
                req.user.name,
                verb,
                target.rt if target else None,
                target.namespace if target else None,
            )

    # --- routing --------------------------------------------------------------------------

    def handle(self, req: Request) -> tuple[int, Any] | Stream | Upgrade:
        path = req.path.rstrip("/") or "/"
        if req.headers.get("Authorization"):
            # Credentials that fail authentication are refused on every path, the public
            # ones included, as kube-apiserver does.
            self.authenticate(req)
        if path in ("/healthz", "/livez", "/readyz"):
            return 200, "ok"
        if path == "/version":
            return 200, self._version()
        self.authenticate(req)
        if path == "/api":
            return 200, {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}
                ],
            }
        if path == "/apis":
            return 200, self._group_list()
        if path == "/openapi/v3":
            return 200, openapi.index_document()
        if path.startswith("/openapi/v3/"):
            gv = path.removeprefix("/openapi/v3/").split("/")
            if gv[0] == "api" and len(gv) == 2 and ("", gv[1]) in resources.group_versions():
                return 200, openapi.group_version_document("", gv[1])
            if gv[0] == "apis" and len(gv) == 3 and (gv[1], gv[2]) in resources.group_versions():
                return 200, openapi.group_version_document(gv[1], gv[2])
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) == 2:
            return self._group(parts[1])
        elif parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(
                404,
                "NotFound",
                f"the server could not find the requested resource (path {req.path})",
            )
        if (group, version) not in resources.group_versions():
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return 200, {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": resources.discovery_resources(group, version),
            }
        target = self._target(group, version, rest)
        return self._dispatch(req, target)

    def _version(self) -> Obj:
        major, minor = self.version.lstrip("v").split(".")[:2]
        return {
            "major": major,
            "minor": minor,
            "gitVersion": self.version,
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.22.8",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    def _group_entry(self, group: str) -> Obj:
        versions = [v for g, v in resources.group_versions() if g == group]
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}

    def _group_list(self) -> Obj:
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [self._group_entry(g) for g in resources.GROUPS],
        }

    def _group(self, group: str) -> tuple[int, Any]:
        if group not in resources.GROUPS:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return 200, {"kind": "APIGroup", "apiVersion": "v1", **self._group_entry(group)}

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        rt = resources.by_path(group, version, rest[0])
        if rt is None or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if rt.namespaced is False and namespace is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in rt.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return Target(rt, namespace, name, sub)

    def _dispatch(self, req: Request, t: Target) -> tuple[int, Any] | Stream | Upgrade:
        method = req.method
        if t.name is None:
            if method == "GET":
                verb = "watch" if req.flag("watch") else "list"
                self.authorize(req, verb, t)
                return self._watch(req, t) if verb == "watch" else self._list(req, t)
            if method == "POST":
                self.authorize(req, "create", t)
                return self._create(req, t)
            if method == "DELETE":
                self.authorize(req, "deletecollection", t)
                return self._delete_collection(req, t)
            raise method_not_allowed(
                f"the server does not allow this method on the requested "
                f"resource ({method} {t.rt.plural})"
            )
        if t.subresource == "eviction":
            if method != "POST":
                raise method_not_allowed("pods/eviction takes POST")
            self.authorize(req, "create", t)
            return self._evict(req, t)
        if t.subresource == "exec":
            if method not in ("GET", "POST"):
                raise method_not_allowed("pods/exec takes GET or POST")
            self.authorize(req, "create", t)
            return self._exec(req, t)
        if t.subresource == "log":
            if method != "GET":
                raise method_not_allowed("pod logs can only be read")
            self.authorize(req, "get", t)
            return self._logs(req, t)
        if method == "GET":
            self.authorize(req, "get", t)
            return self._get(req, t)
        if method == "PUT":
            self.authorize(req, "update", t)
            return self._update(req, t, req.json_body())
        if method == "PATCH":
            self.authorize(req, "patch", t)
            return self._patch(req, t)
        if method == "DELETE":
            self.authorize(req, "delete", t)
            return self._delete(req, t)
        if method == "POST":
            raise method_not_allowed(
                f"the server does not allow this method on the requested "
                f"resource (POST {t.rt.plural}/{t.name})"
            )
        raise method_not_allowed(f"method {method} is not supported")

    # --- reads ----------------------------------------------------------------------------

    def _matcher(self, req: Request) -> Callable[[Obj], bool]:
        labels = label_matcher(req.param("labelSelector"))
        fields = field_matcher(req.param("fieldSelector"))
        return lambda o: labels(o["metadata"].get("labels") or {}) and fields(o)

    def _list(self, req: Request, t: Target) -> tuple[int, Any]:
        items, rv = self.store.snapshot(t.rt, t.namespace, self._matcher(req))
        start = 0
        token = req.param("continue")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                start, rv = int(state["start"]), int(state["rv"])
            except (ValueError, KeyError, TypeError) as exc:
                raise bad_request(f"invalid continue token: {exc}") from exc
        limit = int(req.param("limit") or 0)
        next_token = None
        if limit > 0 and start + limit < len(items):
            next_token = base64.urlsafe_b64encode(
                json.dumps({"start": start + limit, "rv": rv}).encode()
            ).decode()
            items = items[start : start + limit]
        else:
            items = items[start:]
        if req.wants_table:
            include = req.param("includeObject", "Metadata") or "Metadata"
            return 200, table(t.rt, items, str(rv), include, next_token)
        meta: Obj = {"resourceVersion": str(rv)}
        if next_token:
            meta["continue"] = next_token
        return 200, {
            "kind": f"{t.rt.kind}List",
            "apiVersion": t.rt.api_version,
            "metadata": meta,
            "items": items,
        }

    def _get(self, req: Request, t: Target) -> tuple[int, Any]:
        assert t.name is not None
        obj = self.store.get(t.rt, t.namespace, t.name)
        if t.subresource == "scale":
            return 200, self._scale_view(t.rt, obj)
        if req.wants_table and t.subresource is None:
            include = req.param("includeObject", "Metadata") or "Metadata"
            return 200, table(t.rt, [obj], obj["metadata"]["resourceVersion"], include)
        return 200, obj

    def _scale_view(self, rt: ResourceType, obj: Obj) -> Obj:
        meta = obj["metadata"]
        status = obj.get("status") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
                "creationTimestamp": meta["creationTimestamp"],
            },
            "spec": {"replicas": obj["spec"].get("replicas", 1)},
            "status": {
                "replicas": status.get("replicas", 0),
                "selector": selector_text(obj["spec"].get("selector")),
            },
        }

    # --- watch ----------------------------------------------------------------------------

    def _watch(self, req: Request, t: Target) -> Stream:
        match = self._matcher(req)
        table_view = req.wants_table
        bookmarks = req.flag("allowWatchBookmarks")
        rv_text = req.param("resourceVersion") or ""
        timeout_s = float(req.param("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT_S)
        deadline = time.monotonic() + timeout_s
        initial = req.flag("sendInitialEvents") or rv_text in ("", "0")
        if initial:
            items, rv = self.store.list(t.rt, t.namespace, match)
        else:
            try:
                rv = int(rv_text)
            except ValueError as exc:
                raise bad_request(f"invalid resourceVersion {rv_text!r}") from exc
            items = []
        # Validate the start version before the response begins (410 as an ERROR event).
        events = self.store.events_since(
            rv, deadline_wall_s=deadline, alive=lambda: not self.stopping
        )
        return Stream(
            self._stream(
                t,
                items,
                rv,
                events,
                match=match,
                table_view=table_view,
                bookmarks=bookmarks,
                initial_end=req.flag("sendInitialEvents"),
            )
        )

    def _stream(
        self,
        t: Target,
        items: list[Obj],
        rv: int,
        events: Iterator[Event | None],
        *,
        match: Callable[[Obj], bool],
        table_view: bool,
        bookmarks: bool,
        initial_end: bool,
    ) -> Iterator[bytes]:
        def frame(kind: str, obj: Obj) -> bytes:
            if table_view and kind in ("ADDED", "MODIFIED", "DELETED"):
                obj = table(t.rt, [obj], obj["metadata"]["resourceVersion"])
            return json.dumps({"type": kind, "object": obj}).encode() + b"\n"

        def bookmark(version: int, end: bool = False) -> bytes:
            meta: Obj = {"resourceVersion": str(version)}
            if end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return frame(
                "BOOKMARK", {"kind": t.rt.kind, "apiVersion": t.rt.api_version, "metadata": meta}
            )

        for obj in items:
            yield frame("ADDED", obj)
        if initial_end and bookmarks:
            yield bookmark(rv, end=True)
        last = rv
        try:
            for event in events:
                if event is None:
                    if bookmarks:
                        yield bookmark(last)
                    yield b""
                    continue
                last = event.rv
                kind = self._visible(t, event, match)
                if kind is not None:
                    yield frame(kind, event.obj)
        except ApiError as exc:
            yield json.dumps({"type": "ERROR", "object": exc.status()}).encode() + b"\n"

    @staticmethod
    def _visible(t: Target, event: Event, match: Callable[[Obj], bool]) -> str | None:
        if event.rt is not t.rt:
            return None
        ns = event.obj["metadata"].get("namespace")
        if t.namespace is not None and ns != t.namespace:
            return None
        now_matches = match(event.obj)
        before = event.prev is not None and match(event.prev)
        if event.type == "ADDED":
            return "ADDED" if now_matches else None
        if event.type == "DELETED":
            return "DELETED" if before or now_matches else None
        if now_matches and before:
            return "MODIFIED"
        if now_matches:
            return "ADDED"
        if before:
            return "DELETED"
        return None

    # --- writes ---------------------------------------------------------------------------

    def _namespace_open(self, namespace: str | None) -> None:
        if namespace is None:
            return
        ns = self.store.find(NAMESPACE, None, namespace)
        if ns is None:
            raise not_found(NAMESPACE, namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated",
            )

    def _create(self, req: Request, t: Target) -> tuple[int, Any]:
        obj = req.json_body()
        if not isinstance(obj, dict):
            raise bad_request("the body must be an object")
        self._check_kind(t.rt, obj)
        admission.ensure_namespace_matches(t.namespace, obj)
        meta = obj.setdefault("metadata", {})
        for key in (
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "generation",
            "managedFields",
        ):
            meta.pop(key, None)
        if t.rt.namespaced:
            meta["namespace"] = t.namespace or meta.get("namespace") or "default"
            self._namespace_open(meta["namespace"])
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        req.warnings += openapi.check_fields(obj, req.param("fieldValidation"), self.version)
        admission.default(t.rt, obj)
        admission.validate(t.rt, obj, None)
        if req.param("dryRun") == "All":
            return 201, obj
        return 201, self.store.create(t.rt, obj)

    @staticmethod
    def _check_kind(rt: ResourceType, obj: Obj) -> None:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind and kind != rt.kind:
            raise bad_request(f"the object kind {kind!r} does not match the resource {rt.plural}")
        if api_version and api_version != rt.api_version:
            raise bad_request(
                f"the apiVersion {api_version!r} does not match the endpoint {rt.api_version}"
            )
        obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version

    def _update(self, req: Request, t: Target, obj: Any) -> tuple[int, Any]:
        assert t.name is not None
        if not isinstance(obj, dict):
            raise bad_request("the body must be an object")
        current = self.store.get(t.rt, t.namespace, t.name)
        if t.subresource == "scale":
            return self._update_scale(req, t, current, obj)
        self._check_kind(t.rt, obj)
        meta = obj.setdefault("metadata", {})
        if meta.get("name", t.name) != t.name:
            raise bad_request("the name of the object does not match the name on the URL")
        meta["name"] = t.name
        if t.rt.namespaced:
            meta["namespace"] = t.namespace
        expect_rv = meta.get("resourceVersion")
        keep = (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        )
        for key in keep:
            if key in current["metadata"]:
                meta[key] = current["metadata"][key]
            else:
                meta.pop(key, None)
        if t.subresource == "status":
            merged = copy.deepcopy(current)
            merged["status"] = obj.get("status", {})
            obj = merged
        elif "status" in t.rt.subresources or t.rt.kind == "Pod":
            obj["status"] = current.get("status", {})
        if t.subresource is None:
            req.warnings += openapi.check_fields(obj, req.param("fieldValidation"), self.version)
            admission.default(t.rt, obj)
            admission.validate(t.rt, obj, current)
        if req.param("dryRun") == "All":
            return 200, obj
        updated = self.store.update(t.rt, obj, expect_rv=expect_rv)
        if (
            updated["metadata"].get("deletionTimestamp")
            and not updated["metadata"].get("finalizers")
            and t.rt.kind != "Pod"
        ):
            self.store.remove(t.rt, t.namespace, t.name)
        return 200, updated

    def _update_scale(self, req: Request, t: Target, current: Obj, scale: Obj) -> tuple[int, Any]:
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError(
                422,
                "Invalid",
                f'Scale.autoscaling "{t.name}" is invalid: spec.replicas: Invalid value: '
                f"{replicas}: must be greater than or equal to 0",
            )
        expect_rv = (scale.get("metadata") or {}).get("resourceVersion")
        current["spec"]["replicas"] = replicas
        if req.param("dryRun") == "All":
            return 200, self._scale_view(t.rt, current)
        updated = self.store.update(t.rt, current, expect_rv=expect_rv)
        return 200, self._scale_view(t.rt, updated)

    def _patch(self, req: Request, t: Target) -> tuple[int, Any]:
        assert t.name is not None
        ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype == "application/apply-patch+yaml":
            raise unsupported_media_type(ctype, list(PATCH_TYPES))
        if ctype not in PATCH_TYPES:
            raise unsupported_media_type(ctype, list(PATCH_TYPES))
        current = self.store.get(t.rt, t.namespace, t.name)
        base = self._scale_view(t.rt, current) if t.subresource == "scale" else current
        patch = req.json_body()
        if ctype == "application/json-patch+json":
            patched = json_patch(base, patch)
        elif ctype == "application/merge-patch+json":
            patched = merge_patch(base, patch)
        else:
            patched = strategic_merge_patch(base, patch)
        if not isinstance(patched, dict):
            raise bad_request("the patched object is not an object")
        # A resourceVersion in the patch is a precondition; without one, patch the latest.
        patched_rv = (patched.get("metadata") or {}).get("resourceVersion")
        if patched_rv == base["metadata"].get("resourceVersion"):
            patched.setdefault("metadata", {}).pop("resourceVersion", None)
        return self._update(req, t, patched)

    def _delete(self, req: Request, t: Target) -> tuple[int, Any]:
        assert t.name is not None
        options: Obj = {}
        if req.body:
            body = req.json_body()
            options = body if isinstance(body, dict) else {}
        grace = options.get("gracePeriodSeconds", req.param("gracePeriodSeconds"))
        grace_s = int(grace) if grace is not None else None
        default_policy = "Background"
        propagation = str(
            options.get("propagationPolicy") or req.param("propagationPolicy") or default_policy
        )
        if options.get("orphanDependents") is True:
            propagation = "Orphan"
        if propagation not in ("Background", "Foreground", "Orphan"):
            raise bad_request(f"unknown propagationPolicy {propagation!r}")
        current = self.store.get(t.rt, t.namespace, t.name)
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != current["metadata"]["uid"]:
            raise ApiError(
                409,
                "Conflict",
                f"Precondition failed: UID in precondition: "
                f"{pre['uid']}, UID in object meta: {current['metadata']['uid']}",
            )
        if (
            pre.get("resourceVersion")
            and pre["resourceVersion"] != current["metadata"]["resourceVersion"]
        ):
            raise ApiError(409, "Conflict", "Precondition failed: resourceVersion mismatch")
        if options.get("dryRun") == ["All"] or req.param("dryRun") == "All":
            return 200, current
        result = self.controller.delete(t.rt, current, grace_s, propagation)
        if result["metadata"].get("deletionTimestamp") and self.store.find(
            t.rt, t.namespace, t.name
        ):
            return 200, result
        if t.rt.kind in ("Pod", "Namespace", "Service"):  # their registries return the object
            return 200, result
        return 200, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": t.name,
                "group": t.rt.group,
                "kind": t.rt.plural,
                "uid": current["metadata"]["uid"],
            },
        }

    def _delete_collection(self, req: Request, t: Target) -> tuple[int, Any]:
        items, _ = self.store.list(t.rt, t.namespace, self._matcher(req))
        deleted = []
        for obj in items:
            try:
                deleted.append(self.controller.delete(t.rt, obj, None, "Background"))
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return 200, {
            "kind": f"{t.rt.kind}List",
            "apiVersion": t.rt.api_version,
            "metadata": {"resourceVersion": str(self.store.resource_version)},
            "items": deleted,
        }

    # --- eviction -------------------------------------------------------------------------

    def _evict(self, req: Request, t: Target) -> tuple[int, Any]:
        """The Eviction API: delete the pod unless a disruption budget forbids it (429)."""
        assert t.name is not None and t.namespace is not None
        body = req.json_body()
        pod = self.store.get(t.rt, t.namespace, t.name)
        options = (body.get("deleteOptions") or {}) if isinstance(body, dict) else {}
        labels = pod["metadata"].get("labels") or {}
        healthy = is_ready(pod) and not pod["metadata"].get("deletionTimestamp")
        for pdb in self.store.snapshot(PDB, t.namespace)[0]:
            if not selector_matches(pdb["spec"].get("selector"), labels):
                continue
            status = pdb.get("status") or {}
            allowed = int(status.get("disruptionsAllowed", 0))
            if healthy and allowed <= 0:
                why = (
                    f"The disruption budget {pdb['metadata']['name']} needs "
                    f"{status.get('desiredHealthy', 0)} healthy pods and has "
                    f"{status.get('currentHealthy', 0)} currently"
                )
                raise ApiError(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    {"causes": [{"reason": "DisruptionBudget", "message": why}]},
                )

            def spend(o: Obj) -> None:
                status = o.setdefault("status", {})
                status["disruptionsAllowed"] = max(0, int(status.get("disruptionsAllowed", 0)) - 1)
                status.setdefault("disruptedPods", {})[t.name or ""] = now_rfc3339()

            if healthy:
                self.store.mutate(PDB, t.namespace, pdb["metadata"]["name"], spend)
        grace = options.get("gracePeriodSeconds")
        self.controller.delete(
            t.rt,
            pod,
            int(grace) if grace is not None else None,
            str(options.get("propagationPolicy") or "Background"),
        )
        return 201, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }

    # --- exec -----------------------------------------------------------------------------

    def _exec(self, req: Request, t: Target) -> Upgrade:
        assert t.name is not None and t.namespace is not None
        pod = self.store.get(t.rt, t.namespace, t.name)
        names = [c["name"] for c in pod["spec"].get("containers") or []]
        container = req.param("container") or (names[0] if len(names) == 1 else None)
        if container is None or container not in names:
            raise bad_request(
                f"a container name must be specified for pod {t.name}, choose one of: "
                f"[{' '.join(names)}]"
            )
        command = req.multi.get("command") or []
        if not command:
            raise bad_request("you must specify at least 1 command")
        if not (req.headers.get("Upgrade") or "").lower() == "websocket":
            raise bad_request("Upgrade request required")
        if not self._running(pod, container):
            raise bad_request(f"container {container} is not running in pod {t.name}")
        return Upgrade(t, list(command), container)

    def run_exec(self, upgrade: Upgrade) -> podexec.ExecOutcome:
        t = upgrade.target
        assert t.name is not None and t.namespace is not None
        kubelet = self.controller.kubelet

        def signal(number: int) -> str | None:
            assert t.name is not None and t.namespace is not None
            problem = kubelet.signal(t.namespace, t.name, upgrade.container, number)
            self.controller.wake()
            return problem

        return podexec.run_command(upgrade.command, signal)

    # --- logs -----------------------------------------------------------------------------

    def _logs(self, req: Request, t: Target) -> tuple[int, Any] | Stream:
        assert t.name is not None and t.namespace is not None
        pod = self.store.get(t.rt, t.namespace, t.name)
        names = [c["name"] for c in pod["spec"].get("containers") or []]
        container = req.param("container")
        if container is None:
            if len(names) != 1:
                raise bad_request(
                    f"a container name must be specified for pod {t.name}, choose one of: "
                    f"[{' '.join(names)}]"
                )
            container = names[0]
        if container not in names:
            raise bad_request(f"container {container} is not valid for pod {t.name}")
        previous = req.flag("previous")
        lines = self.controller.kubelet.logs(t.namespace, t.name, container, previous)
        if lines is None or (not lines and not previous and not self._running(pod, container)):
            raise bad_request(
                f'container "{container}" in pod "{t.name}" is waiting to start: ContainerCreating'
            )
        if previous and not lines:
            raise bad_request(
                f'previous terminated container "{container}" in pod "{t.name}" not found'
            )
        stamps = req.flag("timestamps")
        tail = req.param("tailLines")

        def render(batch: list[tuple[str, str]]) -> bytes:
            text = "".join(f"{ts} {line}\n" if stamps else f"{line}\n" for ts, line in batch)
            return text.encode()

        selected = lines[-int(tail) :] if tail is not None and int(tail) >= 0 else lines
        if tail is not None and int(tail) == 0:
            selected = []
        if not req.flag("follow"):
            body = render(selected)
            limit = req.param("limitBytes")
            if limit is not None:
                body = body[: int(limit)]
            return 200, body
        return Stream(self._follow(t, container, len(lines), render(selected)), "text/plain")

    def _running(self, pod: Obj, container: str) -> bool:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("name") == container and "running" in (cs.get("state") or {}):
                return True
        return False

    def _follow(self, t: Target, container: str, sent: int, first: bytes) -> Iterator[bytes]:
        assert t.name is not None and t.namespace is not None
        yield first
        kubelet = self.controller.kubelet
        while not self.stopping:
            time.sleep(FOLLOW_POLL_S)
            lines = kubelet.logs(t.namespace, t.name, container, False)
            if lines is None:
                # The pod is gone: send what it wrote last, then end the stream.
                final = kubelet.final_logs(t.namespace, t.name, container)
                if len(final) > sent:
                    yield "".join(f"{line}\n" for _, line in final[sent:]).encode()
                return
            if len(lines) > sent:
                yield "".join(f"{line}\n" for _, line in lines[sent:]).encode()
                sent = len(lines)
            else:
                yield b""


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that fails its TLS handshake or drops the connection is routine; log
        it briefly.  Anything else is a bug and is logged with its traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, ssl.SSLError | ConnectionError | TimeoutError):
            log.debug("connection from %s ended: %s", client_address, error)
            return
        log.exception("request from %s failed", client_address)


def _handler_for(server: ApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "cnfbench-lab-apiserver"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), format % args)

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes; without this, Nagle's algorithm
            # and the client's delayed ACK add 40 ms to every response.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self) -> None:
            split = urlsplit(self.path)
            multi = parse_qs(split.query, keep_blank_values=True)
            query = {k: v[-1] for k, v in multi.items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            req = Request(self.command, split.path, query, self.headers, body, multi=multi)
            try:
                result = server.handle(req)
            except ApiError as exc:
                self._send(exc.code, exc.status())
                return
            if isinstance(result, Stream):
                self._stream(result)
            elif isinstance(result, Upgrade):
                self._websocket(result)
            else:
                self._send(*result, warnings=req.warnings)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_PUT(self) -> None:
            self._serve()

        def do_PATCH(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def _send(self, code: int, body: Any, warnings: list[str] | None = None) -> None:
            if isinstance(body, bytes):
                data, ctype = body, "text/plain"
            elif isinstance(body, str):
                data, ctype = body.encode(), "text/plain; charset=utf-8"
            else:
                data, ctype = json.dumps(body).encode(), "application/json"
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for warning in warnings or []:
                self.send_header("Warning", f'299 - "{warning}"')
            self.send_header("Cache-Control", "no-cache, private")
            self.end_headers()
            self.wfile.write(data)

        def _websocket(self, upgrade: Upgrade) -> None:
            """RFC 6455 §4.2.2: accept the upgrade, run the command, send its output and
            status on the channels, close."""
            key = self.headers.get("Sec-WebSocket-Key") or ""
            protocol = podexec.choose_protocol(self.headers.get("Sec-WebSocket-Protocol") or "")
            if not key or protocol is None:
                error = bad_request(
                    f"the WebSocket upgrade needs a key and one of the protocols "
                    f"{', '.join(podexec.PROTOCOLS)}"
                )
                self._send(error.code, error.status())
                return
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", podexec.accept_key(key))
            self.send_header("Sec-WebSocket-Protocol", protocol)
            self.end_headers()
            self.close_connection = True
            outcome = server.run_exec(upgrade)
            try:
                podexec.send_outcome(self.wfile, outcome)
            except OSError:
                return

        def _client_gone(self) -> bool:
            """Whether the client closed a streaming connection.  It sends nothing while
            it reads a stream, so a readable socket means EOF (or a TLS record only)."""
            try:
                readable, _, _ = select.select([self.connection], [], [], 0)
                if not readable:
                    return False
                self.connection.setblocking(False)
                try:
                    data: bytes = self.connection.recv(1)
                    return data == b""
                finally:
                    self.connection.setblocking(True)
            except (ssl.SSLWantReadError, BlockingIOError):
                return False
            except OSError:
                return True

        def _stream(self, stream: Stream) -> None:
            self.send_response(200)
            self.send_header("Content-Type", stream.content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache, private")
            self.end_headers()
            try:
                for chunk in stream.chunks:
                    if not chunk:
                        # A heartbeat: stop when the client went away.
                        if self._client_gone():
                            self.close_connection = True
                            return
                        continue
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:  # the client went away: broken pipe, reset, TLS EOF
                self.close_connection = True
            finally:
                close = getattr(stream.chunks, "close", None)
                if close is not None:
                    close()

    return Handler
