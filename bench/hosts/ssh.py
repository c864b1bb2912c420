"""Testbed hosts over SSH, with paramiko.

Host keys are verified against known_hosts (``~/.ssh/known_hosts`` unless the profile
names another file).  An unknown key is refused unless ``trust_new_host_key`` is set,
and a changed key is always refused: both errors say what to do.  Credentials come from
a key file, an SSH agent, or a password read from the environment variable the profile
names (never from the profile itself).  A jump host is reached first and the target is
tunnelled through it (``direct-tcpip``, as ``ssh -J`` does).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import select
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import paramiko

from bench.hosts.errors import (
    HostAuthFailed,
    HostError,
    HostKeyChanged,
    HostKeyUnknown,
    HostUnreachable,
    RemoteCommandFailed,
)
from bench.hosts.runner import (
    DEFAULT_COMMAND_TIMEOUT_S,
    CommandResult,
    ExecFS,
    HostFS,
    check_result,
    join_root,
)
from bench.profiles import HostSpec, SshSpec

log = logging.getLogger(__name__)

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
KEEPALIVE_S = 30


@dataclass(frozen=True)
class SshTarget:
    """Everything needed to open one SSH session; built from a profile's `SshSpec`."""

    address: str
    user: str = "root"
    port: int = 22
    key_file: str | None = None
    password_env: str | None = None
    use_agent: bool = True
    known_hosts: str | None = None
    trust_new_host_key: bool = False
    timeout_s: float = 10.0
    jump: SshTarget | None = None

    @classmethod
    def from_spec(cls, address: str, spec: SshSpec, hosts: tuple[HostSpec, ...] = ()) -> SshTarget:
        """A target at ``address``; ``spec.jump_host`` names a host of ``hosts`` or is
        ``[user@]address[:port]`` reached with the same credentials."""
        target = cls(
            address=address,
            user=spec.user,
            port=spec.port,
            key_file=spec.key_file,
            password_env=spec.password_env,
            use_agent=spec.use_agent,
            known_hosts=spec.known_hosts,
            trust_new_host_key=spec.trust_new_host_key,
            timeout_s=spec.timeout,
        )
        if spec.jump_host is None:
            return target
        named = next((h for h in hosts if h.name == spec.jump_host), None)
        if named is not None:
            jump = cls.from_spec(named.address, named.ssh.model_copy(update={"jump_host": None}))
        else:
            jump = replace(target, **parse_destination(spec.jump_host, spec.user))
        return replace(target, jump=jump)

    @property
    def label(self) -> str:
        return f"{self.user}@{self.address}:{self.port}"

    @property
    def known_hosts_path(self) -> Path:
        return Path(os.path.expanduser(self.known_hosts or DEFAULT_KNOWN_HOSTS))

    @property
    def host_key_name(self) -> str:
        """The name OpenSSH files this host's key under in known_hosts."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"


def parse_destination(text: str, default_user: str) -> dict[str, Any]:
    """``[user@]address[:port]`` as fields of `SshTarget`."""
    user, _, rest = text.rpartition("@")
    address, port = rest, 22
    if rest.count(":") == 1:
        address, _, port_text = rest.partition(":")
        if not port_text.isdigit():
            raise HostError(f"jump host {text!r}: the port must be a number")
        port = int(port_text)
    return {"address": address, "user": user or default_user, "port": port}


def key_fingerprint(key: paramiko.PKey) -> str:
    """The key's fingerprint as OpenSSH prints it (``SHA256:`` and unpadded base64)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse an unknown key, or record it in known_hosts when trusting is asked for."""

    def __init__(self, target: SshTarget) -> None:
        self.target = target

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: Any) -> None:
        path = self.target.known_hosts_path
        name = self.target.host_key_name
        if not self.target.trust_new_host_key:
            raise HostKeyUnknown(
                f"{self.target.label}: host key {key.get_name()} {key_fingerprint(key)} is "
                f"not in {path}; check it with the host's owner, then add it (ssh-keyscan "
                f"-p {self.target.port} {self.target.address} >> {path}) or set "
                "ssh.trust_new_host_key: true"
            )
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(path, "a", encoding="ascii") as fh:
            fh.write(f"{name} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(name, key.get_name(), key)
        log.warning(
            "%s: trusted new host key %s %s, saved to %s",
            self.target.label,
            key.get_name(),
            key_fingerprint(key),
            path,
        )


def _credentials(target: SshTarget) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"allow_agent": target.use_agent, "look_for_keys": False}
    if target.key_file is not None:
        key_file = os.path.expanduser(target.key_file)
        if not os.path.isfile(key_file):
            raise HostAuthFailed(f"{target.label}: ssh.key_file {key_file} does not exist")
        kwargs["key_filename"] = key_file
    if target.password_env is not None:
        password = os.environ.get(target.password_env)
        if password is None:
            raise HostAuthFailed(
                f"{target.label}: ssh.password_env names {target.password_env}, which is "
                "not set in the environment"
            )
        kwargs["password"] = password
    # No key file named: behave like ssh and also try the user's default keys.
    kwargs["look_for_keys"] = target.key_file is None and target.password_env is None
    return kwargs


