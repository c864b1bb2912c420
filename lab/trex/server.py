"""A TRex-compatible stateless server: ZMQ REP for RPC and PUB for async messages.

It answers the JSON-RPC methods that the TRex client libraries send, for both client
generations:

- the legacy client (``trex_stl_lib``, STL API major 4) handshakes with ``api_sync``
  and reads full JSON messages on the async channel (``trex-global`` stats several
  times a second, ``trex-event``, ``trex-barrier``);
- the current client (TRex v2.88 and later, STL API 5.x) handshakes with
  ``api_sync_v2``; the async channel only carries an empty ``{}`` trigger and the
  client fetches queued events with ``get_async_events``.

One socket cannot serve both async formats (the legacy client dies on the bare
trigger), so with ``api="auto"`` the server publishes in the format of the latest
handshake, as the TRex release matching that client would.  ``api="v2.87"`` or
``"v3.04"`` pins one release and answers the other generation's handshake as that
release does.

Counters come from `lab.trex.engine.Engine` over the lab's `DataPlane`, in the lab's
virtual time.  Methods the lab does not implement answer -32601 "Method not
supported", never a silent success.  `Faults` injects failures for tests.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from lab.clock import VirtualClock
from lab.dataplane import DataPlane, mac_for
from lab.trex import wire
from lab.trex.engine import (
    ALL_PROFILES,
    DEFAULT_PROFILE,
    EVENT_PORT_ACQUIRED,
    EVENT_PORT_ATTR_CHG,
    EVENT_PORT_RELEASED,
    EVENT_SERVER_STOPPED,
    Engine,
    EngineError,
    PgStats,
)
from lab.trex.streams import StreamError, parse_stream
from lab.trex.wire import RpcError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Release:
    """What a TRex release answers in its handshake."""

    version: str
    stl_major: int
    stl_minor: int
    legacy_core: tuple[int, int] | None  # `api_sync` core version; None: not offered


RELEASES = {
    "v2.87": Release("v2.87", 4, 8, (4, 8)),
    "v3.04": Release("v3.04", 5, 1, None),
}
PUBLISH_INTERVAL_S = 0.2  # wall seconds between async stats; the legacy client times out at 3
MAX_QUEUED_EVENTS = 10000
JOIN_WALL_S = 0.25  # a port started within this much wall time of another begins with it
NO_API_H = frozenset({"api_sync", "api_sync_v2", "get_version", "ping"})


@dataclass
class Faults:
    """Failures to inject, consumed as requests arrive.  Thread-safe through the server."""

    delay_s: dict[str, tuple[float, int]] = field(default_factory=dict)  # method -> (s, times)
    fail: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # -> (text, code, times)
    drop_for_s: float | None = None  # close the RPC socket on the next request, for this long
    drop_after_calls: int = 0

    def take_delay(self, method: str) -> float:
        entry = self.delay_s.get(method) or self.delay_s.get("*")
        if entry is None:
            return 0.0
        key = method if method in self.delay_s else "*"
        seconds, times = entry
        if times <= 1:
            del self.delay_s[key]
        else:
            self.delay_s[key] = (seconds, times - 1)
        return seconds

    def take_failure(self, method: str) -> RpcError | None:
        key = method if method in self.fail else ("*" if "*" in self.fail else None)
        if key is None:
            return None
        text, code, times = self.fail[key]
        if times <= 1:
            del self.fail[key]
        else:
            self.fail[key] = (text, code, times - 1)
        return RpcError(text, code)


@dataclass
class _Session:
    session_id: int
    queue: deque[dict[str, Any]] = field(default_factory=deque)
    seq: int = 1


class TRexServer:
    """The emulated TRex server.  `start` binds and serves; `stop` closes everything."""

    def __init__(
        self,
        dataplane: DataPlane,
        clock: VirtualClock,
        *,
        host: str = "127.0.0.1",
        sync_port: int = 0,
        async_port: int = 0,
        api: str = "auto",
        window_s: float = 1.0,
        publish_interval_s: float = PUBLISH_INTERVAL_S,
    ) -> None:
        if api != "auto" and api not in RELEASES:
            raise ValueError(f"unknown TRex release {api!r}; known: auto, {', '.join(RELEASES)}")
        self.dataplane = dataplane
        self.clock = clock
        self.host = host
        self.sync_port = sync_port
        self.async_port = async_port
        self.api = api
        self.publish_interval_s = publish_interval_s
        macs = [mac_for(dataplane.seed, f"trex-port-{p}") for p in range(2)]
        self.engine = Engine(
            dataplane,
            macs,
            window_s,
            events=self._on_event,
            join_s=JOIN_WALL_S * clock.time_scale,
            in_flight_s=dataplane.model.base_latency_us * 1e-6,
        )
        self.faults = Faults()
        self.rpc_calls = 0
        self._lock = threading.RLock()
        self.lock = self._lock  # the control channel edits `faults` under it
        self._api_handles: set[str] = set()
        self._legacy_async = False
        self._sessions: dict[int, _Session] = {}
        self._outbox: deque[bytes] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._ctx: zmq.Context[Any] | None = None
        self._threads: list[threading.Thread] = []
        self._started_wall = time.time()
        self._message = threading.local()  # `now_s` while the RPC thread answers a message
        self._methods: dict[str, Callable[[dict[str, Any]], Any]] = self._method_table()

    # --- lifecycle

    def start(self) -> None:
        """Bind both sockets (free ports when 0) and start serving."""
        self._ctx = zmq.Context()
        self._stop.clear()
        rep = self._bind(zmq.REP, self.sync_port)
        pub = self._bind(zmq.PUB, self.async_port)
        self.sync_port = _bound_port(rep)
        self.async_port = _bound_port(pub)
        self._threads = [
            threading.Thread(target=self._serve_rpc, args=(rep,), name="trex-rpc", daemon=True),
            threading.Thread(target=self._serve_pub, args=(pub,), name="trex-pub", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("TRex-compatible server on %s: sync %d, async %d", self.host, *self.ports())

    def _bind(self, kind: int, port: int) -> zmq.Socket[Any]:
        assert self._ctx is not None
        sock: zmq.Socket[Any] = self._ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(f"tcp://{self.host}:{port or '*'}")
        return sock

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def restart(self) -> None:
        """Stop, forget all state (owners, streams, handles), and serve again."""
        with self._lock:
            self._enqueue_event(EVENT_SERVER_STOPPED, {"cause": "server restarted"})
        time.sleep(self.publish_interval_s)
        self.stop()
        with self._lock:
            self.engine.reset(self.clock.now_s())
            self._api_handles.clear()
            self._sessions.clear()
            self._outbox.clear()
        self.start()

    def ports(self) -> tuple[int, int]:
        return self.sync_port, self.async_port

    def endpoints(self) -> dict[str, Any]:
        return {"host": self.host, "sync_port": self.sync_port, "async_port": self.async_port}

    # --- the RPC loop

    def _serve_rpc(self, sock: zmq.Socket[Any]) -> None:
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if not poller.poll(100):
                    continue
                request = sock.recv()
                drop_s = self._take_drop()
                if drop_s is not None:
                    sock = self._drop(sock, poller, drop_s)
                    continue
                sock.send(self.handle_message(request))
        except zmq.ContextTerminated:
            pass
        finally:
            sock.close(linger=0)

    def _take_drop(self) -> float | None:
        with self._lock:
            if self.faults.drop_for_s is None:
                return None
            if self.faults.drop_after_calls > 0:
                self.faults.drop_after_calls -= 1
                return None
            seconds, self.faults.drop_for_s = self.faults.drop_for_s, None
            return seconds

    def _drop(self, sock: zmq.Socket[Any], poller: zmq.Poller, seconds: float) -> zmq.Socket[Any]:
        """Close the RPC socket without answering, stay away, and listen again."""
        log.info("fault: dropping the RPC connection for %.2f s", seconds)
        poller.unregister(sock)
        sock.close(linger=0)
        self._stop.wait(seconds)
        new: zmq.Socket[Any] = self._bind(zmq.REP, self.sync_port)
        poller.register(new, zmq.POLLIN)
        return new

    def _now(self) -> float:
        """Lab time of the message being answered: one instant for a whole batch, so
        counters read in one batch are consistent with each other."""
        frozen: float | None = getattr(self._message, "now_s", None)
        return frozen if frozen is not None else self.clock.now_s()

    def handle_message(self, data: bytes) -> bytes:
        """Answer one ZMQ message (a request or a batch), compressed like the request.

        Injected delays are served first, outside the lock, so that the async channel
        keeps publishing; then the whole message is answered at one lab instant.
        """
        zipped = wire.is_zipped(data)
        try:
            text = wire.unzip(data) if zipped else data
            request = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            reply: Any = wire.error(None, RpcError(f"bad JSON: {exc}", wire.PARSE_ERROR))
        else:
            requests = request if isinstance(request, list) else [request]
            faults = [self._take_faults(r) for r in requests]
            delay_s = sum(d for d, _ in faults)
            if delay_s:
                time.sleep(delay_s)
            with self._lock:
                self._message.now_s = self.clock.now_s()
                try:
                    replies = [
                        self._handle_one(r, failure)
                        for r, (_, failure) in zip(requests, faults, strict=True)
                    ]
                finally:
                    self._message.now_s = None
            reply = replies if isinstance(request, list) else replies[0]
        body = json.dumps(reply).encode()
        return wire.zip_message(body) if zipped else body

    def _take_faults(self, request: Any) -> tuple[float, RpcError | None]:
        method = request.get("method") if isinstance(request, dict) else None
        if not isinstance(method, str):
            return 0.0, None
        with self._lock:
            self.rpc_calls += 1
            return self.faults.take_delay(method), self.faults.take_failure(method)

    def _handle_one(self, request: Any, failure: RpcError | None) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return wire.error(None, RpcError("invalid request", wire.INVALID_REQUEST))
        req_id = request.get("id")
        method = request["method"]
        params = request.get("params") or {}
        log.debug("rpc %s %s", method, {k: v for k, v in params.items() if k != "stream"})
        if failure is not None:
            return wire.error(req_id, failure)
        handler = self._methods.get(method)
        if handler is None:
            return wire.error(
                req_id, RpcError(f"Method '{method}' is not supported", wire.METHOD_NOT_SUPPORTED)
            )
        try:
            self._check_api_h(method, params)
            return wire.result(req_id, handler(params))
        except RpcError as exc:
            return wire.error(req_id, exc)
        except (EngineError, StreamError) as exc:
            return wire.error(req_id, RpcError(str(exc)))
        except (KeyError, TypeError, ValueError) as exc:
            return wire.error(
                req_id, RpcError(f"{method}: bad parameters: {exc!r}", wire.INVALID_PARAMS)
            )

    def _check_api_h(self, method: str, params: dict[str, Any]) -> None:
        if method in NO_API_H:
            return
        if params.get("api_h") not in self._api_handles:
            raise RpcError("API handler provided mismatch")

    # --- the async channel

    def _serve_pub(self, sock: zmq.Socket[Any]) -> None:
        next_stats = 0.0
        try:
            idle_wait_s = wait_s = self.publish_interval_s / 2
            while not self._stop.is_set():
                self._wake.wait(wait_s)
                self._wake.clear()
                now = time.monotonic()
                with self._lock:
                    lab_now = self.clock.now_s()
                    self.engine.advance(lab_now)
                    # wake when the next run ends, so its end is announced on time
                    wait_s = idle_wait_s
                    event_s = self.engine.next_event_s()
                    if event_s is not None:
                        due_s = self.clock.wall_duration(max(0.0, event_s - lab_now))
                        wait_s = min(wait_s, due_s + 1e-4)
                    if now >= next_stats:
                        next_stats = now + self.publish_interval_s
                        if self._legacy_async:
                            self._outbox.append(self._global_message(False))
                        else:
                            self._outbox.append(b"{}")
                    messages = list(self._outbox)
                    self._outbox.clear()
                for message in messages:
                    sock.send(message)
        except zmq.ContextTerminated:
            pass
        finally:
            sock.close(linger=0)

    def _on_event(self, kind: int, data: dict[str, Any]) -> None:
        # A job's final counters go out before its "done" event, as TRex publishes them.
        if self._legacy_async:
            self._outbox.append(self._global_message(False))
        self._enqueue_event(kind, data)

    def _enqueue_event(self, kind: int, data: dict[str, Any]) -> None:
        self._enqueue({"name": "trex-event", "type": kind, "data": data})

    def _enqueue(self, message: dict[str, Any]) -> None:
        if self._legacy_async:
            self._outbox.append(json.dumps(message).encode())
        for session in self._sessions.values():
            if len(session.queue) < MAX_QUEUED_EVENTS:
                session.queue.append({**message, "seq": session.seq})
                session.seq += 1
        if not self._legacy_async:
            self._outbox.append(b"{}")
        self._wake.set()

    def _global_message(self, baseline: bool) -> bytes:
        data = self._global_stats()
        for port in self.engine.ports:
            for key, value in self._port_stats(port.port_id).items():
                data[f"{key}-{port.port_id}"] = value
        message: dict[str, Any] = {"name": "trex-global", "type": 0, "data": data}
        if baseline:
            message["baseline"] = True
        return json.dumps(message).encode()

    # --- method table

    def _method_table(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        return {
            "api_sync": self._api_sync,
            "api_sync_v2": self._api_sync_v2,
            "ping": lambda _p: {},
            "get_version": self._get_version,
            "get_system_info": self._get_system_info,
            "get_supported_cmds": lambda _p: sorted(self._methods),
            "get_profile_list": self._get_profile_list,
            "get_port_status": self._get_port_status,
            "get_port_xstats_names": lambda _p: {"xstats_names": _XSTATS},
            "get_port_xstats_values": self._get_xstats_values,
            "get_utilization": self._get_utilization,
            "get_tpg_status": lambda _p: {"enabled": False},
            "acquire": self._acquire,
            "release": self._release,
            "get_all_streams": self._get_all_streams,
            "get_stream_list": self._get_stream_list,
            "add_stream": self._add_stream,
            "remove_stream": self._remove_stream,
            "remove_all_streams": self._remove_all_streams,
            "start_traffic": self._start_traffic,
            "stop_traffic": self._stop_traffic,
            "pause_traffic": self._pause_traffic,
            "resume_traffic": self._resume_traffic,
            "update_traffic": self._update_traffic,
            "validate": self._validate,
            "remove_rx_filters": self._owned_noop,
            "set_rx_feature": self._owned_noop,
            "set_port_attr": self._set_port_attr,
            "set_l2": self._set_l2,
            "service": self._service,
            "capture": self._capture,
            "get_global_stats": lambda _p: self._global_stats(),
            "get_port_stats": lambda p: self._port_stats(self._port_id(p)),
            "get_active_pgids": lambda _p: {"ids": self.engine.active_pgids()},
            "get_pgid_stats": self._get_pgid_stats,
            "publish_now": self._publish_now,
            "get_async_events": self._get_async_events,
        }

    # --- handshake and information

    def _api_sync(self, params: dict[str, Any]) -> Any:
        release = RELEASES["v2.87"] if self.api == "auto" else RELEASES[self.api]
        if release.legacy_core is None:
            raise RpcError("Method 'api_sync' is not supported", wire.METHOD_NOT_SUPPORTED)
        answers = []
        for entry in params["api_vers"]:
            major, minor = int(entry["major"]), int(entry["minor"])
            server_major, server_minor = release.legacy_core
            if entry["type"] != "core":
                raise RpcError(f"unknown API type '{entry['type']}'")
            if major != server_major or minor > server_minor:
                raise RpcError(
                    f"API version mismatch: server API 'core' is v{server_major}.{server_minor}"
                    f", client requested v{major}.{minor}"
                )
            answers.append({"type": "core", "api_h": self._new_api_h()})
        self._legacy_async = True
        return {"api_vers": answers}

    def _api_sync_v2(self, params: dict[str, Any]) -> Any:
        name, major, minor = params["name"], int(params["major"]), int(params["minor"])
        if name != "STL":
            raise RpcError(f"unknown API name: '{name}'")
        candidates = list(RELEASES.values()) if self.api == "auto" else [RELEASES[self.api]]
        for release in candidates:
            if major == release.stl_major and minor <= release.stl_minor:
                self._legacy_async = release.legacy_core is not None and major < 5
                return {"api_h": self._new_api_h()}
        server = candidates[-1]
        raise RpcError(
            f"Client API version mismatch: server {server.version} has STL API "
            f"v{server.stl_major}.{server.stl_minor}, client requested v{major}.{minor}"
        )

    def _new_api_h(self) -> str:
        handle = secrets.token_hex(4)
        self._api_handles.add(handle)
        return handle

    def _release_info(self) -> Release:
        if self.api != "auto":
            return RELEASES[self.api]
        return RELEASES["v2.87"] if self._legacy_async else RELEASES["v3.04"]

    def _get_version(self, _params: dict[str, Any]) -> Any:
        return {
            "version": self._release_info().version,
            "build_date": "Dec  1 2026",
            "build_time": "00:00:00",
            "built_by": "cnfbench-lab",
            "mode": "STL",
            "mode_raw": "STL",
        }

    def _get_system_info(self, _params: dict[str, Any]) -> Any:
        ports = []
        for port in self.engine.ports:
            ports.append(
                {
                    "index": port.port_id,
                    "driver": "net_ice",
                    "description": "Ethernet Controller E810-XXV for SFP (emulated)",
                    "pci_addr": f"0000:3b:00.{port.port_id}",
                    "numa": 0,
                    "hw_mac": port.mac,
                    "src_macaddr": port.mac,
                    "dst_macaddr": port.dst_mac,
                    "speed": port.speed_bps / 1e9,
                    "supp_speeds": [int(port.speed_bps / 1e6)],
                    "is_fc_supported": False,
                    "is_led_supported": False,
                    "is_link_supported": True,
                    "is_prom_supported": True,
                    "is_vxlan_supported": False,
                    "is_ieee1588_supported": False,
                    "is_virtual": False,
                    "rx": {"caps": ["flow_stats", "latency"], "counters": 1023},
                }
            )
        return {
            "hostname": "lab-trex",
            "uptime": time.strftime("%b %d %H:%M:%S", time.localtime(self._started_wall)),
            "dp_core_count": 4,
            "dp_core_count_per_port": 2,
            "core_type": "Intel(R) Xeon(R) (emulated)",
            "is_multiqueue_mode": False,
            "advanced_per_stream_stats": False,
            "port_count": len(ports),
            "ports": ports,
        }

    def _port_id(self, params: dict[str, Any]) -> int:
        port_id = params.get("port_id")
        if isinstance(port_id, bool) or not isinstance(port_id, int):
            raise RpcError("missing or bad 'port_id'", wire.INVALID_PARAMS)
        if not 0 <= port_id < len(self.engine.ports):
            raise RpcError(f"invalid port id - {port_id}")
        return port_id

    def _owned(self, params: dict[str, Any]) -> int:
        port_id = self._port_id(params)
        port = self.engine.ports[port_id]
        if port.handler is None or params.get("handler") != port.handler:
            raise RpcError("invalid handler" if port.handler else "port is not owned")
        return port_id

    def _get_port_status(self, params: dict[str, Any]) -> Any:
        port_id = self._port_id(params)
        self.engine.advance(self._now())
        port = self.engine.ports[port_id]
        max_id = max(port.streams, default=0)
        return {
            "state": port.state,
            "state_profile": port.profile_states(),
            "owner": port.owner,
            "max_stream_id": max_id,
            "service": port.service,
            "service_filtered": False,
            "attr": self._port_attr(port_id),
            "rx_info": {
                "queue": {"is_active": False, "count": 0, "size": 0},
                "grat_arp": {"is_active": False, "interval_sec": 0},
                "latency": {"is_active": bool(self.engine.active_pgids()["latency"])},
            },
        }

    def _port_attr(self, port_id: int) -> dict[str, Any]:
        port = self.engine.ports[port_id]
        return {
            "speed": port.speed_bps / 1e9,
            "link": {"up": port.link_up},
            "promiscuous": {"enabled": port.promiscuous},
            "multicast": {"enabled": port.multicast},
            "fc": {"mode": 0},
            "rx_filter_mode": "hw",
            "vlan": {"tags": []},
            "vxlan_fs": [],
            "layer_cfg": {
                "ether": {"src": port.mac, "dst": port.dst_mac, "state": "configured"},
                "ipv4": {"state": "none"},
                "ipv6": {"enabled": False},
            },
        }

    def _get_xstats_values(self, params: dict[str, Any]) -> Any:
        port = self.engine.ports[self._port_id(params)]
        values = [port.ipackets, port.opackets, port.ibytes, port.obytes, 0, 0]
        return {"xstats_values": values}

    def _get_utilization(self, _params: dict[str, Any]) -> Any:
        util = self._cpu_util()
        return {
            "cpu": [{"ports": [0, 1], "history": [round(util)] * 20}] * 2,
            "mbuf_stats": {},
        }

    # --- ownership

    def _acquire(self, params: dict[str, Any]) -> Any:
        port_id = self._port_id(params)
        port = self.engine.ports[port_id]
        user, session_id, force = params["user"], params["session_id"], bool(params["force"])
        if port.handler is not None and port.session_id != session_id and not force:
            if port.owner == str(user):
                raise RpcError(f"port is already owned by another session of '{user}'")
            raise RpcError(f"port is already taken by '{port.owner}'")
        port.owner, port.session_id = str(user), session_id
        port.handler = secrets.token_hex(4)
        self._enqueue_event(
            EVENT_PORT_ACQUIRED,
            {"port_id": port_id, "who": port.owner, "session_id": session_id, "force": force},
        )
        return port.handler

    def _release(self, params: dict[str, Any]) -> Any:
        port_id = self._owned(params)
        port = self.engine.ports[port_id]
        # As in TRex's stateless port: releasing does not stop the traffic.
        who, session_id = port.owner, port.session_id
        port.owner, port.session_id, port.handler = "", None, None
        self._enqueue_event(
            EVENT_PORT_RELEASED, {"port_id": port_id, "who": who, "session_id": session_id}
        )
        return {}

    # --- streams

    def _get_all_streams(self, params: dict[str, Any]) -> Any:
        port = self.engine.ports[self._port_id(params)]
        if "profile_id" not in params:  # STL API 4: one flat list
            return {"streams": {str(i): s.raw for i, s in port.streams.items()}}
        profiles: dict[str, dict[str, Any]] = {}
        for stream_id in port.stream_ids(str(params["profile_id"])):
            profile = port.profiles[stream_id]
            profiles.setdefault(profile, {})[str(stream_id)] = port.streams[stream_id].raw
        return {"profiles": profiles}

    def _get_profile_list(self, params: dict[str, Any]) -> Any:
        port = self.engine.ports[self._port_id(params)]
        return sorted(set(port.profiles.values()))

    def _get_stream_list(self, params: dict[str, Any]) -> Any:
        return sorted(self.engine.ports[self._port_id(params)].streams)

    def _writeable(self, params: dict[str, Any]) -> int:
        port_id = self._owned(params)
        if self.engine.ports[port_id].run is not None:
            raise RpcError("port is active - please stop the port first")
        return port_id

    def _add_stream(self, params: dict[str, Any]) -> Any:
        port_id = self._writeable(params)
        stream_id = int(params["stream_id"])
        raw = params["stream"]
        stream = parse_stream(stream_id, raw)
        if isinstance(raw, dict):
            raw.setdefault("next_stream_id", stream.next_stream_id)
        self.engine.add_stream(port_id, stream, _profile(params, DEFAULT_PROFILE))
        return {}

    def _remove_stream(self, params: dict[str, Any]) -> Any:
        self.engine.remove_stream(self._writeable(params), int(params["stream_id"]))
        return {}

    def _remove_all_streams(self, params: dict[str, Any]) -> Any:
        self.engine.remove_all_streams(self._writeable(params), _profile(params, ALL_PROFILES))
        return {}

    # --- traffic

    def _start_traffic(self, params: dict[str, Any]) -> Any:
        port_id = self._owned(params)
        duration = float(params.get("duration", -1))
        mul = params.get("mul") or {"type": "raw", "value": 1.0, "op": "abs"}
        now = self._now()
        profile = _profile(params, DEFAULT_PROFILE)
        force = bool(params.get("force", False))
        self.engine.start(port_id, now, mul, duration, force=force, profile=profile)
        run = self.engine.ports[port_id].run
        return {"multiplier": run.factor if run else 0.0, "ts": now}

    def _stop_traffic(self, params: dict[str, Any]) -> Any:
        port_id = self._owned(params)
        self.engine.stop(port_id, self._now(), _profile(params, ALL_PROFILES))
        return {}

    def _pause_traffic(self, params: dict[str, Any]) -> Any:
        self.engine.pause(self._owned(params), self._now())
        return {}

    def _resume_traffic(self, params: dict[str, Any]) -> Any:
        self.engine.resume(self._owned(params), self._now())
        return {}

    def _update_traffic(self, params: dict[str, Any]) -> Any:
        port_id = self._owned(params)
        self.engine.update(port_id, self._now(), params["mul"], bool(params.get("force")))
        run = self.engine.ports[port_id].run
        return {"multiplier": run.factor if run else 0.0}

    def _validate(self, params: dict[str, Any]) -> Any:
        port = self.engine.ports[self._owned(params)]
        streams = [s for s in port.streams.values() if s.enabled]
        pps = sum(s.base_pps(port.speed_bps) for s in streams)
        bps_l2 = sum(s.base_pps(port.speed_bps) * s.l2_bytes * 8 for s in streams)
        bps_l1 = sum(s.base_pps(port.speed_bps) * s.wire_bytes * 8 for s in streams)
        return {
            "rate": {
                "max_pps": pps,
                "max_bps_l2": bps_l2,
                "max_bps_l1": bps_l1,
                "max_line_util": bps_l1 / port.speed_bps,
            },
            "graph": {"expected_duration": -1, "events_count": len(streams), "events": []},
        }

    def _owned_noop(self, params: dict[str, Any]) -> Any:
        self._owned(params)
        return {}

    def _set_port_attr(self, params: dict[str, Any]) -> Any:
        port_id = self._owned(params)
        port = self.engine.ports[port_id]
        attr = params.get("attr") or {}
        if "promiscuous" in attr:
            port.promiscuous = bool(attr["promiscuous"]["enabled"])
        if "multicast" in attr:
            port.multicast = bool(attr["multicast"]["enabled"])
        if "link_status" in attr:
            self.engine.set_link(port_id, bool(attr["link_status"]["up"]), self._now())
        self._enqueue_event(
            EVENT_PORT_ATTR_CHG, {"port_id": port_id, "attr": self._port_attr(port_id)}
        )
        return {}

    def _set_l2(self, params: dict[str, Any]) -> Any:
        port_id = self._writeable(params)
        self.engine.ports[port_id].dst_mac = str(params["dst_mac"]).lower()
        return {}

    def _service(self, params: dict[str, Any]) -> Any:
        port_id = self._owned(params)
        self.engine.ports[port_id].service = bool(params["enabled"])
        return {}

    def _capture(self, params: dict[str, Any]) -> Any:
        if params.get("command") == "status":
            return []
        raise RpcError(
            f"capture command '{params.get('command')}' is not supported by the lab",
            wire.METHOD_NOT_SUPPORTED,
        )

    # --- statistics

    def _cpu_util(self) -> float:
        # A TRex core drives roughly 15 Mpps of small frames; report utilisation against it.
        tx_pps = sum(p.tx_pps for p in self.engine.ports)
        return min(100.0, 100.0 * tx_pps / (15e6 * 4)) if tx_pps else 0.0

    def _global_stats(self) -> dict[str, Any]:
        self.engine.advance(self._now())
        ports = self.engine.ports
        tx_bps = sum(p.tx_bps for p in ports)
        rx_bps = sum(p.rx_bps for p in ports)
        util = self._cpu_util()
        return {
            "m_cpu_util": util,
            "m_cpu_util_raw": util,
            "m_rx_cpu_util": 0.0,
            "m_bw_per_core": (tx_bps / 1e9 / (util / 100 * 4)) if util else 0.0,
            "m_tx_bps": tx_bps,
            "m_rx_bps": rx_bps,
            "m_tx_pps": sum(p.tx_pps for p in ports),
            "m_rx_pps": sum(p.rx_pps for p in ports),
            "m_rx_drop_bps": max(0.0, tx_bps - rx_bps),
            "m_rx_core_pps": 0.0,
            "m_total_tx_pkts": sum(p.opackets for p in ports),
            "m_total_rx_pkts": sum(self.engine.received(p.port_id)[0] for p in ports),
            "m_total_tx_bytes": sum(p.obytes for p in ports),
            "m_total_rx_bytes": sum(self.engine.received(p.port_id)[1] for p in ports),
            "m_total_queue_full": 0,
            "m_total_queue_drop": 0,
            "m_total_alloc_error": 0,
            "m_active_flows": 0,
            "m_open_flows": 0,
            "m_active_sockets": 0,
            "m_socket_util": 0.0,
            "m_platform_factor": 1.0,
            "m_tx_expected_pps": sum(p.tx_pps for p in ports),
            "m_tx_expected_bps": tx_bps,
            "m_tx_expected_cps": 0.0,
            "m_tx_cps": 0.0,
            "m_total_clients": 0,
            "m_total_servers": 0,
        }

    def _port_stats(self, port_id: int) -> dict[str, Any]:
        self.engine.advance(self._now())
        port = self.engine.ports[port_id]
        ipackets, ibytes = self.engine.received(port_id)
        return {
            "opackets": port.opackets,
            "ipackets": ipackets,
            "obytes": port.obytes,
            "ibytes": ibytes,
            "oerrors": 0,
            "ierrors": 0,
            "m_total_tx_bps": port.tx_bps,
            "m_total_tx_pps": port.tx_pps,
            "m_total_rx_bps": port.rx_bps,
            "m_total_rx_pps": port.rx_pps,
            "m_cpu_util": self._cpu_util(),
        }

    def _get_pgid_stats(self, params: dict[str, Any]) -> Any:
        self.engine.advance(self._now())
        wanted = [int(pg) for pg in params.get("pgids", [])]
        ports = [str(p.port_id) for p in self.engine.ports]
        flow: dict[str, Any] = {}
        latency: dict[str, Any] = {}
        versions: dict[str, int] = {}
        for pg_id in wanted:
            pg = self.engine.pgs.get(pg_id)
            if pg is None:
                continue
            versions[str(pg_id)] = pg.ver_id
            flow[str(pg_id)] = _flow_json(pg, ports, self.engine)
            if pg.latency:
                latency[str(pg_id)] = _latency_json(pg)
        flow["g"] = {"rx_err": dict.fromkeys(ports, 0), "tx_err": dict.fromkeys(ports, 0)}
        latency["g"] = {"old_flow": 0, "bad_hdr": 0}
        return {"flow_stats": flow, "latency": latency, "ver_id": versions}

    # --- barriers and async events

    def _publish_now(self, params: dict[str, Any]) -> Any:
        key, baseline = params["key"], bool(params.get("baseline", False))
        self.engine.advance(self._now())
        if self._legacy_async:
            self._outbox.append(self._global_message(baseline))
        self._enqueue({"name": "trex-barrier", "type": key, "data": {}})
        return {}

    def _get_async_events(self, params: dict[str, Any]) -> Any:
        session_id = int(params["session_id"])
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = _Session(session_id)
        events = list(session.queue)
        session.queue.clear()
        return {"data": events}

    # --- views for the lab's control channel

    def snapshot(self) -> dict[str, Any]:
        """Owners, streams and traffic of every port, for tests and `lab status`."""
        with self._lock:
            self.engine.advance(self.clock.now_s())
            return {
                "api": self.api,
                "async_format": "legacy" if self._legacy_async else "current",
                "rpc_calls": self.rpc_calls,
                "trials_run": self.engine.trials_run,
                "windows": self.engine.windows,
                "ports": [
                    {
                        "port_id": p.port_id,
                        "owner": p.owner,
                        "owned": p.handler is not None,
                        "state": p.state,
                        "link_up": p.link_up,
                        "streams": sorted(p.streams),
                        "transmitting": p.run is not None,
                        "opackets": p.opackets,
                        "ipackets": p.ipackets,
                    }
                    for p in self.engine.ports
                ],
            }

    def set_link(self, port_id: int, up: bool) -> None:
        with self._lock:
            self.engine.set_link(port_id, up, self.clock.now_s())
            self._enqueue_event(
                EVENT_PORT_ATTR_CHG, {"port_id": port_id, "attr": self._port_attr(port_id)}
            )


def _profile(params: dict[str, Any], default: str) -> str:
    return str(params.get("profile_id", default))


_XSTATS = [
    "rx_good_packets",
    "tx_good_packets",
    "rx_good_bytes",
    "tx_good_bytes",
    "rx_missed_errors",
    "tx_errors",
]


def _flow_json(pg: PgStats, ports: list[str], engine: Engine) -> dict[str, Any]:
    def per_port(values: list[Any]) -> dict[str, Any]:
        return {port: values[i] for i, port in enumerate(ports)}

    flying = [engine.in_flight(i, pg.rx_pps[i]) for i in range(len(ports))]
    rx_pkts = [max(0, n - f) for n, f in zip(pg.rx_pkts, flying, strict=True)]
    rx_bytes = [
        max(0, b - round(f * pg.rx_bps[i] / 8 / pg.rx_pps[i])) if f else b
        for i, (b, f) in enumerate(zip(pg.rx_bytes, flying, strict=True))
    ]
    return {
        "tp": per_port(pg.tx_pkts),
        "tb": per_port(pg.tx_bytes),
        "rp": per_port(rx_pkts),
        "rb": per_port(rx_bytes),
        "tps": per_port(pg.tx_pps),
        "tbs": per_port(pg.tx_bps),
        "rps": per_port(pg.rx_pps),
        "rbs": per_port(pg.rx_bps),
    }


def _latency_json(pg: PgStats) -> dict[str, Any]:
    lat: dict[str, Any] = {
        "average": 0.0,
        "total_max": 0,
        "total_min": 0,
        "last_max": 0,
        "jit": 0,
    }  # no histogram until samples arrive: the legacy client takes min() of its keys
    if pg.lat_samples and pg.hdr is not None:
        lat = {
            "average": pg.lat_sum_us / pg.lat_samples,
            "total_max": round(pg.lat_max_us),
            "total_min": round(pg.lat_min_us),
            "last_max": round(pg.last_max_us),
            "jit": round(pg.jitter_us),
            "histogram": trex_histogram(pg.hdr),
            "hdrh": base64_text(pg.hdr.encode()),
        }
    return {
        "lat": lat,
        "er": {"drp": max(0, pg.dropped), "ooo": 0, "dup": 0, "sth": 0, "stl": 0},
    }


def trex_histogram(hdr: Any) -> dict[str, int]:
    """TRex's coarse latency histogram: buckets at 1-9 x 10^k us, keyed by lower edge."""
    buckets: dict[int, int] = {}
    # the counts array read directly: hdrh's recorded-value iterator takes tens of ms
    counts = np.ctypeslib.as_array(hdr.counts)
    for index in np.flatnonzero(counts):
        value = int(hdr.get_highest_equivalent_value(hdr.get_value_from_index(int(index))))
        if value < 10:
            edge = 0
        else:
            scale = 10 ** (len(str(value)) - 1)
            edge = value // scale * scale
        buckets[edge] = buckets.get(edge, 0) + int(counts[index])
    return {str(k): v for k, v in sorted(buckets.items())}


def base64_text(data: bytes | str) -> str:
    """HdrHistogram's encode() already gives base64; keep it as text."""
    if isinstance(data, bytes):
        return data.decode("ascii")
    return base64.b64encode(data.encode()).decode("ascii")


def _bound_port(sock: zmq.Socket[Any]) -> int:
    endpoint = sock.getsockopt(zmq.LAST_ENDPOINT)
    text = endpoint.decode() if isinstance(endpoint, bytes) else str(endpoint)
    return int(text.rsplit(":", 1)[1])
