"""The JSON Schemas of the stored formats, and validation of real files against them."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from bench.errors import StoreError

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


@cache
def schema(name: str) -> dict[str, Any]:
    return dict(json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text()))


def validate(name: str, document: Any, where: str) -> None:
    validator = jsonschema.Draft202012Validator(schema(name))
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        path = ".".join(str(p) for p in first.absolute_path) or "(top)"
        raise StoreError(f"{where}: {path}: {first.message} (schema {name})")


def validate_run_dir(run_dir: Path) -> int:
    """Validate run.json and every journal line; returns the number of records checked."""
    validate("run", json.loads((run_dir / "run.json").read_text()), f"{run_dir}/run.json")
    count = 0
    journal = run_dir / "journal.jsonl"
    for number, line in enumerate(journal.read_text().splitlines(), start=1):
        if line.strip():
            validate("journal-record", json.loads(line), f"{journal}:{number}")
            count += 1
    return count