def _tried(target: SshTarget) -> str:
    tried = []
    if target.key_file:
        tried.append(f"key file {target.key_file}")
    if target.use_agent:
        tried.append("agent" + ("" if os.environ.get("SSH_AUTH_SOCK") else " (none running)"))
    if target.password_env:
        tried.append(f"password from ${target.password_env}")
    if target.key_file is None and target.password_env is None:
        tried.append("default keys in ~/.ssh")
    return ", ".join(tried)


class SshRunner:
    """A session to one host; use as a context manager or call `close`."""

    def __init__(self, target: SshTarget) -> None:
        self.target = target
        self._jump: SshRunner | None = None
        self._client = self._connect()
        self._sftp: paramiko.SFTPClient | None = None
        self._sftp_unavailable = False

    @property
    def name(self) -> str:
        return self.target.label

    def __enter__(self) -> SshRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- connecting ---------------------------------------------------------------------

    def _tunnel(self) -> paramiko.Channel | None:
        if self.target.jump is None:
            return None
        self._jump = SshRunner(self.target.jump)
        transport = self._jump._client.get_transport()
        assert transport is not None
        try:
            return transport.open_channel(
                "direct-tcpip",
                (self.target.address, self.target.port),
                ("127.0.0.1", 0),
                timeout=self.target.timeout_s,
            )
        except (paramiko.ChannelException, paramiko.SSHException, OSError) as exc:
            self._jump.close()
            raise HostUnreachable(
                f"{self.target.label}: jump host {self.target.jump.label} could not open a "
                f"connection to it: {exc}"
            ) from exc

    def _connect(self) -> paramiko.SSHClient:
        target = self.target
        credentials = _credentials(target)
        client = paramiko.SSHClient()
        if target.known_hosts_path.is_file():
            client.load_host_keys(str(target.known_hosts_path))
        client.set_missing_host_key_policy(_HostKeyPolicy(target))
        sock = self._tunnel()
        log.debug("connecting to %s", target.label)
        try:
            client.connect(
                target.address,
                port=target.port,
                username=target.user,
                timeout=target.timeout_s,
                banner_timeout=target.timeout_s,
                auth_timeout=target.timeout_s,
                channel_timeout=target.timeout_s,
                sock=sock,
                **credentials,
            )
        except HostKeyUnknown:
            client.close()
            self._close_jump()
            raise
        except (paramiko.SSHException, OSError) as exc:
            client.close()
            self._close_jump()
            raise _connect_error(target, exc) from exc
        transport = client.get_transport()
        if transport is not None:
            # a session held open while a TRex server runs must survive idle NAT timeouts
            transport.set_keepalive(KEEPALIVE_S)
        log.info("connected to %s", target.label)
        return client

    def _close_jump(self) -> None:
        if self._jump is not None:
            self._jump.close()
            self._jump = None

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
            self._sftp = None
        self._client.close()
        self._close_jump()

    # --- commands -----------------------------------------------------------------------

    def run(
        self,
        command: str,
        *,
        timeout_s: float | None = None,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """Run ``command`` in the user's shell on the host; raise `RemoteCommandFailed` on
        a non-zero exit (when ``check``) or when it outlives ``timeout_s``."""
        timeout_s = DEFAULT_COMMAND_TIMEOUT_S if timeout_s is None else timeout_s
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise HostUnreachable(f"{self.name}: the SSH session is closed")
        started = time.monotonic()
        try:
            chan = transport.open_session(timeout=self.target.timeout_s)
        except (paramiko.SSHException, OSError) as exc:
            raise HostUnreachable(f"{self.name}: cannot open a channel: {exc}") from exc
        try:
            chan.exec_command(command)
            if stdin is not None:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = _drain(chan, started + timeout_s)
            if out is None:
                raise RemoteCommandFailed(
                    f"{self.name}: command {command!r} did not finish within {timeout_s:g} s",
                    None,
                )
            status = chan.recv_exit_status()
        except (paramiko.SSHException, OSError) as exc:
            raise HostUnreachable(f"{self.name}: lost the session running {command!r}") from exc
        finally:
            chan.close()
        result = CommandResult(
            command,
            status,
            out.decode("utf-8", "replace"),
            (err or b"").decode("utf-8", "replace"),
            time.monotonic() - started,
        )
        log.debug("%s: %r exited %d in %.3f s", self.name, command, status, result.duration_s)
        return check_result(self.name, result) if check else result

    # --- files --------------------------------------------------------------------------

    def sftp(self) -> paramiko.SFTPClient | None:
        """The session's SFTP client, or None when the host offers no SFTP subsystem."""
        if self._sftp is None and not self._sftp_unavailable:
            try:
                self._sftp = self._client.open_sftp()
            except (paramiko.SSHException, OSError) as exc:
                log.info("%s: no SFTP (%s); reading files with cat", self.name, exc)
                self._sftp_unavailable = True
        return self._sftp

    def filesystem(self, root: str = "/", method: Literal["exec", "sftp"] = "exec") -> HostFS:
        """The host's files under ``root``.

        ``exec`` (the default) reads what the collectors announce in one batched command,
        so its cost does not grow with the round-trip time (a host behind a jump host
        across sites); ``sftp`` costs round trips per file, and falls back to ``exec``
        when the host has no SFTP subsystem.
        """
        sftp = self.sftp() if method == "sftp" else None
        return ExecFS(self, root) if sftp is None else SftpFS(sftp, root)


def _drain(chan: paramiko.Channel, deadline: float) -> tuple[bytes | None, bytes | None]:
    """Read stdout and stderr together (so neither window fills and stalls the other)
    until the channel's end; (None, None) when the deadline passes first.

    The exit status is no end: sshd may send it before the last of stderr, so the end is
    the channel's close, or its EOF once the exit status is in.
    """
    out: list[bytes] = []
    err: list[bytes] = []
    while True:
        while chan.recv_ready():
            out.append(chan.recv(65536))
        while chan.recv_stderr_ready():
            err.append(chan.recv_stderr(65536))
        ended = chan.closed or (chan.eof_received and chan.exit_status_ready())
        if ended and not chan.recv_ready() and not chan.recv_stderr_ready():
            return b"".join(out), b"".join(err)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, None
        select.select([chan], [], [], min(remaining, 0.05))


class SftpFS:
    """A host's files over the session's SFTP channel (one round trip per call)."""

    def __init__(self, sftp: paramiko.SFTPClient, root: str = "/") -> None:
        self.sftp = sftp
        self.root = root

    def read_text(self, path: str) -> str | None:
        try:
            with self.sftp.open(join_root(self.root, path), "r") as fh:
                data: bytes = fh.read()
        except OSError:
            return None
        return data.decode("utf-8", "replace")

    def listdir(self, path: str) -> list[str] | None:
        try:
            return sorted(self.sftp.listdir(join_root(self.root, path)))
        except OSError:
            return None

    def readlink(self, path: str) -> str | None:
        try:
            return self.sftp.readlink(join_root(self.root, path))
        except OSError:
            return None

    def prefetch(self, patterns: Iterable[str]) -> None:
        """SFTP pipelines its requests on one channel: nothing to batch."""


def connect(target: SshTarget) -> SshRunner:
    """Open a session to ``target``; the errors are `HostError` subclasses."""
    return SshRunner(target)


__all__ = [
    "RemoteCommandFailed",
    "SftpFS",
    "SshRunner",
    "SshTarget",
    "connect",
    "key_fingerprint",
    "parse_destination",
]


def _connect_error(target: SshTarget, exc: paramiko.SSHException | OSError) -> HostError:
    """What a failed ``connect`` means for the user, and what to do about it."""
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyChanged(
            f"{target.label}: the host key changed: {target.known_hosts_path} holds "
            f"{key_fingerprint(exc.expected_key)} but the host presented "
            f"{exc.key.get_name()} {key_fingerprint(exc.key)}; if the host was "
            f"reinstalled, remove the old key (ssh-keygen -R '{target.host_key_name}' -f "
            f"{target.known_hosts_path}), otherwise treat it as an attack"
        )
    if isinstance(exc, paramiko.AuthenticationException):
        return HostAuthFailed(
            f"{target.label}: authentication refused (tried {_tried(target)}); check "
            "ssh.user, ssh.key_file and the host's authorized_keys"
        )
    if isinstance(exc, TimeoutError):
        return HostUnreachable(
            f"{target.label}: no answer within {target.timeout_s:g} s; check the address, "
            "the port and any firewall"
        )
    if isinstance(exc, paramiko.SSHException):
        return HostUnreachable(f"{target.label}: SSH handshake failed: {exc}")
    reason = exc.strerror or str(exc)
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        # one error per address tried; they say the same for a single address
        reason = "; ".join(sorted({_strerror(e) for e in exc.errors.values()}))
    if isinstance(exc, socket.gaierror):
        reason = f"cannot resolve the address ({reason})"
    return HostUnreachable(
        f"{target.label}: cannot connect: {reason}; is sshd running there and the address "
        "and port right?"
    )


def _strerror(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
