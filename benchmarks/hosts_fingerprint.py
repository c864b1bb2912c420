"""How long a host fingerprint takes: locally, over SSH batched (the default), over SFTP.

A real sshd is started on 127.0.0.1 (as the tests do; needs root and openssh-server) and
the collectors read this machine and the E810 fixture tree (128 CPUs, 19 NIC functions,
two NUMA nodes).  Over SSH the default reads every path the collectors announce in one
globbing shell command, so its cost does not grow with the round-trip time; SFTP costs
several round trips per file (open, read, read to EOF, close), which is cheap on
loopback and dear behind a jump host across sites.  Also measured: one ``true`` command,
the floor of every TRex lifecycle step.

Target: the default SSH fingerprint of the E810 host in under 2 s on loopback, so
probing a four-host testbed stays a matter of seconds.

Run: ``python benchmarks/hosts_fingerprint.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hosts import SshTarget, collect_fingerprint, connect, local_fingerprint
from tests.fixtures.hosts.sshd import start_sshd

E810 = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "hosts" / "e810-sriov"


def timed(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        sshd = start_sshd(Path(tmp) / "sshd")
        target = SshTarget(
            "127.0.0.1",
            port=sshd.port,
            key_file=str(sshd.user_key),
            use_agent=False,
            known_hosts=str(sshd.known_hosts),
        )
        try:
            connect_s = timed(lambda: connect(target).close(), args.repeat)
            with connect(target) as host:
                rows = [
                    ("local, this machine", timed(local_fingerprint, args.repeat)),
                    ("local, E810 tree", timed(lambda: local_fingerprint(str(E810)), args.repeat)),
                    (
                        "ssh+sftp, this machine",
                        timed(
                            lambda: collect_fingerprint(host, fs=host.filesystem(method="sftp")),
                            args.repeat,
                        ),
                    ),
                    (
                        "ssh+sftp, E810 tree",
                        timed(
                            lambda: collect_fingerprint(
                                host, fs=host.filesystem(str(E810), method="sftp")
                            ),
                            args.repeat,
                        ),
                    ),
                    (
                        "ssh+exec, this machine",
                        timed(lambda: collect_fingerprint(host), args.repeat),
                    ),
                    (
                        "ssh+exec, E810 tree",
                        timed(
                            lambda: collect_fingerprint(host, root=str(E810)),
                            args.repeat,
                        ),
                    ),
                    ("ssh, one `true`", timed(lambda: host.run("true"), args.repeat * 5)),
                ]
        finally:
            sshd.stop()

    print(f"{'what':<26} {'median s':>9}")
    print(f"{'ssh connect + auth':<26} {connect_s:9.3f}")
    for name, seconds in rows:
        print(f"{name:<26} {seconds:9.3f}")
    sftp = dict(rows)["ssh+sftp, E810 tree"]
    batched = dict(rows)["ssh+exec, E810 tree"]
    print(f"sftp / batched exec on the E810 tree: {sftp / batched:.1f}x")
    verdict = "met" if batched < 2 else "NOT met"
    print(f"target: default SSH fingerprint of the E810 tree < 2 s: {verdict}")


if __name__ == "__main__":
    main()
