import pytest
import torch

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.features_io import SavedFeatures
from lerobot_cknna.results.horizons import score_horizons
from lerobot_cknna.testing import dense_reference
from tests.utils import episodic_features, states_ahead_by_lookup

LEAD = 3


def anticipating_features(n_episodes: int = 6, length: int = 20) -> SavedFeatures:
    """Feat A at frame t is exactly the state at t+LEAD (the episode's last state near its end)."""
    features = episodic_features(n_episodes, length)
    states = features.feat_b.reshape(n_episodes, length, -1)
    ahead = torch.cat([states[:, LEAD:], states[:, -1:].expand(-1, LEAD, -1)], dim=1)
    features.feat_a = ahead.reshape(n_episodes * length, -1)
    return features


def test_cknna_peaks_at_the_horizon_feat_a_encodes_and_matches_a_direct_rescoring():
    features = anticipating_features()
    cfg = CKNNAConfig(horizons=[0, 1, LEAD, 6], n_permutations=5)
    records = score_horizons(features, cfg)
    assert [r["horizon"] for r in records] == [0, 1, LEAD, 6]
    assert [r["n_dropped"] for r in records] == [0, 6, 6 * LEAD, 36]
    assert [r["n"] for r in records] == [120, 114, 102, 84]
    values = [r["cknna"]["value"] for r in records]
    assert values[2] == pytest.approx(1.0, abs=1e-4) and max(values[:2] + values[3:]) < 0.95
    for record in records:
        kept, feat_b = states_ahead_by_lookup(features, [record["horizon"]])
        expected = dense_reference.cknna(
            cfg.feature_prep_a(features.feat_a[kept].double()), cfg.feature_prep_b(feat_b.double()), cfg.k
        )
        assert record["cknna"]["value"] == pytest.approx(expected["value"], rel=1e-10)
        assert len(record["cknna"]["null"]["samples"]) == 5 and record["cknna"]["interval"] is not None
    assert records[2]["cknna"]["null"]["p_value"] < 0.2


def test_horizons_on_strided_frames_count_steps_not_samples():
    # Every 2nd frame kept: one step later is never saved, two steps later is the next sample.
    features = episodic_features(n_episodes=6, length=30)
    features = features.select(features.frame_index % 2 == 0)
    records = score_horizons(features, CKNNAConfig(horizons=[1, 2], n_permutations=0, interval_level=None))
    odd, even = records
    assert odd["skipped"] == "no sample has its state at t+1 in its episode" and odd["cknna"] is None
    assert odd["n"] == 0 and odd["n_dropped"] == 90
    assert even["skipped"] is None and even["n"] == 84 and even["n_dropped"] == 6


def test_trajectory_target_shifts_with_the_horizon():
    features = episodic_features(n_episodes=5, length=16)
    cfg = CKNNAConfig(target="trajectory", window=2, horizons=[0, 4], n_permutations=0, interval_level=None)
    now, later = score_horizons(features, cfg)
    assert now["feat_b"] == "states t..t+2 stacked (trajectory, W=2)" and now["n_dropped"] == 10
    assert later["feat_b"] == "states t+4..t+6 stacked (trajectory, W=2)" and later["n_dropped"] == 30
