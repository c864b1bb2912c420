"""The object store behind the API server: one resourceVersion counter and a watch log.

Every write gets the next value of a single counter as its ``resourceVersion``, as etcd's
revision does for kube-apiserver, so a list's version orders it against every later
event.  The watch log keeps the most recent events; a watch that asks to resume from a
version older than the log answers 410 Gone, as kube-apiserver does when its watch cache
has moved past it.
"""

from __future__ import annotations

import bisect
import builtins
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lab.k8s.errors import already_exists, conflict, gone, not_found
from lab.k8s.resources import ResourceType

Obj = dict[str, Any]
Key = tuple[str, str, str]  # (resource type qualified name, namespace or "", name)

WATCH_LOG_EVENTS = 20_000


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339_micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Event:
    rv: int
    rt: ResourceType
    type: str  # ADDED, MODIFIED, DELETED
    obj: Obj
    prev: Obj | None  # the object before a MODIFIED or DELETED event


def clone(obj: Obj) -> Obj:
    """A deep copy of a JSON-like object, several times faster than copy.deepcopy."""
    return {k: _clone(v) for k, v in obj.items()}


def _clone(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def _key(rt: ResourceType, namespace: str | None, name: str) -> Key:
    return (rt.qualified, namespace or "" if rt.namespaced else "", name)


class Store:
    """Thread-safe objects by type, namespace and name, with a watch log."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._rv = 0
        # type (qualified name) -> (namespace, name) -> object.  Stored objects are never
        # changed in place: every write stores a new one, so events may share them.
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {}
        self._log: list[Event] = []
        self._listeners: list[Callable[[Event], None]] = []
        self._closed = False

    def _slot(self, rt: ResourceType) -> dict[tuple[str, str], Obj]:
        return self._objects.setdefault(rt.qualified, {})

    # --- reading -----------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        with self._cond:
            return self._rv

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        with self._cond:
            obj = self._slot(rt).get(_key(rt, namespace, name)[1:])
            if obj is None:
                raise not_found(rt, name)
            return clone(obj)

    def find(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        with self._cond:
            obj = self._slot(rt).get(_key(rt, namespace, name)[1:])
            return clone(obj) if obj is not None else None

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        match: Callable[[Obj], bool] | None = None,
    ) -> tuple[list[Obj], int]:
        """Objects of a type (in one namespace, or all), sorted by namespace and name."""
        with self._cond:
            items = [
                obj
                for (ns, _), obj in self._slot(rt).items()
                if namespace is None or ns == namespace
            ]
            items = [clone(o) for o in items if match is None or match(o)]
            rv = self._rv
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return items, rv

    def snapshot(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        match: Callable[[Obj], bool] | None = None,
    ) -> tuple[builtins.list[Obj], int]:
        """Like `list`, without copying: the stored objects themselves, which callers
        must only read (the controller's passes and list responses do)."""
        with self._cond:
            items = [
                obj
                for (ns, _), obj in self._slot(rt).items()
                if (namespace is None or ns == namespace) and (match is None or match(obj))
            ]
            rv = self._rv
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return items, rv

    def by_uid(self, uid: str) -> Obj | None:
        with self._cond:
            for slot in self._objects.values():
                for obj in slot.values():
                    if obj["metadata"].get("uid") == uid:
                        return clone(obj)
        return None

    def uids(self) -> set[str]:
        with self._cond:
            return {o["metadata"]["uid"] for slot in self._objects.values() for o in slot.values()}

    # --- writing -----------------------------------------------------------------------

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _record(self, rt: ResourceType, kind: str, obj: Obj, prev: Obj | None) -> None:
        event = Event(self._rv, rt, kind, obj, prev)
        self._log.append(event)
        if len(self._log) > 2 * WATCH_LOG_EVENTS:
            del self._log[:WATCH_LOG_EVENTS]
        self._cond.notify_all()
        for listener in list(self._listeners):
            listener(event)

    def create(self, rt: ResourceType, obj: Obj) -> Obj:
        meta = obj["metadata"]
        key = _key(rt, meta.get("namespace"), meta["name"])
        with self._cond:
            slot = self._slot(rt)
            if key[1:] in slot:
                raise already_exists(rt, meta["name"])
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now_rfc3339())
            if rt.has_spec:
                meta["generation"] = 1
            meta["resourceVersion"] = str(self._next_rv())
            stored = clone(obj)
            slot[key[1:]] = stored
            self._record(rt, "ADDED", stored, None)
            return clone(stored)

    def update(self, rt: ResourceType, obj: Obj, *, expect_rv: str | None = None) -> Obj:
        """Replace an object.  With `expect_rv`, a different stored version is a Conflict."""
        meta = obj["metadata"]
        key = _key(rt, meta.get("namespace"), meta["name"])
        with self._cond:
            slot = self._slot(rt)
            current = slot.get(key[1:])
            if current is None:
                raise not_found(rt, meta["name"])
            if expect_rv and current["metadata"]["resourceVersion"] != expect_rv:
                raise conflict(
                    rt,
                    meta["name"],
                    "the object has been modified; please apply your changes to the latest "
                    "version and try again",
                )
            if obj == current:
                return clone(current)
            for field in ("uid", "creationTimestamp"):
                meta[field] = current["metadata"][field]
            if rt.has_spec:
                generation = current["metadata"].get("generation", 1)
                if obj.get("spec") != current.get("spec"):
                    generation += 1
                meta["generation"] = generation
            meta["resourceVersion"] = str(self._next_rv())
            stored = clone(obj)
            slot[key[1:]] = stored
            self._record(rt, "MODIFIED", stored, current)
            return clone(stored)

    def mutate(
        self, rt: ResourceType, namespace: str | None, name: str, change: Callable[[Obj], None]
    ) -> Obj | None:
        """Read, change and write an object under the lock; None when it is gone."""
        with self._cond:
            current = self._slot(rt).get(_key(rt, namespace, name)[1:])
            if current is None:
                return None
            obj = clone(current)
            change(obj)
            return self.update(rt, obj)

    def remove(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        key = _key(rt, namespace, name)
        with self._cond:
            current = self._slot(rt).pop(key[1:], None)
            if current is None:
                raise not_found(rt, name)
            final = clone(current)
            final["metadata"]["resourceVersion"] = str(self._next_rv())
            self._record(rt, "DELETED", final, current)
            return clone(final)

    # --- watching ----------------------------------------------------------------------

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        with self._cond:
            self._listeners.append(listener)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def events_since(
        self,
        rv: int,
        *,
        deadline_wall_s: float,
        alive: Callable[[], bool],
        heartbeat_s: float = 1.0,
    ) -> Iterator[Event | None]:
        """Events after `rv`, blocking for new ones until the deadline.

        Yields None every `heartbeat_s` without events, so the caller can send a
        bookmark or notice a client that went away.  Raises 410 Gone when `rv` is older
        than the oldest event kept.
        """
        with self._cond:
            oldest = self._log[0].rv if self._log else self._rv + 1
            if rv < oldest - 1 and rv < self._rv:
                raise gone(f"too old resource version: {rv} ({self._rv})")
        last = rv
        while alive():
            with self._cond:
                pending = self._after(last)
                if not pending:
                    if self._closed:
                        return
                    remaining = deadline_wall_s - time.monotonic()
                    if remaining <= 0:
                        return
                    self._cond.wait(min(remaining, heartbeat_s))
                    pending = self._after(last)
            if not pending:
                yield None
                continue
            for event in pending:
                last = event.rv
                yield event
            if time.monotonic() >= deadline_wall_s:
                return

    def _after(self, rv: int) -> builtins.list[Event]:
        start = bisect.bisect_right(self._log, rv, key=lambda e: e.rv)
        return self._log[start:]
