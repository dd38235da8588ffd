"""``lerobot-cknna-demo``: the embedded default (``make demo``), a LIBERO simulation and a replay, offline.

See :mod:`lerobot_cknna.study.demo` for what it runs.
"""

import argparse
from pathlib import Path

from lerobot.utils.utils import init_logging

from lerobot_cknna.study.demo import RANDOM_WEIGHTS_NOTE, run_demo
from lerobot_cknna.utils.io import OUTPUT_ROOT


def main():
    """Prepare the offline assets, run simulation and replay, print where the reports are."""
    from lerobot_cknna.study import demo

    parser = argparse.ArgumentParser(
        description=demo.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output_root", type=Path, default=OUTPUT_ROOT)
    parser.add_argument("--episodes", type=int, default=4, help="simulated episodes")
    parser.add_argument("--episode_length", type=int, default=20, help="env steps per simulated episode")
    args = parser.parse_args()
    init_logging()
    sim_dir, replay_dir = run_demo(args.output_root, args.episodes, args.episode_length)
    print(f"\nSimulation report: {sim_dir / 'report.md'}\nReplay report:     {replay_dir / 'report.md'}")
    print(RANDOM_WEIGHTS_NOTE)


if __name__ == "__main__":
    main()
