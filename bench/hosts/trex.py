"""The TRex server's lifecycle on the generator host, over any `Runner`.

TRex runs as ``./t-rex-64 -i --cfg <file>`` from its release directory: ``-i`` is the
interactive (stateless RPC) mode the client libraries drive.  The server is started in
its own session (``setsid``) with its output in a log file, so stopping it signals the
whole process group (``t-rex-64`` is a shell wrapper around ``_t-rex-64``), and a server
that fails to start leaves its reasons (EAL errors, a port it cannot bind) in the log
this module fetches into the error.

Readiness is the RPC port answering ``get_version`` (JSON-RPC 2.0 over ZMQ REQ), not just
accepting a connection: TRex opens the socket before its ports are configured.
"""

from __future__ import annotations

import json
import logging
import shlex
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import yaml
import zmq

from bench.hosts.errors import RemoteCommandFailed, TrexServerError, TrexStartFailed
from bench.hosts.runner import Runner, write_file
from bench.profiles import GeneratorSpec

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.1
# The state and start time of a process (proc(5) stat fields 3 and 22; the command name
# in field 2 may hold spaces, so everything up to its closing parenthesis is cut first).
_STAT = "sed -E 's/^.*\\) //' /proc/{pid}/stat 2>/dev/null | cut -d' ' -f1,20"
LOG_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class TrexPlatform:
    """CPU placement in the config's ``platform`` section (thread numbers are Linux CPUs)."""

    master_thread_id: int = 0
    latency_thread_id: int = 1
    socket: int = 0
    threads: tuple[int, ...] = (2, 3)


