"""``python -m lab up [options]``: run one lab supervisor in the foreground.

The controller starts this as a separate process (see `bench.labctl`); it writes
``<state-dir>/state.json`` once every server listens and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from pathlib import Path

from lab.dataplane import vendor_names
from lab.errors import LabError
from lab.supervisor import LabOptions, Supervisor
from lab.trex import RELEASES


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the lab until SIGTERM")
    up.add_argument("--state-dir", type=Path, required=True)
    up.add_argument("--seed", type=int, default=1)
    up.add_argument("--time-scale", type=float, default=200.0)
    up.add_argument("--vendor", default="vpp-router", help=f"one of {', '.join(vendor_names())}")
    up.add_argument("--replicas", type=int, default=1, help="ready replicas at start (warm)")
    up.add_argument("--no-noise", action="store_true", help="no trial noise or loss bursts")
    up.add_argument("--port-speed-gbps", type=float, default=25.0)
    up.add_argument("--trex-sync-port", type=int, default=0)
    up.add_argument("--trex-async-port", type=int, default=0)
    up.add_argument("--trex-api", default="auto", choices=["auto", *RELEASES])
    up.add_argument("--control-port", type=int, default=0)
    up.add_argument("--nodes", type=int, default=3, help="worker nodes of the lab cluster")
    up.add_argument("--vfs-per-node", type=int, default=8, help="SR-IOV VFs per node")
    up.add_argument("--k8s-port", type=int, default=0, help="the Kubernetes API server's port")
    up.add_argument("--k8s-version", default="v1.32.4", help="the version the API server reports")
    up.add_argument(
        "--exit-with",
        type=int,
        metavar="PID",
        help="stop when process PID is gone (an ephemeral lab follows its controller)",
    )
    up.add_argument("-v", "--verbose", action="count", default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose > 1 else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    if args.time_scale <= 0:
        print("python -m lab: error: --time-scale must be positive", file=sys.stderr)
        return 2
    options = LabOptions(
        state_dir=args.state_dir.resolve(),
        seed=args.seed,
        time_scale=args.time_scale,
        vendor=args.vendor,
        replicas=args.replicas,
        noise=not args.no_noise,
        port_speed_bps=args.port_speed_gbps * 1e9,
        trex_sync_port=args.trex_sync_port,
        trex_async_port=args.trex_async_port,
        trex_api=args.trex_api,
        control_port=args.control_port,
        nodes=args.nodes,
        vfs_per_node=args.vfs_per_node,
        k8s_port=args.k8s_port,
        k8s_version=args.k8s_version,
    )
    supervisor = Supervisor(options)
    try:
        supervisor.start()
    except (LabError, OSError) as exc:
        print(f"python -m lab: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, LabError) else 1
    if args.exit_with:
        threading.Thread(
            target=_follow, args=(args.exit_with, supervisor), name="exit-with", daemon=True
        ).start()
    supervisor.serve_forever()
    return 0


def _follow(pid: int, supervisor: Supervisor) -> None:
    """Stop the lab once `pid` has gone, so a killed controller leaves nothing behind."""
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            logging.getLogger(__name__).info("process %d is gone: stopping the lab", pid)
            supervisor.request_stop()
            return
        except PermissionError:
            pass
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
