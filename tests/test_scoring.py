import json
import math

import pytest
import torch

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.features_io import SavedFeatures
from lerobot_cknna.metrics import cknna
from lerobot_cknna.scoring import score_features, write_results


def episodic_features(n_episodes=6, length=20, seed=0) -> SavedFeatures:
    gen = torch.Generator().manual_seed(seed)
    state = torch.randn(n_episodes, length, 8, generator=gen).cumsum(dim=1).reshape(-1, 8)
    feat_a = torch.tanh(state @ torch.randn(8, 32, generator=gen)) + 0.3 * torch.randn(
        len(state), 32, generator=gen
    )
    return SavedFeatures(
        feat_a,
        state,
        torch.arange(n_episodes).repeat_interleave(length),
        torch.arange(length).repeat(n_episodes),
    )


def test_record_has_every_field_and_matches_the_metric(tmp_path):
    features = episodic_features()
    cfg = CKNNAConfig(n_permutations=30, prep_b="center_l2")
    record = score_features(features, cfg, {"kind": "test"})
    assert record["n"] == 120 and record["n_episodes"] == 6 and record["k"] == 10
    assert record["feature_prep"] == {"feat_a": "l2", "feat_b": "center_l2"}
    head = record["headline"]["cknna"]
    expected = cknna(
        cfg.feature_prep_a(features.feat_a.double()), cfg.feature_prep_b(features.feat_b.double())
    )
    assert head["value"] == pytest.approx(expected.value, rel=1e-12)
    assert len(head["null"]["samples"]) == 30 and head["interval"]["groups"] == 6
    assert [r["k"] for r in record["k_sweep"]["cknna"]] == [5, 10, 20, 50]
    path = write_results(tmp_path, record)
    assert json.loads(path.read_text())["source"] == {"kind": "test"}


def test_sweep_values_that_do_not_fit_are_dropped_with_a_warning():
    record = score_features(episodic_features(3, 10), CKNNAConfig(n_permutations=0, interval_level=None))
    assert [r["k"] for r in record["k_sweep"]["cknna"]] == [5, 10, 20]
    assert any("[50] dropped" in note for note in record["warnings"])


def test_headline_k_too_large_is_refused():
    with pytest.raises(ValueError, match="Gather more"):
        score_features(episodic_features(1, 8), CKNNAConfig(n_permutations=0, interval_level=None))


def test_exclusion_options():
    features = episodic_features()
    record = score_features(features, CKNNAConfig(n_permutations=0, interval_level=None, exclude_window=2))
    assert record["exclusion"] == "same episode within 2 frames"
    with pytest.raises(ValueError, match="not both"):
        CKNNAConfig(exclude_same_episode=True, exclude_window=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prep_a": "zscore"}, "choose one of"),
        ({"n_permutations": -1}, "n_permutations must be >= 0"),
        ({"interval_level": 1.5}, r"interval_level must be in \(0, 1\)"),
    ],
)
def test_bad_options_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CKNNAConfig(**kwargs)


def test_record_is_strict_json():
    record = score_features(episodic_features(), CKNNAConfig(n_permutations=10))
    text = json.dumps(record, allow_nan=False)
    assert all(math.isfinite(x) for x in json.loads(text)["headline"]["cknna"]["null"]["samples"])
