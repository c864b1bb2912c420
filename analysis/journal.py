"""Reading a run's journal: one JSON record per line, appended and fsynced by the store.

A crash can leave the last line half-written; a disk fault can garble one in the
middle.  Such lines are skipped with a warning that names the file and line, and every
complete record before and after them is kept.

Format history (``schema_version`` of each record):

- 1: the first format.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.errors import ResultsError

log = logging.getLogger(__name__)

JOURNAL_SCHEMA_VERSIONS = (1,)


@dataclass
class JournalRead:
    records: list[dict[str, Any]]
    skipped: list[str] = field(default_factory=list)  # "file:line: why"
    bytes_read: int = 0


TRIAL_PREFIX = b'{"type": "trial"'


def read_journal(path: Path, skip_trials: bool = False) -> JournalRead:
    """Every complete record of a journal; with `skip_trials`, all but the trial records
    (the store writes ``type`` first, so they are passed over without parsing)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return JournalRead([], [], 0)
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read the journal: {exc.strerror}") from exc
    out = JournalRead([], [], len(raw))
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip() or (skip_trials and line.startswith(TRIAL_PREFIX)):
            continue
        last = number == len(lines)
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            why = "truncated last record (crash while writing?)" if last else "garbled record"
            out.skipped.append(f"{path}:{number}: {why}, skipped")
            continue
        if not isinstance(record, dict) or "type" not in record:
            out.skipped.append(f"{path}:{number}: not a journal record, skipped")
            continue
        version = record.get("schema_version")
        if version not in JOURNAL_SCHEMA_VERSIONS:
            raise ResultsError(
                f"{path}:{number}: schema_version: {version!r} is not one this version reads "
                f"({', '.join(map(str, JOURNAL_SCHEMA_VERSIONS))}); upgrade cnfbench"
            )
        out.records.append(record)
    for message in out.skipped:
        log.warning("%s", message)
    return out
