"""``lerobot-cknna-sweep``: the study over many policies, each run in its own process, on the same samples.

Usage::

    lerobot-cknna-sweep configs/study/sweep.yaml                 # the study on real checkpoints
    lerobot-cknna-sweep configs/study_tiny/sweep.yaml            # every type, offline, tiny builds
    lerobot-cknna-sweep SWEEP.yaml --output_dir=DIR --only=act,smolvla

The sweep file (:mod:`lerobot_cknna.study.sweep_spec`) lists the runs (one small YAML per policy:
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
import logging
import sys
from pathlib import Path

from lerobot_cknna.study.sweep_runs import run_sweep, write_comparison
from lerobot_cknna.study.sweep_spec import SweepSpec, load_sweep, missing_interpreters, select_runs
from lerobot_cknna.utils.cli import run_command
from lerobot_cknna.utils.io import default_run_dir, write_json_atomic

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
    sweep = select_runs(sweep, args.only.split(",") if args.only else None)
    missing = missing_interpreters(sweep, args.python)
    if missing:
        raise ValueError(" ".join(missing))
    return sweep


def sweep_main(argv: list[str] | None = None) -> None:
    """Run the sweep named on the command line; exit 1 when a run failed."""
    args = _parse_args(argv)
    sweep = load_selected(args)
    sweep_dir = args.output_dir or default_run_dir("sweep")
    outcomes = run_sweep(sweep, sweep_dir, args.python)
    obstacles = write_comparison(sweep, outcomes, sweep_dir)
    record = {
        "sweep_file": str(args.sweep_file),
        "runs": [outcome.as_dict() for outcome in outcomes],
        "not_ranked_because": obstacles,
    }
    write_json_atomic(sweep_dir / SWEEP_RECORD_FILE, record)
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
