"""``lerobot-cknna-record-libero``: record a small LeRobotDataset from the LIBERO simulator, offline.

Scripted arm motions, each frame as a policy receives it in ``lerobot-eval`` before its own
preprocessor (see :mod:`lerobot_cknna.drivers.libero.record`)::

    lerobot-cknna-record-libero --root /tmp/libero_sim --task_ids 0 1 --n_steps 20
"""

import argparse
from collections.abc import Sequence
from pathlib import Path

from lerobot.utils.utils import init_logging

from lerobot_cknna.drivers.libero.record import RECORDED_REPO_ID, record_libero_dataset


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: record the dataset and print where it is."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="dataset folder (must not exist)")
    parser.add_argument("--repo_id", default=RECORDED_REPO_ID)
    parser.add_argument("--suite", default="libero_spatial")
    parser.add_argument("--task_ids", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--episodes_per_task", type=int, default=1)
    parser.add_argument("--n_steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fps", type=int, default=10)
    args = parser.parse_args(argv)
    init_logging()
    dataset = record_libero_dataset(**vars(args))
    print(
        f"Recorded {dataset.num_episodes} episodes, {dataset.num_frames} frames of {args.suite} "
        f"to {dataset.root} (load with LeRobotDataset({args.repo_id!r}, root={str(dataset.root)!r}))"
    )


if __name__ == "__main__":
    main()