def render_trex_config(
    interfaces: Sequence[str],
    *,
    dest_macs: Sequence[str | None] = (),
    rpc_port: int = 4501,
    async_port: int = 4500,
    platform: TrexPlatform | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """A TRex config (the ``/etc/trex_cfg.yaml`` shape: a one-item list, version 2)."""
    if len(interfaces) % 2:
        raise TrexServerError(
            f"TRex pairs its ports (dual_if): give an even number of interfaces, got "
            f"{len(interfaces)}"
        )
    body: dict[str, Any] = {
        "version": 2,
        "interfaces": [_short_pci(i) for i in interfaces],
        "port_limit": len(interfaces),
        "zmq_rpc_port": rpc_port,
        "zmq_pub_port": async_port,
    }
    if dest_macs and all(dest_macs):
        body["port_info"] = [{"dest_mac": mac} for mac in dest_macs]
    if platform is not None:
        body["platform"] = {
            "master_thread_id": platform.master_thread_id,
            "latency_thread_id": platform.latency_thread_id,
            "dual_if": [
                {"socket": platform.socket, "threads": list(platform.threads)}
                for _ in range(len(interfaces) // 2)
            ],
        }
    body.update(extra or {})
    return yaml.safe_dump([body], sort_keys=False)


def trex_config_for(generator: GeneratorSpec, platform: TrexPlatform | None = None) -> str:
    """The config for a testbed profile's generator: its ports' PCI addresses and MACs,
    and the CPU placement of its ``server`` section unless ``platform`` is given."""
    server = generator.server
    if platform is None and server is not None and server.cores:
        platform = TrexPlatform(
            server.master_core, server.latency_core, server.numa_node, tuple(server.cores)
        )
    missing = [str(p.id) for p in generator.ports if p.pci is None]
    if missing:
        raise TrexServerError(
            f"generator.ports: port(s) {', '.join(missing)} have no pci address; TRex "
            "needs one per port to start"
        )
    return render_trex_config(
        [p.pci or "" for p in generator.ports],
        dest_macs=[p.dst_mac for p in generator.ports],
        rpc_port=generator.sync_port,
        async_port=generator.async_port,
        platform=platform,
    )


def _short_pci(address: str) -> str:
    """TRex's configs name ports without the PCI domain (``3b:00.0``)."""
    return address[5:] if address.count(":") == 2 and address.startswith("0000:") else address


@dataclass(frozen=True)
class TrexServerConfig:
    """Where TRex lives on the generator host and how to start it.

    ``command`` runs through ``sh -c`` in ``install_dir``, in a session of its own;
    ``{cfg}`` becomes the config path.
    """

    rpc_host: str  # the address the controller reaches the RPC port on
    rpc_port: int = 4501
    async_port: int = 4500
    install_dir: str = "/opt/trex/current"
    config_path: str = "/etc/trex_cfg.yaml"
    log_path: str = "/tmp/cnfbench-trex.log"
    pid_path: str = "/tmp/cnfbench-trex.pid"
    command: str = "./t-rex-64 -i --cfg {cfg}"
    start_timeout_s: float = 60.0
    stop_timeout_s: float = 10.0
    rpc_timeout_s: float = 2.0
    environment: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_generator(cls, generator: GeneratorSpec, **overrides: Any) -> TrexServerConfig:
        """From the profile's generator (its ``server`` section when it has one)."""
        fields: dict[str, Any] = {
            "rpc_host": generator.host,
            "rpc_port": generator.sync_port,
            "async_port": generator.async_port,
        }
        server = generator.server
        if server is not None:
            fields.update(
                install_dir=server.install_dir,
                config_path=server.config_path,
                log_path=server.log_path,
                pid_path=server.pid_path,
                command=server.command,
                start_timeout_s=server.start_timeout,
                stop_timeout_s=server.stop_timeout,
            )
        fields.update(overrides)
        return cls(**fields)


@dataclass(frozen=True)
class TrexVersion:
    version: str
    build_date: str | None
    mode: str | None
    raw: dict[str, Any]


class TrexServer:
    """One TRex server on the host behind ``runner``."""

    def __init__(self, runner: Runner, config: TrexServerConfig) -> None:
        self.runner = runner
        self.config = config

    @property
    def where(self) -> str:
        return f"{self.runner.name}: TRex server"

    # --- config and state ---------------------------------------------------------------

    def write_config(self, text: str) -> None:
        """Write the config file (validated as YAML first, so no half-config is left)."""
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise TrexServerError(f"{self.where}: the config is not YAML: {exc}") from exc
        write_file(self.runner, self.config.config_path, text)
        log.info("%s: wrote %s", self.where, self.config.config_path)

    def pid(self) -> int | None:
        """The pid the last `start` recorded, if that very process is still alive."""
        recorded = self._recorded()
        return recorded[0] if recorded is not None and self.alive(*recorded) else None

    def alive(self, pid: int, started: str | None = None) -> bool:
        """Whether ``pid`` runs (and, given ``started``, is the process started then:
        a pid can be reused once the server is gone, and stopping must not signal a
        stranger)."""
        fields = self.runner.run(_STAT.format(pid=pid), check=False).stdout.split()
        if len(fields) != 2 or fields[0] in ("Z", "X"):
            # A zombie is dead: in containers whose init reaps late, kill -0 would still
            # succeed on one.
            return False
        return started is None or fields[1] == started

    def _recorded(self) -> tuple[int, str] | None:
        text = self.runner.run(
            f"cat {shlex.quote(self.config.pid_path)} 2>/dev/null", check=False
        ).stdout.split()
        if len(text) != 2 or not text[0].isdigit():
            return None
        return int(text[0]), text[1]

    def fetch_log(self, max_bytes: int = LOG_TAIL_BYTES) -> str:
        """The end of the server's log ("" when it has none yet)."""
        result = self.runner.run(
            f"tail -c {max_bytes} {shlex.quote(self.config.log_path)} 2>/dev/null", check=False
        )
        return result.stdout

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> int:
        """Start the server in the background and return its pid (it is not ready yet:
        see `wait_ready`)."""
        running = self.pid()
        if running is not None:
            raise TrexServerError(
                f"{self.where} is already running (pid {running}); stop it first "
                "(cnfbench never drives a server it did not start)"
            )
        cfg = self.config
        # a plain substitution: the command may hold other braces (${VAR}, awk programs)
        command = cfg.command.replace("{cfg}", shlex.quote(cfg.config_path))
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in cfg.environment.items())
        script = (
            f"cd {shlex.quote(cfg.install_dir)} && "
            f"{{ {env} setsid sh -c {shlex.quote(command)} > {shlex.quote(cfg.log_path)} 2>&1 "
            "< /dev/null & "
            f"p=$!; st=$({_STAT.format(pid='$p')} | cut -d' ' -f2); "
            f'echo "$p ${{st:--}}" > {shlex.quote(cfg.pid_path)}; echo "$p"; }}'
        )
        try:
            result = self.runner.run(script)
        except RemoteCommandFailed as exc:
            tail = exc.stderr.strip().splitlines()[-1:] or ["no output"]
            raise TrexServerError(
                f"{self.where} could not be started in {cfg.install_dir}: {tail[0]}"
            ) from exc
        pid = int(result.stdout.split()[-1])
        log.info("%s: started %r (pid %d)", self.where, command, pid)
        return pid

    def wait_ready(self, timeout_s: float | None = None) -> TrexVersion:
        """Wait until the RPC port answers ``get_version``; raise `TrexStartFailed` with
        the server's log when it exits first or the time runs out (and stop it then)."""
        timeout_s = self.config.start_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        recorded = self._recorded()
        if recorded is None:
            raise TrexServerError(f"{self.where} was not started (no {self.config.pid_path})")
        while True:
            if not self.alive(*recorded):
                text = self.fetch_log()
                raise TrexStartFailed(
                    f"{self.where} exited during start-up: {_last_line(text)} "
                    f"(log {self.config.log_path})",
                    text,
                )
            try:
                # a refused connection fails at once, where an RPC waits its timeout
                _check_port(self.config.rpc_host, self.config.rpc_port)
                version = self.version()
            except TrexServerError:
                if time.monotonic() >= deadline:
                    text = self.fetch_log()
                    self.stop()
                    raise TrexStartFailed(
                        f"{self.where} did not answer on {self.config.rpc_host}:"
                        f"{self.config.rpc_port} within {timeout_s:g} s: {_last_line(text)}",
                        text,
                    ) from None
                time.sleep(POLL_INTERVAL_S)
                continue
            log.info("%s: ready, version %s", self.where, version.version)
            return version

    def version(self) -> TrexVersion:
        """Ask the running server for its version over its RPC port."""
        reply = rpc_call(
            self.config.rpc_host,
            self.config.rpc_port,
            "get_version",
            {},
            self.config.rpc_timeout_s,
        )
        if not isinstance(reply, dict) or "version" not in reply:
            raise TrexServerError(f"{self.where}: get_version gave no version: {reply!r}")
        return TrexVersion(
            str(reply["version"]), reply.get("build_date"), reply.get("mode"), reply
        )

    def stop(self) -> bool:
        """Stop the server (SIGTERM to its process group, SIGKILL after
        ``stop_timeout_s``); return False when it was not running."""
        pid = self.pid()
        if pid is None:
            return False
        self.runner.run(f"kill -TERM -- -{pid} 2>/dev/null || kill -TERM {pid}", check=False)
        deadline = time.monotonic() + self.config.stop_timeout_s
        while self.alive(pid):
            if time.monotonic() >= deadline:
                log.warning("%s: pid %d ignored SIGTERM; killing it", self.where, pid)
                self.runner.run(f"kill -KILL -- -{pid} 2>/dev/null", check=False)
                break
            time.sleep(POLL_INTERVAL_S)
        self.runner.run(f"rm -f {shlex.quote(self.config.pid_path)}", check=False)
        log.info("%s: stopped (pid %d)", self.where, pid)
        return True

    @contextmanager
    def running(self, config_text: str | None = None) -> Iterator[TrexVersion]:
        """Write the config (when given), start, wait until ready; stop on exit."""
        if config_text is not None:
            self.write_config(config_text)
        self.start()
        try:
            yield self.wait_ready()
        finally:
            self.stop()


def _check_port(host: str, port: int, timeout_s: float = 1.0) -> None:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise TrexServerError(f"{host}:{port}: {exc}") from exc


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output in its log"


def rpc_call(host: str, port: int, method: str, params: dict[str, Any], timeout_s: float) -> Any:
    """One JSON-RPC 2.0 request on a TRex RPC port (ZMQ REQ), answered within
    ``timeout_s``; raise `TrexServerError` when it is not."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(timeout_s * 1000))
    sock.setsockopt(zmq.SNDTIMEO, int(timeout_s * 1000))
    try:
        sock.connect(f"tcp://{host}:{port}")
        sock.send_string(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        )
        answer = json.loads(sock.recv())
    except zmq.Again as exc:
        raise TrexServerError(f"no RPC answer from {host}:{port} within {timeout_s:g} s") from exc
    except (zmq.ZMQError, ValueError) as exc:
        raise TrexServerError(f"RPC to {host}:{port} failed: {exc}") from exc
    finally:
        sock.close()
    if "error" in answer:
        raise TrexServerError(f"{host}:{port}: {method}: {answer['error']}")
    return answer.get("result")
