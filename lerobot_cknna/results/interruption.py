"""``interruption.json``: what a run that stopped early kept, what it lost, and why.

A simulation that stops before ``eval_policy_all`` returns (a LIBERO worker that died, Ctrl-C)
keeps the episodes it finished on disk (``features.chunks/``) and writes this record beside
them: why it stopped, the episodes kept, the rollout that was cut short and, per task, the
episodes lost. ``lerobot-cknna-score DIR`` scores what was kept; the result says that it is
partial (:func:`partial_run_warning`) and keeps the record under ``interruption``.
"""

import json
from pathlib import Path

from lerobot_cknna.utils.io import write_json_atomic

INTERRUPTION_FILE = "interruption.json"


class RunStoppedError(RuntimeError):
    """A run stopped before it finished; what it kept is on disk, and its message says where and what next."""


def write_interruption(run_dir: Path, reason: str, losses: dict, source: dict, task_suites: dict) -> Path:
    """Record in ``run_dir`` that its run stopped early.

    Args:
        run_dir: the run's output directory.
        reason: why it stopped (the error, or the interrupt).
        losses: what was kept and lost (:meth:`~lerobot_cknna.drivers.rollout_recorder.SimulationRecorder.losses`).
        source: where the features come from, as a finished run would record it.
        task_suites: suite of each task string gathered so far.
    """
    path = Path(run_dir) / INTERRUPTION_FILE
    write_json_atomic(path, {"reason": reason, **losses, "source": source, "task_suites": task_suites})
    return path


def read_interruption(run_dir: Path) -> dict | None:
    """The interruption record of ``run_dir``, ``None`` when the run did not stop early."""
    path = Path(run_dir) / INTERRUPTION_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def partial_run_warning(interruption: dict) -> str:
    """One sentence for a result scored from what an interrupted run kept."""
    stopped = interruption.get("stopped_during")
    where = (
        f" during {stopped['suite']} task {stopped['task_id']} (episodes {stopped['episodes'][0]}-"
        f"{stopped['episodes'][1]} of that task lost)"
        if stopped
        else ""
    )
    return (
        f"Partial run: it stopped{where}: {interruption['reason']}. Scored on the "
        f"{interruption['episodes_kept']} of {interruption['episodes_planned']} planned episodes that "
        f"finished ({INTERRUPTION_FILE} lists the episodes lost per task)."
    )
