"""The TRex worker: a subprocess that imports one TRex client library and runs trials.

Started by `traffic.trex.driver` as ``python -m traffic.trex.worker --client current``
in a new process session.  It reads JSON-line requests from one pipe and answers on
another (see `traffic.trex.channel`).  Everything that touches the client library lives
here: its `sys.path` changes, its vendored packages and its threads never reach the
controller.

Requests (``op`` and its arguments) and their results:

- ``connect {server, sync_port, async_port, ports}`` -> server version, client, ports;
- ``trial {streams, ports, duration_s, rx_delay_s}`` -> counters after the trial;
- ``start {streams, ports}`` / ``sample {ports}`` / ``stop {ports, rx_delay_s}`` for
  continuous traffic -> cumulative counters since ``start``;
- ``close`` -> stops traffic, releases the ports and exits.

When the controller goes away (end of file on the request pipe) or sends SIGTERM, the
worker stops its traffic and releases its ports before it exits.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import time
import types
from collections.abc import Callable
from typing import Any

log = logging.getLogger("traffic.trex.worker")

# What a client library raises, besides its own error class, when a server misbehaves
# or a connection drops (the legacy client is known to raise TypeError from its timeout
# path, see the TRex RPC notes).
LIBRARY_FAILURES: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    RuntimeError,
    IndexError,
)


def load_library(client: str, trex_path: str | None) -> tuple[types.ModuleType, str]:
    """Import the STL API of one client generation; return it and where it came from.

    With `trex_path` (a client directory of a TRex installation) that directory comes
    first on `sys.path`, so the installation's client is the one imported."""
    if trex_path:
        sys.path.insert(0, trex_path)
    if client == "current":
        if not trex_path:
            importlib.import_module("lbr_trex_client")  # puts TRex's client on sys.path
        api = importlib.import_module("trex.stl.api")
        return api, f"trex.stl from {_package_dir(api, 3)}"
    if client == "legacy":
        api = importlib.import_module("trex_stl_lib.api")
        return api, f"trex_stl_lib from {_package_dir(api, 2)}"
    raise SystemExit(f"unknown client {client!r}")


def _package_dir(module: types.ModuleType, depth: int) -> str:
    """The directory `depth` levels above `module`'s file: where its package was found."""
    path = os.path.abspath(module.__file__ or "")
    for _ in range(depth):
        path = os.path.dirname(path)
    return path


