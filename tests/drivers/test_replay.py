import pytest
import torch

from lerobot_cknna.drivers.replay import sample_frames, single_task_batches
from lerobot_cknna.testing.datasets import random_libero_dataset

TASKS = ("open the top drawer", "turn on the stove")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Four episodes of unequal lengths, two tasks, the second task's episodes apart."""
    episodes = [(TASKS[0], 7), (TASKS[1], 5), (TASKS[0], 9), (TASKS[1], 6)]
    return random_libero_dataset(tmp_path_factory.mktemp("replay") / "dataset", episodes)


def test_batches_follow_the_frames_in_order_and_never_mix_tasks(dataset):
    indices, _ = sample_frames(dataset, max_samples=31)
    batches = single_task_batches(dataset, indices, batch_size=4)
    assert [index for batch in batches for index in batch] == indices
    task_index = dataset.hf_dataset.with_format("torch")[:]["task_index"][indices]
    assert all(
        len(batch) <= 4 and len(set(task_index[[indices.index(i) for i in batch]].tolist())) == 1
        for batch in batches
    )
    changes = int((task_index[1:] != task_index[:-1]).sum())
    assert changes >= 1 and len(batches) <= -(-len(indices) // 4) + changes
    assert single_task_batches(dataset, [], batch_size=4) == []


def test_evenly_spaced_sampling_spans_every_episode(dataset):
    indices, sampling = sample_frames(dataset, max_samples=8)
    episodes = dataset.hf_dataset.with_format("torch")[:]["episode_index"][indices]
    assert sampling == {"method": "evenly spaced", "n_frames": dataset.num_frames, "max_samples": 8}
    assert indices[0] == 0 and indices[-1] == dataset.num_frames - 1
    assert set(episodes.tolist()) == set(range(dataset.num_episodes))
    assert torch.equal(torch.tensor(indices), torch.tensor(indices).sort().values)
