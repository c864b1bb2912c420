"""A kubeconfig for the lab's API server: one cluster with its CA, one user with a token."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml


def kubeconfig_text(
    server_url: str,
    token: str,
    *,
    ca_pem: bytes | None = None,
    context: str = "cnfbench-lab",
    namespace: str = "default",
    user: str = "lab-admin",
) -> str:
    cluster: dict[str, str] = {"server": server_url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": user, "namespace": namespace},
            }
        ],
        "current-context": context,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_kubeconfig(
    path: Path | str,
    server_url: str,
    token: str,
    *,
    ca_pem: bytes | None = None,
    context: str = "cnfbench-lab",
    namespace: str = "default",
    user: str = "lab-admin",
) -> Path:
    """Write atomically with mode 0600 (it holds a credential)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = kubeconfig_text(
        server_url, token, ca_pem=ca_pem, context=context, namespace=namespace, user=user
    )
    tmp = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, target)
    return target
