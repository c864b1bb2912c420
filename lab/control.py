"""The lab's control channel: a small JSON-over-HTTP server on loopback, for tests.

It is how tests and benchmarks reach behind the emulated equipment: the ground truth
of the data-plane model, the replica set, fault injection and the generator's view of
owners and traffic.  The controller never uses it for measuring.

Routes (JSON bodies and answers):

- ``GET /status``: lab time, replicas, the TRex server's ports, owners and traffic;
- ``GET /ground-truth?frame_size=64&flows=1000&replicas=2&bidirectional=1&loss_ratio=0
  &noise=0&trial=N&steering=shared-front``: ``{"pps": ...}``, aggregate frames/s;
  ``frame_size`` may be ``IMIX`` (64/594/1518 bytes at 7:4:1); without ``replicas``,
  for the replicas present now with their own models;
- ``GET /trial``: the latest trial index and its capacity noise factor;
- ``POST /replicas`` ``{"count": N}``: add or remove replicas now;
- ``POST /faults`` ``{"kind": ...}``: ``drop_connection`` (``seconds``,
  ``after_calls``), ``delay_rpc`` (``method``, ``seconds``, ``times``), ``fail_rpc``
  (``method``, ``message``, ``code``, ``times``), ``link`` (``port``, ``up``),
  ``restart_trex``; ``POST /faults/clear`` removes pending ones;
- ``GET /trex``: the TRex server's snapshot.
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from lab.errors import LabError
from lab.trex import TRexServer
from lab.trex.wire import SERVER_ERROR

if TYPE_CHECKING:
    from lab.supervisor import LabContext, Route

log = logging.getLogger(__name__)

IMIX = ((64, 7.0), (594, 4.0), (1518, 1.0))  # NFVBench's IMIX, frame counts 7:4:1


class ControlService:
    name = "control"

    def __init__(self) -> None:
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, ctx: LabContext) -> dict[str, Any]:
        ctx.routes.update(lab_routes(ctx))
        routes = ctx.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

            def _dispatch(self, method: str) -> None:
                url = urlsplit(self.path)
                route = routes.get((method, url.path))
                if route is None:
                    self._answer(HTTPStatus.NOT_FOUND, {"error": f"no route {method} {url.path}"})
                    return
                try:
                    request = self._request(url.query)
                    self._answer(HTTPStatus.OK, route(request))
                except (LabError, KeyError, TypeError, ValueError) as exc:
                    self._answer(HTTPStatus.BAD_REQUEST, {"error": str(exc)})

            def _request(self, query: str) -> dict[str, Any]:
                request: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    body = json.loads(self.rfile.read(length))
                    if not isinstance(body, dict):
                        raise ValueError("the request body must be a JSON object")
                    request.update(body)
                return request

            def _answer(self, status: HTTPStatus, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("control: " + format, *args)

        self._httpd = ThreadingHTTPServer((ctx.host, ctx.options.control_port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="lab-control", daemon=True
        )
        self._thread.start()
        port = self._httpd.server_address[1]
        return {"host": ctx.host, "port": port, "url": f"http://{ctx.host}:{port}"}

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def lab_routes(ctx: LabContext) -> dict[tuple[str, str], Route]:
    dataplane = ctx.dataplane

    def status(_req: dict[str, Any]) -> Any:
        trex = ctx.services.get("trex")
        server = getattr(trex, "server", None)
        return {
            "now_s": ctx.clock.now_s(),
            "time_scale": ctx.clock.time_scale,
            "seed": dataplane.seed,
            "vendor": dataplane.model.name,
            "replicas": dataplane.replica_ids(),
            "replica_counters": {k: v.__dict__ for k, v in dataplane.replica_counters().items()},
            "trex": server.snapshot() if isinstance(server, TRexServer) else None,
        }

    def ground_truth(req: dict[str, Any]) -> Any:
        size = str(req.get("frame_size", "64"))
        sizes = IMIX if size.upper() == "IMIX" else ((int(size), 1.0),)
        trial = req.get("trial")
        pps = dataplane.ground_truth(
            sizes,
            int(req.get("flows", 1000)),
            None if req.get("replicas") in (None, "", "live") else int(req["replicas"]),
            _flag(req.get("bidirectional", True)),
            loss_ratio=float(req.get("loss_ratio", 0.0)),
            noise=_flag(req.get("noise", False)),
            trial=None if trial in (None, "") else int(trial),
            steering=str(req.get("steering", "shared-front")),
        )
        return {"pps": pps}

    def trial(_req: dict[str, Any]) -> Any:
        last = dataplane.last_trial
        return {"trial": last, "noise_factor": dataplane.trial_noise(last)}

    def replicas(req: dict[str, Any]) -> Any:
        count = int(req["count"])
        if count < 0:
            raise LabError(f"replica count must not be negative: {count}")
        dataplane.set_replicas(count, at_s=ctx.clock.now_s())
        return {"replicas": dataplane.replica_ids()}

    return {
        ("GET", "/status"): status,
        ("GET", "/ground-truth"): ground_truth,
        ("GET", "/trial"): trial,
        ("POST", "/replicas"): replicas,
    }


def trex_routes(server: TRexServer) -> dict[tuple[str, str], Route]:
    def inject(req: dict[str, Any]) -> Any:
        kind = req["kind"]
        faults = server.faults
        with server.lock:
            if kind == "drop_connection":
                faults.drop_for_s = float(req.get("seconds", 1.0))
                faults.drop_after_calls = int(req.get("after_calls", 0))
            elif kind == "delay_rpc":
                faults.delay_s[str(req.get("method", "*"))] = (
                    float(req["seconds"]),
                    int(req.get("times", 1)),
                )
            elif kind == "fail_rpc":
                faults.fail[str(req.get("method", "*"))] = (
                    str(req.get("message", "injected failure")),
                    int(req.get("code", SERVER_ERROR)),
                    int(req.get("times", 1)),
                )
        if kind == "link":
            server.set_link(int(req["port"]), _flag(req.get("up", False)))
        elif kind == "restart_trex":
            threading.Thread(target=server.restart, name="trex-restart", daemon=True).start()
        elif kind not in ("drop_connection", "delay_rpc", "fail_rpc"):
            raise LabError(
                f"unknown fault kind {kind!r}; known: drop_connection, delay_rpc, fail_rpc, "
                "link, restart_trex"
            )
        return {"injected": kind}

    def clear(_req: dict[str, Any]) -> Any:
        with server.lock:
            server.faults.delay_s.clear()
            server.faults.fail.clear()
            server.faults.drop_for_s = None
        return {"cleared": True}

    return {
        ("GET", "/trex"): lambda _req: server.snapshot(),
        ("POST", "/faults"): inject,
        ("POST", "/faults/clear"): clear,
    }


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")