class Session:
    """One connection through the client library."""

    def __init__(self, lib: types.ModuleType, client: str, source: str) -> None:
        self.lib = lib
        self.client_kind = client
        self.source = source
        self.client: Any = None
        self.ports: list[int] = []
        self.error_types: tuple[type[BaseException], ...] = (lib.STLError, *LIBRARY_FAILURES)

    # --- requests

    def connect(self, server: str, sync_port: int, async_port: int, ports: list[int]) -> Any:
        self.client = self.lib.STLClient(
            server=server,
            sync_port=sync_port,
            async_port=async_port,
            **self._quiet(),
        )
        self.client.connect()
        self.ports = list(ports)
        self.client.reset(ports=self.ports)
        version = self.client.get_server_version()
        infos = self.client.get_port_info(ports=self.ports)
        return {
            "version": str(version.get("version", "")),
            "client": self._client_version(),
            "ports": [
                {
                    "port_id": int(port),
                    "speed_bps": float(info.get("speed", 0.0)) * 1e9,
                    "mac": str(info.get("src_mac", "")),
                    "driver": str(info.get("driver", "")),
                    "numa": info.get("numa"),
                    "link": str(info.get("link", "")),
                }
                for port, info in zip(self.ports, infos, strict=True)
            ],
        }

    def trial(
        self, streams: list[dict[str, Any]], ports: list[int], duration_s: float, rx_delay_s: float
    ) -> Any:
        t0 = time.perf_counter()
        self._check_links(ports)
        self._load(streams, ports)
        t1 = time.perf_counter()
        self.client.start(ports=ports, mult="1", duration=duration_s, force=True)
        self.client.wait_on_traffic(ports=ports, rx_delay_ms=max(1, round(rx_delay_s * 1000)))
        t2 = time.perf_counter()
        stats = self._stats(ports)
        # wall seconds spent in the client library: loading streams, from start until
        # the ports were idle and the rx delay over, and reading the counters
        stats["timing"] = {
            "load_s": t1 - t0,
            "run_s": t2 - t1,
            "stats_s": time.perf_counter() - t2,
        }
        return stats

    def start(self, streams: list[dict[str, Any]], ports: list[int]) -> Any:
        self._check_links(ports)
        self._load(streams, ports)
        self.client.start(ports=ports, mult="1", duration=-1, force=True)
        return self._stats(ports)

    def sample(self, ports: list[int]) -> Any:
        return self._stats(ports)

    def stop(self, ports: list[int], rx_delay_s: float) -> Any:
        self.client.stop(ports=ports, rx_delay_ms=max(1, round(rx_delay_s * 1000)))
        return self._stats(ports)

    def shutdown(self) -> None:
        """Stop traffic, release ports, disconnect; quietly, as the process is ending."""
        if self.client is None:
            return
        client, self.client = self.client, None
        try:
            client.disconnect(stop_traffic=True, release_ports=True)
        except self.error_types as exc:
            log.warning("disconnect failed: %s", exc)

    # --- helpers

    def _quiet(self) -> dict[str, Any]:
        if self.client_kind == "legacy":
            return {"verbose_level": self.lib.LoggerApi.VERBOSE_QUIET}
        return {"verbose_level": "error"}

    def _client_version(self) -> str:
        if self.client_kind == "legacy":
            return f"trex-stl-lib (STL API 4) [{self.source}]"
        return f"trex.stl (STL API 5) [{self.source}]"

    def _check_links(self, ports: list[int]) -> None:
        for port, info in zip(ports, self.client.get_port_info(ports=ports), strict=True):
            if str(info.get("link", "UP")).upper() == "DOWN":
                raise PortDown(f"port {port} link is down")

    def _load(self, streams: list[dict[str, Any]], ports: list[int]) -> None:
        self.client.remove_all_streams(ports=ports)
        by_port: dict[int, list[Any]] = {}
        for body in streams:
            by_port.setdefault(int(body["tx_port"]), []).append(self._stream(body))
        for port, objects in by_port.items():
            self.client.add_streams(objects, ports=[port])
        self.client.clear_stats(ports=ports)

    def _stream(self, body: dict[str, Any]) -> Any:
        lib = self.lib
        instructions: list[Any] = []
        for var in body.get("flow_vars", ()):
            instructions.append(
                lib.STLVmFlowVar(
                    name=var["name"],
                    min_value=int(var["min_value"]),
                    max_value=int(var["max_value"]),
                    size=int(var["size"]),
                    op=var["op"],
                )
            )
            instructions.append(lib.STLVmWrFlowVar(fv_name=var["name"], pkt_offset=var["offset"]))
        if instructions and body.get("ipv4_offset") is not None:
            instructions.append(lib.STLVmFixIpv4(offset=int(body["ipv4_offset"])))
        vm = lib.STLScVmRaw(instructions) if instructions else None
        packet = lib.STLPktBuilder(pkt_buffer=bytes.fromhex(body["packet_hex"]), vm=vm)
        flow_stats = None
        if body.get("pg_id") is not None:
            flow_stats = lib.STLFlowLatencyStats(pg_id=int(body["pg_id"]))
        return lib.STLStream(
            name=body["name"],
            packet=packet,
            mode=lib.STLTXCont(pps=max(float(body["pps"]), 1e-3)),
            flow_stats=flow_stats,
            mac_dst_override_mode=lib.STLStreamDstMAC_PKT,
        )

    def _stats(self, ports: list[int]) -> Any:
        stats = self.client.get_stats(ports=ports)
        out: dict[str, Any] = {"ports": {}, "flow_stats": {}, "latency": {}}
        for port in ports:
            s = stats.get(port, {})
            out["ports"][str(port)] = {
                key: s.get(key, 0)
                for key in ("opackets", "ipackets", "obytes", "ibytes", "oerrors", "ierrors")
            }
            out["ports"][str(port)]["tx_pps"] = s.get("tx_pps", 0.0)
        for pg, body in (stats.get("flow_stats") or {}).items():
            if pg == "global" or not isinstance(body, dict):
                continue
            out["flow_stats"][str(pg)] = {
                "tx_pkts": _per_port(body.get("tx_pkts")),
                "rx_pkts": _per_port(body.get("rx_pkts")),
            }
        for pg, body in (stats.get("latency") or {}).items():
            if pg == "global" or not isinstance(body, dict):
                continue
            latency = body.get("latency") or {}
            out["latency"][str(pg)] = {
                "total_min": latency.get("total_min"),
                "total_max": latency.get("total_max"),
                "average": latency.get("average"),
                "jitter": latency.get("jitter"),
                "histogram": {str(k): v for k, v in (latency.get("histogram") or {}).items()},
                "hdrh": latency.get("hdrh"),
                "errors": body.get("err_cntrs") or {},
            }
        return out


def _per_port(counts: Any) -> dict[str, int]:
    if not isinstance(counts, dict):
        return {}
    return {str(k): int(v) for k, v in counts.items() if isinstance(v, int | float)}


class PortDown(RuntimeError):
    """A port's link is down: the trial cannot measure anything."""


def serve(session: Session, requests: Any, responses: Any) -> None:
    handlers: dict[str, Callable[..., Any]] = {
        "connect": session.connect,
        "trial": session.trial,
        "start": session.start,
        "sample": session.sample,
        "stop": session.stop,
    }
    for line in requests:
        request = json.loads(line)
        op = request.get("op")
        reply: dict[str, Any] = {"id": request.get("id")}
        if op == "close":
            session.shutdown()
            reply.update(ok=True, result=None)
            responses.write(json.dumps(reply) + "\n")
            responses.flush()
            return
        try:
            handler = handlers[op]
            if op != "connect" and session.client is None:
                raise RuntimeError("not connected")
            reply.update(ok=True, result=handler(**request.get("args", {})))
        except PortDown as exc:
            reply.update(ok=False, error=str(exc), kind="port-down")
        except session.error_types as exc:
            reply.update(ok=False, error=f"{type(exc).__name__}: {exc}", kind="library")
        responses.write(json.dumps(reply) + "\n")
        responses.flush()
    # End of file: the controller is gone; leave the generator idle and the ports free.
    session.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="traffic.trex.worker")
    parser.add_argument("--requests-fd", type=int, required=True)
    parser.add_argument("--responses-fd", type=int, required=True)
    parser.add_argument("--client", choices=("current", "legacy"), required=True)
    parser.add_argument("--trex-path", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    lib, source = load_library(args.client, args.trex_path)
    session = Session(lib, args.client, source)

    def terminate(signum: int, _frame: Any) -> None:
        session.shutdown()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the controller decides when to stop
    with (
        os.fdopen(args.requests_fd, "r", encoding="utf-8") as requests,
        os.fdopen(args.responses_fd, "w", encoding="utf-8") as responses,
    ):
        serve(session, requests, responses)
    return 0


if __name__ == "__main__":
    sys.exit(main())
