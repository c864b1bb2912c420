"""A `Generator` from a testbed profile's generator section.

`make_generator(spec)` takes anything shaped like `bench.profiles.GeneratorSpec` (type,
host, client, trex_path, sync_port, async_port, nfvbench_url, ports with id, speed,
dst_mac, vlan); the traffic plane does not import the controller, so the shape is a
Protocol here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from traffic.errors import GeneratorUnavailable
from traffic.model import Generator, PortTarget
from traffic.nfvbench import NfvbenchConfig, NfvbenchGenerator
from traffic.trex.driver import TrexConfig, TrexGenerator


class PortSettings(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def speed(self) -> float: ...
    @property
    def dst_mac(self) -> str | None: ...
    @property
    def vlan(self) -> int | None: ...


class GeneratorSettings(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def client(self) -> str: ...
    @property
    def trex_path(self) -> str | None: ...
    @property
    def sync_port(self) -> int: ...
    @property
    def async_port(self) -> int: ...
    @property
    def nfvbench_url(self) -> str | None: ...
    @property
    def ports(self) -> Sequence[PortSettings]: ...


def make_generator(spec: GeneratorSettings, rx_delay_s: float = 0.1) -> Generator:
    """The generator a testbed names; call `open()` on it before trials."""
    speeds = {p.id: float(p.speed) for p in spec.ports}
    if spec.type == "trex":
        return TrexGenerator(
            TrexConfig(
                host=spec.host,
                sync_port=spec.sync_port,
                async_port=spec.async_port,
                client=spec.client,
                trex_path=spec.trex_path,
                ports=tuple(PortTarget(p.id, p.dst_mac, p.vlan) for p in spec.ports),
                port_speeds_bps=speeds,
                rx_delay_s=rx_delay_s,
            )
        )
    if spec.type == "nfvbench":
        if not spec.nfvbench_url:
            raise GeneratorUnavailable("testbed generator.nfvbench_url is required for NFVBench")
        return NfvbenchGenerator(NfvbenchConfig(spec.nfvbench_url, speeds))
    raise GeneratorUnavailable(f"unknown generator type {spec.type!r}; use trex or nfvbench")
