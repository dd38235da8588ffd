import itertools

import pytest
import torch

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.sampling import (
    apply_sampling,
    check_sizes,
    nested_episode_rows,
    one_frame_per_episode,
)
from tests.utils import episodic_features


def test_one_frame_per_episode_draws_one_real_sample_of_each_episode_under_the_seed():
    features = episodic_features(n_episodes=8, length=15)
    features = features.select(torch.randperm(120, generator=torch.Generator().manual_seed(2)))
    picked = one_frame_per_episode(features, seed=0)
    assert picked.episode_index.tolist() == list(range(8))
    for a, episode, frame in zip(picked.feat_a, picked.episode_index, picked.frame_index, strict=True):
        (row,) = ((features.episode_index == episode) & (features.frame_index == frame)).nonzero()[:, 0]
        assert torch.equal(features.feat_a[row], a)
    again = one_frame_per_episode(features, seed=0)
    assert torch.equal(again.frame_index, picked.frame_index)
    assert not torch.equal(one_frame_per_episode(features, seed=1).frame_index, picked.frame_index)
    assert apply_sampling(features, CKNNAConfig()) is features
    assert torch.equal(
        apply_sampling(features, CKNNAConfig(sampling="one_per_episode")).feat_a, picked.feat_a
    )


def test_nested_subsets_hold_whole_episodes_and_the_fewest_that_reach_n():
    lengths = [5, 9, 3, 7, 11, 4]
    episode_index = torch.repeat_interleave(torch.arange(6), torch.tensor(lengths))
    sizes = [4, 10, 20, 39]
    subsets = nested_episode_rows(episode_index, sizes, seed=3)
    episodes = [set(episode_index[rows].tolist()) for rows in subsets]
    for size, rows, kept in zip(sizes, subsets, episodes, strict=True):
        assert len(rows) == sum(lengths[e] for e in kept) >= size
        assert torch.equal(rows, torch.isin(episode_index, torch.tensor(sorted(kept))).nonzero()[:, 0])
    for smaller, larger in itertools.pairwise(episodes):
        assert smaller <= larger
    # One shuffle of the episodes under the seed; each subset is the shortest prefix of it that reaches N.
    order = torch.randperm(6, generator=torch.Generator().manual_seed(3)).tolist()
    for size, kept in zip(sizes, episodes, strict=True):
        prefix = order[: len(kept)]
        assert set(prefix) == kept and sum(lengths[e] for e in prefix[:-1]) < size
    assert nested_episode_rows(episode_index, [39], seed=3)[0].tolist() == list(range(39))
    assert [r.tolist() for r in nested_episode_rows(episode_index, sizes, seed=3)] == [
        r.tolist() for r in subsets
    ]


def test_sizes_beyond_the_samples_are_refused():
    with pytest.raises(ValueError, match=r"asks for N=\[50\] but only 40 samples"):
        check_sizes(40, [20, 50])
