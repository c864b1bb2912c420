"""The results store: the only writer of a run directory.

Layout of ``results/<run-id>/``:

- ``run.json``: the manifest, rewritten atomically (temp file, fsync, rename);
- ``journal.jsonl``: append-only, one record per line, flushed and fsynced before the
  call returns, so a crash or ``kill -9`` loses no finished trial;
- ``trials.parquet``, ``points.parquet``: compacted from the journal by `compact`.

Format history: schema_version 1 for the manifest and for journal records.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from analysis.journal import read_journal
from analysis.loader import JOURNAL, MANIFEST, read_manifest
from analysis.tables import tables_from_records
from bench.errors import StoreError
from traffic.model import LaneCounts, LatencySummary, Point, TrialResult, TrialSpec

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


def new_run_id(name: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{name}-{secrets.token_hex(3)}"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def point_record(point: Point) -> dict[str, Any]:
    return {
        "replicas": point.replicas,
        "frame_size": point.frame_size,
        "flows": point.flows,
        "direction": point.direction.value,
    }


def trial_record(result: TrialResult, point: Point | None, **extra: Any) -> dict[str, Any]:
    """A trial result as a journal record body (the store adds type, seq and time)."""
    spec = result.spec
    return {
        "point": point_record(point) if point else None,
        "kind": spec.kind.value,
        "intended_load_pps": spec.intended_load_pps,
        "intended_duration_s": spec.intended_duration_s,
        "measured_duration_s": result.measured_duration_s,
        "offered_count": result.offered_count if result.valid else None,
        "forwarded_count": result.forwarded_count if result.valid else None,
        "loss_ratio": result.loss_ratio if result.valid else None,
        "lanes": [asdict(lane) for lane in result.lanes],
        "latency": {lane: asdict(lat) for lane, lat in result.latency.items()},
        "achieved_tx_pps": result.achieved_tx_pps,
        "warnings": list(result.warnings),
        "valid": result.valid,
        "invalid_reason": result.invalid_reason,
        "started_at": result.started_at,
        "generator": result.generator,
        "extra": extra,
    }


def trial_from_record(record: Mapping[str, Any], spec: TrialSpec) -> TrialResult:
    """A journaled trial as the result object it was made from (`spec` as asked now)."""
    return TrialResult(
        spec=spec,
        measured_duration_s=float(record["measured_duration_s"]),
        lanes=tuple(LaneCounts(**lane) for lane in record["lanes"]),
        latency={k: LatencySummary(**v) for k, v in (record.get("latency") or {}).items()},
        warnings=tuple(record.get("warnings") or ()),
        valid=bool(record["valid"]),
        invalid_reason=record.get("invalid_reason"),
        achieved_tx_pps=record.get("achieved_tx_pps"),
        started_at=record.get("started_at"),
        generator=str(record.get("generator") or ""),
    )


class RunStore:
    """One run directory.  Create it with `create`, reopen it with `open`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._journal = directory / JOURNAL
        self._seq = 0
        self._fh: Any = None

    # --- lifecycle ----------------------------------------------------------------------

    @classmethod
    def create(cls, root: Path, run_id: str, manifest: Mapping[str, Any]) -> RunStore:
        directory = root / run_id
        try:
            root.mkdir(parents=True, exist_ok=True)
            directory.mkdir()
        except FileExistsError as exc:
            raise StoreError(f"{directory}: a run with this id exists; resume it instead") from exc
        except OSError as exc:
            raise StoreError(f"{directory}: cannot create the run directory: {exc}") from exc
        store = cls(directory)
        body = {
            "schema_version": SCHEMA_VERSION,
            "run_id": run_id,
            "created_at": time.time(),
            "status": "created",
            "stages": {},
            **manifest,
        }
        store.write_manifest(body)
        store._journal.touch()
        return store

    @classmethod
    def open(cls, directory: Path) -> RunStore:
        read_manifest(directory)  # validates that this is a run directory
        store = cls(directory)
        store._seq = max((r.get("seq", 0) for r in store.records()), default=0)
        return store

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    # --- manifest -----------------------------------------------------------------------

    @property
    def manifest(self) -> dict[str, Any]:
        return read_manifest(self.directory)

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        data = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode() + b"\n"
        _atomic_write(self.directory / MANIFEST, data)

    def update_manifest(self, **changes: Any) -> dict[str, Any]:
        manifest = self.manifest
        manifest.update(changes)
        self.write_manifest(manifest)
        return manifest

    def set_stage(self, name: str, status: str, message: str = "") -> None:
        """Record a stage's status in the manifest and the journal."""
        manifest = self.manifest
        stage = manifest.setdefault("stages", {}).setdefault(name, {})
        now = time.time()
        if status == "running":
            stage["started_at"] = now
            stage.pop("finished_at", None)
        else:
            stage["finished_at"] = now
        stage["status"] = status
        if message:
            stage["message"] = message
        self.write_manifest(manifest)
        self.append("stage", stage=name, status=status, message=message)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.set_stage(name, "running")
        try:
            yield
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            self.set_stage(name, status, str(exc).splitlines()[0] if str(exc) else status)
            raise
        self.set_stage(name, "done")

    # --- journal ------------------------------------------------------------------------

    def append(self, record_type: str, **fields: Any) -> dict[str, Any]:
        """Append one record and make it durable before returning."""
        self._seq += 1
        record = {"type": record_type, "schema_version": SCHEMA_VERSION, "seq": self._seq}
        record["time"] = time.time()
        record.update(fields)
        line = json.dumps(record, default=str, allow_nan=False) + "\n"
        if self._fh is None:
            self._fh = open(self._journal, "a", encoding="utf-8")  # noqa: SIM115
        self._fh.write(line)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return record

    def append_trial(self, result: TrialResult, point: Point | None, **extra: Any) -> None:
        self.append("trial", **trial_record(result, point, **extra))

    def records(self) -> list[dict[str, Any]]:
        return read_journal(self._journal).records

    # --- compaction ---------------------------------------------------------------------

    def compact(self) -> dict[str, int]:
        """Rebuild the Parquet tables from the journal; returns their row counts."""
        journal = read_journal(self._journal)
        tables = tables_from_records(journal.records)
        counts = {}
        for name in ("trials", "points"):
            frame = tables[name]
            target = self.directory / f"{name}.parquet"
            tmp = target.with_name(f".{target.name}.tmp")
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, target)
            counts[name] = len(frame)
        self.update_manifest(
            compaction={
                "journal_bytes": journal.bytes_read,
                "records": len(journal.records),
                "at": time.time(),
                **{f"{k}_rows": v for k, v in counts.items()},
            }
        )
        return counts

    def write_bytes(self, name: str, data: bytes) -> Path:
        target = self.directory / name
        _atomic_write(target, data)
        return target

    def write_json(self, name: str, body: Mapping[str, Any]) -> Path:
        target = self.directory / name
        _atomic_write(target, json.dumps(body, indent=2, sort_keys=True, default=str).encode())
        return target
