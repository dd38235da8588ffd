"""Recompute alignment metrics from a run's saved features, without the policy.

Usage::

    lerobot-cknna-score outputs/cknna/2026-11-23/12-00-00_demo
    lerobot-cknna-score DIR --cknna.k=20 --cknna.prep_b=center_l2 --cknna.n_permutations=1000

Reads ``DIR/features.safetensors`` and writes ``cknna.json``, its figures and ``report.md``
into ``--output_dir`` (default: ``DIR``). Every ``--cknna.*`` option of lerobot-cknna applies.
A run gathered with ``--cknna.layers=true`` gets its layer taps re-scored too (``layers.json``), one
gathered with ``--cknna.token_groups=true`` its token groups (``token_groups.json``).
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path

from lerobot.configs import parser

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.publish import rescore
from lerobot_cknna.utils.cli import run_command


@dataclass
class ScoreConfig:
    """Options of lerobot-cknna-score."""

    # Directory holding features.safetensors (may also be given as the first argument).
    run_dir: Path | None = None
    # Where cknna.json, the figures and report.md go; defaults to run_dir.
    output_dir: Path | None = None
    # The alignment options (the same --cknna.* group as lerobot-cknna).
    cknna: CKNNAConfig = field(default_factory=CKNNAConfig)

    def __post_init__(self):
        if self.run_dir is None:
            raise ValueError("Give the run directory: lerobot-cknna-score DIR (or --run_dir=DIR).")


@parser.wrap()
def score_main(cfg: ScoreConfig) -> dict:
    """Parse the command line (draccus, as LeRobot's scripts do) and score."""
    cfg.cknna.metrics_device  # noqa: B018  (a GPU this machine lacks is reported before any work)
    return rescore(cfg.run_dir, cfg.cknna, cfg.output_dir)


def main():
    """Console entry point; a leading bare argument is the run directory."""
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        sys.argv[1] = f"--run_dir={sys.argv[1]}"
    run_command(score_main)


if __name__ == "__main__":
    main()
