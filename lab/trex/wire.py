"""The TRex RPC wire format: JSON-RPC 2.0 over ZMQ, optionally "zipmsg"-compressed.

A compressed message is an 8-byte header, big-endian ``uint32`` magic ``0xABE85CEA``
and ``uint32`` uncompressed length, followed by zlib data.  A request may be one
JSON-RPC object or a batch (an array); the reply has the same shape.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

ZIP_MAGIC = 0xABE85CEA
_HEADER = struct.Struct(">II")

# JSON-RPC 2.0 error codes as TRex uses them.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_SUPPORTED = -32601
INVALID_PARAMS = -32602
SERVER_ERROR = -32000
TRY_AGAIN = -32001
WORK_IN_PROGRESS = -32002


class RpcError(Exception):
    """An error answer.  `specific` is the text the TRex clients show to the user."""

    def __init__(self, specific: str, code: int = SERVER_ERROR, message: str = "") -> None:
        super().__init__(specific)
        self.specific = specific
        self.code = code
        self.message = message or _DEFAULT_MESSAGES.get(code, "Server error")

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "specific_err": self.specific}


_DEFAULT_MESSAGES = {
    PARSE_ERROR: "Bad JSON Format",
    INVALID_REQUEST: "Invalid Request",
    METHOD_NOT_SUPPORTED: "Method not supported",
    INVALID_PARAMS: "Bad paramters for method",
    SERVER_ERROR: "Server error",
    TRY_AGAIN: "Try again",
    WORK_IN_PROGRESS: "Work in progress",
}


def is_zipped(data: bytes) -> bool:
    return len(data) >= _HEADER.size and _HEADER.unpack_from(data)[0] == ZIP_MAGIC


def unzip(data: bytes) -> bytes:
    """The payload of a compressed message; raises ValueError on a bad length or data."""
    _, length = _HEADER.unpack_from(data)
    try:
        payload = zlib.decompress(data[_HEADER.size :])
    except zlib.error as exc:
        raise ValueError(f"bad zlib data: {exc}") from exc
    if len(payload) != length:
        raise ValueError(f"zipmsg length {length} does not match payload {len(payload)}")
    return payload


def zip_message(payload: bytes) -> bytes:
    return _HEADER.pack(ZIP_MAGIC, len(payload)) + zlib.compress(payload)


def result(req_id: Any, value: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "result": value}


def error(req_id: Any, err: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "error": err.to_json()}
