"""Put scored runs side by side: one table, one figure, and a ranking only where it means something.

Usage::

    lerobot-cknna-compare outputs/cknna/2026-11-24/10-00-00_act outputs/cknna/2026-11-24/11-00-00_smolvla
    lerobot-cknna-compare DIR_A DIR_B DIR_C --output_dir=outputs/cknna/compare_libero_spatial

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
    args = parser.parse_args()

    def compare():
        output_dir = args.output_dir or default_run_dir("compare")
        report, figure, obstacles = compare_runs(args.run_dirs, output_dir)
        for reason in obstacles:
            logging.warning(f"Not ranked: {reason}")
        logging.info(f"Wrote {report} and {figure}")

    run_command(compare)


if __name__ == "__main__":
    main()
