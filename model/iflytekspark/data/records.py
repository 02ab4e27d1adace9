"""Reading and checking the raw input: an alpaca-style JSON array of {instruction, input, output}.

Every problem names the file and the record number (1-based, as a person counts); all problems of a file
are reported at once (up to a limit). Records keep their text as read; :mod:`.encoding` cleans it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple

from ..errors import IFlytekSparkError

MAX_PROBLEMS = 20


class DataError(IFlytekSparkError, ValueError):
    """Bad preprocessing input or options; the CLI prints it without a traceback and exits 2."""

    exit_code = 2


@dataclass(frozen=True)
class Record:
    """One training example as read (a missing field is ""). The prompt is ``clean(instruction + input)``,
    the joined text stripped once as the reference does, the response ``clean(output)``."""

    instruction: str
    input: str
    output: str


def clean(text: str) -> str:
    """Strip, and turn escaped (``\\r\\n``, ``\\n`` as characters) and real newlines into ``<ret>``."""
    text = text.strip()
    for seq in ("\\r\\n", "\\r\n", "\\n", "\r\n", "\n"):
        text = text.replace(seq, "<ret>")
    return text


def _parse(path: Path):
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: not UTF-8 (byte {exc.start}: {exc.reason}); re-encode the file as UTF-8"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from None
    if not isinstance(data, list):
        raise DataError(
            f"{path}: the top level is a JSON {type(data).__name__}, expected an array of "
            '{"instruction", "input", "output"} objects'
        )
    return data


def _check(item, required: Sequence[str], optional: Sequence[str]) -> List[str]:
    if not isinstance(item, dict):
        return [f"is a JSON {type(item).__name__}, expected an object"]
    problems = [f'missing field "{k}"' for k in required if k not in item]
    for key in list(required) + list(optional):
        if key in item and not isinstance(item[key], str):
            problems.append(f'field "{key}" is {type(item[key]).__name__}, expected a string')
    return problems


def load_records(path, required: Sequence[str] = ("output",)) -> List[Record]:
    """Read, check and clean every record of ``path``; raise :class:`DataError` listing the problems."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (--raw_data_path)")
    data = _parse(path)
    optional = [k for k in ("instruction", "input", "output") if k not in required]
    problems: List[Tuple[int, str]] = []
    records = []
    for number, item in enumerate(data, start=1):
        found = _check(item, required, optional)
        problems += [(number, p) for p in found]
        if not found:
            records.append(Record(*(item.get(k) or "" for k in ("instruction", "input", "output"))))
    if problems:
        lines = [f"{path}: record {n}: {p}" for n, p in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            lines.append(f"... and {len(problems) - MAX_PROBLEMS} more problem(s)")
        raise DataError(f"{len(problems)} problem(s) in the input:\n" + "\n".join(lines))
    if not records:
        raise DataError(f"{path}: the array is empty; nothing to preprocess")
    return records
