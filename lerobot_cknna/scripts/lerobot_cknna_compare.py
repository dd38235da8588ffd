"""Put scored runs side by side: one table, one figure, and a ranking only where it means something.

Usage::

    lerobot-cknna-compare outputs/cknna/2026-11-24/10-00-00_act outputs/cknna/2026-11-24/11-00-00_smolvla
    lerobot-cknna-compare DIR_A DIR_B DIR_C --output_dir=outputs/cknna/compare_libero_spatial
    lerobot-cknna-compare DIR_A DIR_B DIR_C DIR_D --success success.csv

Reads ``DIR/cknna.json`` of every run and writes ``comparison.md`` and ``comparison.png`` (and,
for runs with layer taps, ``layer_curves.png``: one curve per policy) into ``--output_dir``
(default: ``outputs/cknna/DATE/TIME_compare``).

A sweep (``lerobot-cknna-sweep``) also hands over the runs that failed (a row each, with why)
and the provenance it knows for each run's weights (a section of the report).

Runs are ranked (by calibrated score when every run has a null, else by CKNNA; within each
policy category, VLA / IL / RL, since CKNNA is not comparable across them) only when
their numbers are comparable: the same samples (``samples_digest``: the episode, frame and
state of every sample), the same k, feature prep, neighbour exclusion and eps. Otherwise the
table keeps the order given and says why it is not ranked: CKNNA moves with N, k/N and the
data, so ordering such runs would rank the data, not the policies.

Task success: each simulation run brings its own success rate; ``--success FILE.csv`` gives
(or replaces) runs' rates, with a header ``run,success_rate`` and one row per run (its path as
given here, or its directory name; the rate a fraction in [0, 1]). ``comparison.md`` then gets a
task success section (every run's rate and where it came from; Pearson and Spearman
correlation with the headline CKNNA across runs, with percentile bootstrap intervals over
runs) and ``success_vs_cknna.png``. With fewer than 4 runs with a success rate the section says
so and gives no correlation.
"""

import argparse
import logging
from pathlib import Path

from lerobot_cknna.results.compare import compare_runs
from lerobot_cknna.utils.cli import run_command
from lerobot_cknna.utils.io import default_run_dir


def main():
    """Console entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="DIR", help="scored run directories")
    parser.add_argument("--output_dir", type=Path, default=None, help="where the comparison goes")
    parser.add_argument(
        "--success",
        type=Path,
        default=None,
        metavar="FILE.csv",
        help="success rates per run: columns run (path or directory name), success_rate (in [0, 1])",
    )
    args = parser.parse_args()

    def compare():
        output_dir = args.output_dir or default_run_dir("compare")
        report, figure, obstacles = compare_runs(args.run_dirs, output_dir, success_csv=args.success)
        for reason in obstacles:
            logging.warning(f"Not ranked: {reason}")
        logging.info(f"Wrote {report} and {figure}")

    run_command(compare)


if __name__ == "__main__":
    main()
