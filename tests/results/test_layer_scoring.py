import dataclasses

import pytest

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.layer_scoring import score_layers
from lerobot_cknna.results.scoring import score_features
from lerobot_cknna.testing import dense_reference
from tests.utils import deepening_layers


def test_every_layer_scores_like_the_dense_reference_and_the_last_like_the_headline():
    layers = deepening_layers()
    cfg = CKNNAConfig(k=5, k_sweep=[5], n_permutations=20, prep_b="center_l2")
    record = score_layers(layers, cfg, {"policy_type": "smolvla"})
    assert record["main_hook_index"] == 2 and record["n"] == 120 and record["n_episodes"] == 6
    assert [layer["depth"] for layer in record["layers"]] == [0.0, 0.5, 1.0]
    assert [layer["main_hook"] for layer in record["layers"]] == [False, False, True]
    for layer, scored in zip(layers, record["layers"], strict=True):
        assert scored["path"] == layer.tap.path and scored["read"] == "input"
        assert scored["feat_dim"] == layer.features.feat_a.shape[1]
        a = cfg.feature_prep_a(layer.features.feat_a.double())
        b = cfg.feature_prep_b(layer.features.feat_b.double())
        assert scored["cknna"]["value"] == pytest.approx(dense_reference.cknna(a, b, 5)["value"], abs=1e-9)
        assert scored["mutual_knn"]["value"] == pytest.approx(dense_reference.mutual_knn(a, b, 5), abs=1e-9)
        assert len(scored["cknna"]["null"]["samples"]) == 20 and scored["cknna"]["interval"]["level"] == 0.95
    values = [layer["cknna"]["value"] for layer in record["layers"]]
    assert values[0] > values[2]
    headline = score_features(layers[-1].features, cfg)["headline"]
    assert record["layers"][-1]["cknna"] == headline["cknna"]


def test_layers_of_other_samples_are_refused():
    layers = deepening_layers(2)
    shifted = layers[1].features
    layers[1] = dataclasses.replace(
        layers[1], features=dataclasses.replace(shifted, frame_index=shifted.frame_index + 1)
    )
    with pytest.raises(ValueError, match="holds other samples than layer 0"):
        score_layers(layers, CKNNAConfig(k=5, n_permutations=0))


def test_a_k_that_does_not_fit_is_refused_like_the_headline():
    with pytest.raises(ValueError, match="lower --cknna.k"):
        score_layers(deepening_layers(2), CKNNAConfig(k=500, n_permutations=0))


def test_layers_use_the_headline_target_and_sampling():
    layers = deepening_layers(2)
    cfg = CKNNAConfig(k=5, k_sweep=[5], target="trajectory", window=2, n_permutations=0, interval_level=None)
    record = score_layers(layers, cfg)
    headline = score_features(layers[-1].features, cfg)
    assert record["n"] == headline["n"] == 108
    assert record["layers"][-1]["cknna"] == headline["headline"]["cknna"]
