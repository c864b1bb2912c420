"""What a run's manifest records about the software that produced it."""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import asdict
from importlib import metadata
from typing import Any

from bench import __version__
from bench.profiles import RunBundle, TrafficProfile

PACKAGES = (
    "numpy",
    "pandas",
    "scipy",
    "pyarrow",
    "pydantic",
    "kubernetes",
    "paramiko",
    "pyzmq",
    "hdrhistogram",
    "MLRsearch",
    "trex-stl-lib",
    "lbr-trex-client",
    "matplotlib",
)


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _tool_version(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if done.returncode == 0 and text else None


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {
        "cnfbench": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for name in PACKAGES:
        out[name] = _package_version(name)
    out["helm"] = _tool_version(["helm", "version", "--short"])
    out["kubectl"] = _tool_version(["kubectl", "version", "--client"])
    return out


def profiles_record(bundle: RunBundle) -> dict[str, dict[str, str]]:
    names = ["run", "cnf", "testbed", "traffic", "tiers"]
    loaded = [bundle.run, bundle.cnf, bundle.testbed, bundle.traffic, bundle.tiers]
    return {
        name: {"path": str(item.path), "sha256": item.sha256, "content": item.text}
        for name, item in zip(names, loaded, strict=True)
        if item is not None
    }


def methodology(traffic: TrafficProfile) -> dict[str, Any]:
    goals = traffic.search.resolved_goals()
    return {
        "method": traffic.search.method,
        "preset": traffic.search.preset,
        "warm_start": traffic.search.warm_start,
        "warm_start_margin": traffic.search.warm_start_margin,
        "goals": [asdict(g) for g in goals],
        "frame_sizes": list(traffic.frame_sizes),
        "flow_counts": list(traffic.flow_counts),
        "directions": [d.value for d in traffic.directions],
        "latency": {
            "rate_pps": traffic.latency.rate,
            "loads": [x if x == "NDR" else float(x) for x in traffic.latency.loads],
            "trial_duration_s": traffic.latency.trial_duration,
        },
        "sessions": {
            "flow_counts": list(traffic.sessions.flow_counts),
            "hold_fraction": traffic.sessions.hold_fraction,
        },
        "learning_frames": traffic.learning_frames,
        "rx_delay_s": traffic.rx_delay,
        "intended_load": "aggregate over directions, frames per second",
        "frame_size": "L2 bytes including FCS; line rate counts 20 B of preamble and gap",
    }
