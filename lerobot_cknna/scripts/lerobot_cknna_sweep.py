"""``lerobot-cknna-sweep``: the study over many policies, each run in its own process, on the same samples.

Usage::

    lerobot-cknna-sweep configs/study/sweep.yaml                 # the study on real checkpoints
    lerobot-cknna-sweep configs/study_tiny/sweep.yaml            # all eleven types, offline, tiny builds
    lerobot-cknna-sweep SWEEP.yaml --output_dir=DIR --only=act,smolvla

The sweep file (:mod:`lerobot_cknna.configs.sweep`) lists the runs (one small YAML per policy:
its ``lerobot-cknna`` arguments and the weights' provenance) and the arguments every run
shares (the same dataset episodes, or the same simulation seeds). Each run is
``PYTHON -m lerobot_cknna.scripts.lerobot_cknna ARGS`` in a fresh process, with this
interpreter (``--python``) unless its run file names another. A run that fails is recorded and
the sweep goes on.

Writes into ``--output_dir`` (default ``outputs/cknna/DATE/TIME_sweep``): ``runs/NAME/`` (each
run's own output), ``logs/NAME.stdout.log`` and ``logs/NAME.stderr.log``, ``sweep.json`` (every
run's command, exit status, time and stderr tail) and the comparison of ``lerobot-cknna-compare``
(``comparison.md``, ``comparison.png``): failed runs are rows with their failure, runs are ranked
only when they scored the same samples, and the weights' provenance and the cross-category caveat
are in the report. Exit status 1 when a run failed (after the comparison is written), 2 for bad
input (missing file, unknown key, missing interpreter), before anything runs.
"""

import argparse
import dataclasses
import datetime as dt
import json
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from lerobot_cknna.configs.sweep import SweepSpec, load_sweep, missing_interpreters
from lerobot_cknna.features_io import write_atomic
from lerobot_cknna.record_libero import record_once
from lerobot_cknna.scripts.lerobot_cknna_compare import FailedRun, compare_runs
from lerobot_cknna.scripts.user_errors import run_command
from lerobot_cknna.sweep_runs import RunOutcome, run_policy, save_tiny_policies

SWEEP_RECORD_FILE = "sweep.json"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sweep_file", type=Path, help="the sweep YAML (configs/study/sweep.yaml)")
    parser.add_argument("--output_dir", type=Path, default=None, help="where the sweep writes")
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter of the runs (default: this one)"
    )
    parser.add_argument(
        "--offline_assets", type=Path, default=None, help="overrides the file's offline_assets"
    )
    parser.add_argument("--only", default=None, help="comma-separated run names to run (default: all)")
    return parser.parse_args(argv)


def load_selected(args: argparse.Namespace) -> SweepSpec:
    """The sweep file with the command line's overrides applied, checked before anything runs.

    Raises:
        FileNotFoundError: a missing sweep or run file.
        ValueError: bad content, an unknown ``--only`` name, or an interpreter that does not exist.
    """
    sweep = load_sweep(args.sweep_file, offline_assets=args.offline_assets)
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - {run.name for run in sweep.runs})
        if unknown:
            raise ValueError(f"--only names runs the sweep does not have: {unknown}.")
        sweep = dataclasses.replace(sweep, runs=[run for run in sweep.runs if run.name in wanted])
    missing = missing_interpreters(sweep, args.python)
    if missing:
        raise ValueError(" ".join(missing))
    return sweep


def run_sweep(sweep: SweepSpec, sweep_dir: Path, python: str) -> list[RunOutcome]:
    """Prepare what the sweep records or builds offline, then run every policy; failures do not stop it."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if sweep.record_libero is not None:
        recording = sweep.record_libero
        logging.info(f"Recorded LIBERO dataset: {recording.directory(sweep.offline_assets)}")
        record_once(
            recording.directory(sweep.offline_assets),
            task_ids=recording.task_ids,
            episodes_per_task=recording.episodes_per_task,
            n_steps=recording.n_steps,
        )
    not_built = save_tiny_policies(sweep, python, sweep_dir)
    outcomes = []
    for run in tqdm(sweep.runs, desc="sweep", unit="run"):
        if run.name in not_built:
            outcomes.append(dataclasses.replace(not_built[run.name], name=run.name))
            continue
        outcomes.append(run_policy(sweep, run, python, sweep_dir))
    return outcomes


def write_comparison(sweep: SweepSpec, outcomes: list[RunOutcome], sweep_dir: Path) -> list[str]:
    """``comparison.md`` / ``comparison.png`` over the runs, failed ones as rows; returns why not ranked."""
    provenance = {run.name: run.provenance for run in sweep.runs if run.provenance}
    report, figure, obstacles = compare_runs(
        [Path(outcome.run_dir) for outcome in outcomes if outcome.succeeded],
        sweep_dir,
        failed=[FailedRun(outcome.name, outcome.failure()) for outcome in outcomes if not outcome.succeeded],
        provenance=provenance,
    )
    for reason in obstacles:
        logging.warning(f"Not ranked: {reason}")
    logging.info(f"Comparison: {report}" + (f" and {figure}" if figure else ""))
    return obstacles


def sweep_main(argv: list[str] | None = None) -> None:
    """Run the sweep named on the command line; exit 1 when a run failed."""
    args = _parse_args(argv)
    sweep = load_selected(args)
    now = dt.datetime.now()
    sweep_dir = args.output_dir or Path("outputs/cknna") / f"{now:%Y-%m-%d}" / f"{now:%H-%M-%S}_sweep"
    outcomes = run_sweep(sweep, sweep_dir, args.python)
    obstacles = write_comparison(sweep, outcomes, sweep_dir)
    record = {
        "sweep_file": str(args.sweep_file),
        "runs": [outcome.as_dict() for outcome in outcomes],
        "not_ranked_because": obstacles,
    }
    write_atomic(sweep_dir / SWEEP_RECORD_FILE, lambda tmp: tmp.write_text(json.dumps(record, indent=2)))
    failed = [outcome.name for outcome in outcomes if not outcome.succeeded]
    if failed:
        logging.error(f"{len(failed)} of {len(outcomes)} runs failed: {', '.join(failed)} (see {sweep_dir})")
        sys.exit(1)
    logging.info(f"All {len(outcomes)} runs succeeded: {sweep_dir}")


def main():
    """Console entry point."""
    run_command(sweep_main)


if __name__ == "__main__":
    main()
