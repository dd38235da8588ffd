"""LeRobotDatasets on disk with LIBERO's features and random content: replay's input, without the simulator.

For what depends on the dataset's layout (episodes, tasks, frames), not on what the frames show.
A recording from the simulator is :func:`lerobot_cknna.drivers.libero.record.record_libero_dataset`.
"""

from collections.abc import Sequence
from pathlib import Path

import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset

from lerobot_cknna.drivers.libero.record import IMAGE_KEYS, IMAGE_SIZE, dataset_features


def random_libero_dataset(
    root: Path, episodes: Sequence[tuple[str, int]], repo_id: str = "local/random_libero", seed: int = 0
) -> LeRobotDataset:
    """A dataset of ``episodes`` (each a task instruction and its number of frames) of random LIBERO-shaped frames.

    Images are stored as PNG (no video codec), states and actions are Gaussian.
    """
    dataset = LeRobotDataset.create(repo_id, 10, dataset_features(), root=root, use_videos=False)
    generator = torch.Generator().manual_seed(seed)
    for task, length in episodes:
        for _ in range(length):
            images = {
                key: torch.randint(
                    0, 256, (3, IMAGE_SIZE, IMAGE_SIZE), generator=generator, dtype=torch.uint8
                )
                for key in IMAGE_KEYS
            }
            dataset.add_frame({
                **{key: image.numpy() for key, image in images.items()},
                "observation.state": torch.randn(8, generator=generator).numpy(),
                "action": torch.randn(7, generator=generator).numpy(),
                "task": task,
            })  # fmt: skip
        dataset.save_episode()
    dataset.finalize()
    return LeRobotDataset(repo_id, root=root)
