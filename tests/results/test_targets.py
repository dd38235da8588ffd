import pytest
import torch

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.features_io import SavedFeatures
from lerobot_cknna.results.targets import build_target, frames_ahead, stacked_states
from tests.utils import episodic_features, states_ahead_by_lookup


def hand_made(episodes: list[int], frames: list[int]) -> SavedFeatures:
    n = len(episodes)
    return SavedFeatures(
        torch.randn(n, 4), torch.arange(n * 2.0).reshape(n, 2), torch.tensor(episodes), torch.tensor(frames)
    )


def test_frames_ahead_finds_the_same_episode_exact_frame_in_any_row_order():
    # Episode 0 lacks frame 2, episode 1 lacks frame 1; rows are not in frame order.
    features = hand_made([1, 0, 0, 1, 0, 5], [2, 3, 0, 0, 1, 0])
    assert frames_ahead(features, 0).tolist() == [0, 1, 2, 3, 4, 5]
    assert frames_ahead(features, 1).tolist() == [-1, -1, 4, -1, -1, -1]
    assert frames_ahead(features, 2).tolist() == [-1, -1, -1, 0, 1, -1]
    assert frames_ahead(features, 3).tolist() == [-1, -1, 1, -1, -1, -1]


def test_frames_ahead_refuses_repeated_episode_frames():
    with pytest.raises(ValueError, match="share an episode and a frame"):
        frames_ahead(hand_made([0, 0, 1], [4, 4, 0]), 1)


@pytest.mark.parametrize("offsets", [[2], [4], [0, 2, 4], [1], [3, 4]])
def test_stacked_states_match_a_lookup_on_strided_shuffled_frames(offsets):
    # Every 2nd frame (a stride, as replay with --cknna.max_samples keeps), rows shuffled, frame 6 of
    # episode 2 missing: "h steps later" is frame t+h, so odd offsets find nothing.
    features = episodic_features(n_episodes=4, length=12)
    features = features.select(features.frame_index % 2 == 0)
    features = features.select(~((features.episode_index == 2) & (features.frame_index == 6)))
    features = features.select(
        torch.randperm(len(features.feat_a), generator=torch.Generator().manual_seed(1))
    )
    selected, n_dropped = stacked_states(features, offsets)
    kept, states = states_ahead_by_lookup(features, offsets)
    assert n_dropped == len(features.feat_a) - len(kept)
    assert torch.equal(selected.feat_a, features.feat_a[kept])
    assert torch.equal(selected.frame_index, features.frame_index[kept])
    if kept:
        assert torch.equal(selected.feat_b, states) and selected.feat_b.shape[1] == 8 * len(offsets)
    if offsets in ([1], [3, 4]):
        assert n_dropped == len(features.feat_a)


def test_build_target_describes_feat_b_and_counts_what_it_drops():
    features = episodic_features(n_episodes=3, length=10)
    state = build_target(features, CKNNAConfig())
    assert state.features is features and state.n_dropped == 0 and state.description == "state at t"
    later = build_target(features, CKNNAConfig(), horizon=4)
    assert later.description == "state at t+4" and later.n_dropped == 3 * 4
    assert torch.equal(later.features.feat_b, features.feat_b[features.frame_index >= 4])
    trajectory = build_target(features, CKNNAConfig(target="trajectory", window=2), horizon=1)
    assert trajectory.description == "states t+1..t+3 stacked (trajectory, W=2)"
    assert trajectory.n_dropped == 3 * 3 and trajectory.features.feat_b.shape == (21, 24)
    first = features.feat_b[1:4].flatten()
    assert torch.equal(trajectory.features.feat_b[0], first)
