import pytest

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.sample_size import score_n_curve
from lerobot_cknna.results.sampling import nested_episode_rows
from lerobot_cknna.testing import dense_reference
from tests.utils import episodic_features


def test_each_point_is_a_nested_episode_subset_scored_as_its_own_run():
    features = episodic_features(n_episodes=8, length=12)
    cfg = CKNNAConfig(n_curve=[60, 30, 96], n_permutations=4, seed=4)
    points = score_n_curve(features, cfg)
    assert [p["n_requested"] for p in points] == [30, 60, 96]
    assert [p["n"] for p in points] == [36, 60, 96] and [p["n_episodes"] for p in points] == [3, 5, 8]
    for point, rows in zip(
        points, nested_episode_rows(features.episode_index, [30, 60, 96], seed=4), strict=True
    ):
        expected = dense_reference.cknna(
            cfg.feature_prep_a(features.feat_a[rows].double()),
            cfg.feature_prep_b(features.feat_b[rows].double()),
            cfg.k,
        )
        assert point["skipped"] is None
        assert point["cknna"]["value"] == pytest.approx(expected["value"], rel=1e-10)
        null = point["cknna"]["null"]
        assert len(null["samples"]) == 4 and "calibrated" in null
        assert point["cknna"]["interval"] is not None


def test_a_point_too_small_for_k_is_skipped_with_the_reason():
    features = episodic_features(n_episodes=4, length=10)
    cfg = CKNNAConfig(
        k=12, exclude_same_episode=True, n_curve=[13, 40], n_permutations=0, interval_level=None
    )
    small, whole = score_n_curve(features, cfg)
    assert small["n"] == 20 and small["cknna"] is None
    assert small["skipped"].startswith(
        "N=20 too small for k=12: some samples have only 10 possible neighbours"
    )
    assert whole["n"] == 40 and whole["skipped"] is None and whole["cknna"]["value"] > 0
