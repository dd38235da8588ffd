"""Continuing a replay run that was killed or interrupted (``--resume=true``).

A run writes its settings to ``cknna_config.json`` in its output directory before it
gathers anything. Resuming reads them back and refuses to continue with other settings,
so the samples of both parts come from one policy, one hook and one frame selection.
"""

import json
from pathlib import Path

import draccus

from lerobot_cknna.utils.io import write_json_atomic

RUN_CONFIG_FILE = "cknna_config.json"
# Settings that change how the work is done, not what is gathered.
NOT_COMPARED = {"resume", "cknna.batch_size", "cknna.num_workers", "cknna.device"}


def _flatten(settings: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def run_settings(cfg) -> dict:
    """The run's settings as flat dotted keys (``cknna.max_samples``), JSON values."""
    return _flatten(json.loads(json.dumps(draccus.encode(cfg), default=str)))


def save_run_config(cfg, directory: Path) -> Path:
    """Write ``cknna_config.json`` (the run's settings) into ``directory``."""
    path = Path(directory) / RUN_CONFIG_FILE
    write_json_atomic(path, run_settings(cfg))
    return path


def check_same_run(cfg, directory: Path) -> None:
    """Raise a ValueError naming every setting that differs from the run saved in ``directory``."""
    path = Path(directory) / RUN_CONFIG_FILE
    if not path.is_file():
        raise ValueError(
            f"Nothing to resume in {directory}: no {RUN_CONFIG_FILE}. Give the --output_dir of a "
            "lerobot-cknna replay run, or drop --resume=true to start one."
        )
    saved, current = json.loads(path.read_text()), run_settings(cfg)
    differing = sorted(
        key for key in (saved.keys() | current.keys()) - NOT_COMPARED if saved.get(key) != current.get(key)
    )
    if differing:
        changes = "; ".join(f"{key}: {saved.get(key)!r} then, {current.get(key)!r} now" for key in differing)
        raise ValueError(
            f"Cannot resume {directory} with other settings ({changes}). Resume with the run's own "
            f"settings, or start a new run in another --output_dir."
        )
