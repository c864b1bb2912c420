"""Per-pod Prometheus ``/metrics`` endpoints on loopback.

Each running CNF pod serves the prometheus_client exposition format on its own loopback
port.  The counters are the pod's replica counters in the data-plane model (frames and
bytes received, transmitted and dropped, both directions summed), so what a scrape reads
agrees with what the generator measured through that replica.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import start_wsgi_server
from prometheus_client.registry import Collector, CollectorRegistry

log = logging.getLogger(__name__)

COUNTER_FIELDS = (
    ("rx_packets", "Frames received by the CNF on its data-plane interfaces."),
    ("rx_bytes", "Bytes received by the CNF on its data-plane interfaces."),
    ("tx_packets", "Frames transmitted by the CNF on its data-plane interfaces."),
    ("tx_bytes", "Bytes transmitted by the CNF on its data-plane interfaces."),
    ("drop_packets", "Frames received and not forwarded."),
    ("drop_bytes", "Bytes received and not forwarded."),
)

CounterSource = Callable[[], Mapping[str, float] | None]


class _PodCollector(Collector):
    def __init__(
        self, pod: str, model: str, counters: CounterSource, ready: Callable[[], bool]
    ) -> None:
        self._pod = pod
        self._model = model
        self._counters = counters
        self._ready = ready
        self._last: dict[str, float] = {name: 0.0 for name, _ in COUNTER_FIELDS}

    def collect(self) -> Iterator[Any]:
        current = self._counters()
        if current is not None:
            # Counters never go backwards: a replica that left the data plane keeps its
            # last values until the process exits.
            for name, _ in COUNTER_FIELDS:
                self._last[name] = max(self._last[name], float(current.get(name, 0.0)))
        info = GaugeMetricFamily(
            "cnf_info", "The CNF instance and its data-plane model.", labels=["pod", "model"]
        )
        info.add_metric([self._pod, self._model], 1.0)
        yield info
        ready = GaugeMetricFamily("cnf_ready", "1 when the data plane is forwarding.")
        ready.add_metric([], 1.0 if self._ready() else 0.0)
        yield ready
        for name, doc in COUNTER_FIELDS:
            family = CounterMetricFamily(f"cnf_{name}", doc)
            family.add_metric([], self._last[name])
            yield family


class MetricsEndpoint:
    """One pod's exporter: a registry with its collector and a loopback HTTP server."""

    def __init__(
        self, pod: str, model: str, counters: CounterSource, ready: Callable[[], bool]
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_PodCollector(pod, model, counters, ready))
        self._server, self._thread = start_wsgi_server(0, addr="127.0.0.1", registry=self.registry)
        self.port: int = int(self._server.server_port)
        self._lock = threading.Lock()
        self._closed = False
        log.debug("metrics for %s on 127.0.0.1:%d", pod, self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def close(self, wait: bool = False) -> None:
        """Stop serving.  The server loop notices within its poll interval (0.5 s), so
        unless `wait` is set that happens on a helper thread and the caller moves on."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        closer = threading.Thread(target=self._shutdown, name="metrics-close", daemon=True)
        closer.start()
        if wait:
            closer.join(timeout=5)

    def _shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
