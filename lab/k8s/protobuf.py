"""Protobuf request bodies, for the kinds clients send that way: Secret, ConfigMap and
DeleteOptions.

client-go's typed clients may write with ``Content-Type: application/vnd.kubernetes.
protobuf`` (Helm stores its releases as Secrets so).  A body is the magic ``k8s\\0``
then a ``runtime.Unknown`` message: field 1 the TypeMeta (apiVersion, kind), field 2
the object's own message (generated.proto of k8s.io/api).  Only the messages below are
decoded; any other kind answers 415 so that the client knows to send JSON.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from lab.k8s.errors import ApiError

MAGIC = b"k8s\x00"
Fields = list[tuple[int, int, Any]]  # (field number, wire type, value)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Fields:
    out: Fields = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((number, wire, value))
    return out


def _text(value: bytes) -> str:
    return value.decode("utf-8")


def _map(entries: list[bytes], binary: bool) -> dict[str, str]:
    out = {}
    for entry in entries:
        parts = {n: v for n, _, v in _fields(entry)}
        key = _text(parts.get(1, b""))
        raw = parts.get(2, b"")
        out[key] = base64.b64encode(raw).decode() if binary else _text(raw)
    return out


def _time(value: bytes) -> str:
    parts = {n: v for n, _, v in _fields(value)}
    return datetime.fromtimestamp(int(parts.get(1, 0)), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(data: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    names = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    labels: list[bytes] = []
    annotations: list[bytes] = []
    finalizers: list[str] = []
    for number, _, value in _fields(data):
        if number in names:
            meta[names[number]] = _text(value)
        elif number == 7:
            meta["generation"] = value
        elif number == 8:
            meta["creationTimestamp"] = _time(value)
        elif number == 11:
            labels.append(value)
        elif number == 12:
            annotations.append(value)
        elif number == 14:
            finalizers.append(_text(value))
    if labels:
        meta["labels"] = _map(labels, binary=False)
    if annotations:
        meta["annotations"] = _map(annotations, binary=False)
    if finalizers:
        meta["finalizers"] = finalizers
    return meta


def _secret(fields: Fields) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {}}
    data, string_data = [], []
    for number, wire, value in fields:
        if number == 1:
            obj["metadata"] = _meta(value)
        elif number == 2:
            data.append(value)
        elif number == 3:
            obj["type"] = _text(value)
        elif number == 4:
            string_data.append(value)
        elif number == 5 and wire == 0:
            obj["immutable"] = bool(value)
    if data:
        obj["data"] = _map(data, binary=True)
    if string_data:
        obj["stringData"] = _map(string_data, binary=False)
    return obj


def _configmap(fields: Fields) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {}}
    data, binary = [], []
    for number, wire, value in fields:
        if number == 1:
            obj["metadata"] = _meta(value)
        elif number == 2:
            data.append(value)
        elif number == 3:
            binary.append(value)
        elif number == 4 and wire == 0:
            obj["immutable"] = bool(value)
    if data:
        obj["data"] = _map(data, binary=False)
    if binary:
        obj["binaryData"] = _map(binary, binary=True)
    return obj


def _delete_options(fields: Fields) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, wire, value in fields:
        if number == 1 and wire == 0:
            obj["gracePeriodSeconds"] = value
        elif number == 3 and wire == 0:
            obj["orphanDependents"] = bool(value)
        elif number == 4:
            obj["propagationPolicy"] = _text(value)
        elif number == 5:
            obj.setdefault("dryRun", []).append(_text(value))
    return obj


_DECODERS = {
    ("v1", "Secret"): _secret,
    ("v1", "ConfigMap"): _configmap,
    ("v1", "DeleteOptions"): _delete_options,
    ("meta.k8s.io/v1", "DeleteOptions"): _delete_options,
}


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded Secret or ConfigMap."""
    unsupported = ApiError(
        415,
        "UnsupportedMediaType",
        "the lab API server decodes protobuf bodies only for Secret, ConfigMap and "
        "DeleteOptions; "
        "send application/json",
    )
    if not body.startswith(MAGIC):
        raise unsupported
    try:
        envelope = {n: v for n, _, v in _fields(body[len(MAGIC) :])}
        type_meta = {n: _text(v) for n, _, v in _fields(envelope.get(1, b""))}
        api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
        decoder = _DECODERS.get((api_version, kind))
        if decoder is None:
            raise unsupported
        obj = decoder(_fields(envelope.get(2, b"")))
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise ApiError(
            400, "BadRequest", f"the protobuf body could not be decoded: {exc}"
        ) from exc
    obj["apiVersion"], obj["kind"] = api_version, kind
    return obj
