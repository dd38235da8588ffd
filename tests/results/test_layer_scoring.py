import copy
import dataclasses
import math

import numpy as np
import pytest

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.metrics.statistics import assess
from lerobot_cknna.results.layer_scoring import max_over_layers, score_layers
from lerobot_cknna.results.scoring import score_features
from lerobot_cknna.testing import dense_reference
from lerobot_cknna.testing.reference_statistics import REFERENCE_ESTIMATORS
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


def test_max_over_layers_is_the_null_of_the_highest_layer_computed_directly():
    layers = deepening_layers()
    cfg = CKNNAConfig(k=5, k_sweep=[5], n_permutations=20, prep_b="center_l2", interval_level=None, alpha=0.1)
    record = score_layers(layers, cfg)
    assert record["alpha"] == 0.1
    for metric in ("cknna", "mutual_knn"):
        # Each layer's null searched again per pairing (the direct loops), from the same seed.
        direct = [
            assess(
                cfg.feature_prep_a(layer.features.feat_a.double()),
                cfg.feature_prep_b(layer.features.feat_b.double()),
                ks=(5,),
                episode_index=layer.features.episode_index,
                frame_index=layer.features.frame_index,
                n_permutations=20,
                seed=cfg.seed,
                estimators=REFERENCE_ESTIMATORS,
            )[metric][0]
            for layer in layers
        ]
        values = [item.value for item in direct]
        best = int(np.argmax(values))
        null_of_max = np.array([item.null.samples for item in direct]).max(axis=0)
        tau = np.sort(np.append(null_of_max, values[best]))[math.ceil(0.9 * 21) - 1]
        got = record["max_over_layers"][metric]
        assert (got["layer"], got["path"], got["depth"]) == (best, layers[best].tap.path, best / 2)
        assert got["value"] == pytest.approx(values[best], abs=1e-12)
        assert got["null"]["samples"] == pytest.approx(null_of_max.tolist(), abs=1e-12)
        assert got["null"]["threshold"] == pytest.approx(tau, abs=1e-12) and got["null"]["alpha"] == 0.1
        assert got["null"]["calibrated"] == pytest.approx(min(max((values[best] - tau) / (1 - tau), 0), 1))
        assert got["null"]["p_value"] == (1 + (null_of_max >= values[best]).sum()) / 21
    # The deepest layer is feat A itself: the null of the maximum is at least its own null, draw by draw.
    assert all(
        high >= own - 1e-12
        for high, own in zip(
            record["max_over_layers"]["cknna"]["null"]["samples"],
            record["layers"][-1]["cknna"]["null"]["samples"],
            strict=True,
        )
    )


def test_max_over_layers_leaves_out_draws_undefined_at_some_layer_and_needs_matching_draws():
    layer = {"index": 0, "depth": 0.0, "path": "a", "cknna": {"value": 0.5, "null": None}}
    first = copy.deepcopy(layer) | {
        "cknna": {"value": 0.5, "null": {"samples": [0.1, 0.2, 0.3], "left_out": []}}
    }
    second = copy.deepcopy(layer) | {
        "index": 1,
        "depth": 1.0,
        "path": "b",
        "cknna": {"value": 0.4, "null": {"samples": [0.6, 0.1], "left_out": [1]}},
    }
    best = max_over_layers([first, second], "cknna", 0.5)
    # Draw 1 is undefined at layer b: the maxima of draws 0 and 2 only.
    assert best["null"]["samples"] == [0.6, 0.3] and best["null"]["left_out"] == [1]
    assert (best["layer"], best["path"], best["value"]) == (0, "a", 0.5)
    assert best["null"]["p_value"] == 2 / 3
    second["cknna"]["null"]["left_out"] = []
    with pytest.raises(ValueError, match="different numbers of draws"):
        max_over_layers([first, second], "cknna", 0.5)
    assert max_over_layers([first, layer], "cknna", 0.5) is None
