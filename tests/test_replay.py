import torch

from lerobot_cknna.replay import sample_frames, single_task_batches


def test_batches_follow_the_frames_in_order_and_never_mix_tasks(libero_dataset):
    indices, _ = sample_frames(libero_dataset, max_samples=31)
    batches = single_task_batches(libero_dataset, indices, batch_size=4)
    assert [index for batch in batches for index in batch] == indices
    task_index = libero_dataset.hf_dataset.with_format("torch")[:]["task_index"][indices]
    assert all(
        len(batch) <= 4 and len(set(task_index[[indices.index(i) for i in batch]].tolist())) == 1
        for batch in batches
    )
    changes = int((task_index[1:] != task_index[:-1]).sum())
    assert changes >= 1 and len(batches) <= -(-len(indices) // 4) + changes
    assert single_task_batches(libero_dataset, [], batch_size=4) == []


def test_evenly_spaced_sampling_spans_every_episode(libero_dataset):
    indices, sampling = sample_frames(libero_dataset, max_samples=8)
    episodes = libero_dataset.hf_dataset.with_format("torch")[:]["episode_index"][indices]
    assert sampling == {"method": "evenly spaced", "n_frames": libero_dataset.num_frames, "max_samples": 8}
    assert indices[0] == 0 and indices[-1] == libero_dataset.num_frames - 1
    assert set(episodes.tolist()) == set(range(libero_dataset.num_episodes))
    assert torch.equal(torch.tensor(indices), torch.tensor(indices).sort().values)
