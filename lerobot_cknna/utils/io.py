"""Files written so that a reader never sees half of one, and where runs go by default."""

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path

OUTPUT_ROOT = Path("outputs/cknna")


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)`` then rename over ``path``, so a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(path: Path, record: object) -> None:
    """Write ``record`` as indented JSON to ``path`` atomically; NaN and infinity are refused (they are not JSON)."""
    write_text_atomic(path, json.dumps(record, indent=2, allow_nan=False))


def default_run_dir(job_name: str, root: Path = OUTPUT_ROOT) -> Path:
    """``outputs/cknna/DATE/TIME_JOB``: LeRobot's layout of run directories."""
    now = dt.datetime.now()
    return Path(root) / f"{now:%Y-%m-%d}" / f"{now:%H-%M-%S}_{job_name}"
