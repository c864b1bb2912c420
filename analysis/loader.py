"""`load_runs`: the stored results of one or many runs as tidy pandas DataFrames.

A path may be a run directory (it holds ``run.json``), a results root holding run
directories, or a list of either.  Tables come from the compacted Parquet files when
they are current, and are rebuilt from the journal otherwise.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.errors import ResultsError
from analysis.journal import read_journal
from analysis.tables import tables_from_records

log = logging.getLogger(__name__)

MANIFEST = "run.json"
JOURNAL = "journal.jsonl"
MANIFEST_SCHEMA_VERSIONS = (1,)
TABLES = ("trials", "points", "checks", "stages", "events")
PARQUET_TABLES = ("trials", "points")


@dataclass
class RunSet:
    """The runs found under the given paths.  Every table has a ``run_id`` column."""

    runs: pd.DataFrame  # one row per run: id, cnf, vendor, testbed, status, times
    trials: pd.DataFrame
    points: pd.DataFrame
    checks: pd.DataFrame
    stages: pd.DataFrame
    events: pd.DataFrame
    manifests: dict[str, dict[str, Any]]
    directories: dict[str, Path]


def read_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ResultsError(f"{path}: no run manifest here; is this a results directory?") from exc
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}:{exc.lineno}: manifest is not valid JSON: {exc.msg}") from exc
    version = manifest.get("schema_version")
    if version not in MANIFEST_SCHEMA_VERSIONS:
        raise ResultsError(f"{path}: schema_version: {version!r} is not a version this reads")
    return dict(manifest)


def find_run_dirs(paths: Path | str | Iterable[Path | str]) -> list[Path]:
    if isinstance(paths, str | Path):
        paths = [paths]
    found: list[Path] = []
    for item in paths:
        path = Path(item)
        if (path / MANIFEST).is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(p.parent for p in path.glob(f"*/{MANIFEST}")))
        else:
            raise ResultsError(f"{path}: no such results directory")
    return found


def _compaction_current(run_dir: Path, manifest: dict[str, Any]) -> bool:
    compaction = manifest.get("compaction") or {}
    journal = run_dir / JOURNAL
    if not journal.exists() or compaction.get("journal_bytes") != journal.stat().st_size:
        return False
    return all((run_dir / f"{name}.parquet").is_file() for name in PARQUET_TABLES)


def load_run_tables(run_dir: Path, manifest: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The tables of one run, from Parquet when current, else from its journal."""
    current = _compaction_current(run_dir, manifest)
    journal = read_journal(run_dir / JOURNAL, skip_trials=current)
    tables = tables_from_records(journal.records)
    if current:
        for name in PARQUET_TABLES:
            tables[name] = pd.read_parquet(run_dir / f"{name}.parquet")
    return tables


def _run_row(run_id: str, manifest: dict[str, Any]) -> dict[str, Any]:
    cnf = manifest.get("cnf") or {}
    testbed = manifest.get("testbed") or {}
    return {
        "run_id": run_id,
        "status": manifest.get("status"),
        "started_at": manifest.get("started_at"),
        "finished_at": manifest.get("finished_at"),
        "cnf": cnf.get("name"),
        "vendor": cnf.get("vendor"),
        "product": cnf.get("product"),
        "testbed": testbed.get("name"),
        "testbed_fingerprint": testbed.get("fingerprint_sha256"),
        "generator": (manifest.get("generator") or {}).get("kind"),
        "method": (manifest.get("methodology") or {}).get("method"),
        "seed": (manifest.get("lab") or {}).get("seed"),
    }


def load_runs(paths: Path | str | Iterable[Path | str]) -> RunSet:
    """Load every run under `paths` into one `RunSet`."""
    run_dirs = find_run_dirs(paths)
    if not run_dirs:
        raise ResultsError(f"no runs found under {paths}")
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in TABLES}
    rows, manifests, directories = [], {}, {}
    for run_dir in run_dirs:
        manifest = read_manifest(run_dir)
        run_id = str(manifest.get("run_id") or run_dir.name)
        if run_id in manifests:
            raise ResultsError(f"{run_dir}: run id {run_id} appears twice in the given paths")
        manifests[run_id], directories[run_id] = manifest, run_dir
        rows.append(_run_row(run_id, manifest))
        for name, table in load_run_tables(run_dir, manifest).items():
            parts[name].append(table.assign(run_id=run_id) if not table.empty else table)
    tables = {
        name: pd.concat([f for f in frames if not f.empty], ignore_index=True)
        if any(not f.empty for f in frames)
        else pd.DataFrame({"run_id": pd.Series(dtype=str)})
        for name, frames in parts.items()
    }
    return RunSet(
        runs=pd.DataFrame(rows),
        trials=tables["trials"],
        points=tables["points"],
        checks=tables["checks"],
        stages=tables["stages"],
        events=tables["events"],
        manifests=manifests,
        directories=directories,
    )
