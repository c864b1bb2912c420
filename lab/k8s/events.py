"""Events (``v1 Event``) the controllers, scheduler and kubelet record about objects."""

from __future__ import annotations

import collections
import itertools
import logging
import time
from typing import Any

from lab.k8s.errors import ApiError
from lab.k8s.resources import by_kind
from lab.k8s.store import Store, now_rfc3339, now_rfc3339_micro

log = logging.getLogger(__name__)

Obj = dict[str, Any]


MAX_EVENTS = 5000  # the oldest go beyond this, as kube-apiserver expires events by age


class Recorder:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._serial = itertools.count(1)
        self._rt = by_kind("v1", "Event")
        self._recorded: collections.deque[tuple[str, str]] = collections.deque()

    def record(self, obj: Obj, kind: str, reason: str, message: str, component: str) -> None:
        """One event about `obj`: `kind` is Normal or Warning."""
        assert self._rt is not None
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        suffix = f"{int(time.time() * 1e6):x}{next(self._serial):04x}"
        stamp = now_rfc3339()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{suffix}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", "v1"),
                "kind": obj.get("kind", ""),
                "name": meta["name"],
                "namespace": meta.get("namespace", ""),
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": component,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "eventTime": now_rfc3339_micro(),
            "count": 1,
        }
        try:
            self._store.create(self._rt, event)
        except ApiError as exc:
            log.debug("event not recorded: %s", exc.message)
            return
        self._recorded.append((namespace, f"{meta['name']}.{suffix}"))
        while len(self._recorded) > MAX_EVENTS:
            old_ns, old_name = self._recorded.popleft()
            if self._store.find(self._rt, old_ns, old_name) is not None:
                self._store.remove(self._rt, old_ns, old_name)
