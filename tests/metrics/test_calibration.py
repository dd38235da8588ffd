import math

import numpy as np
import pytest
import torch
from calibrated_similarity import calibrate as reference_calibrate
from calibrated_similarity import calibrate_layers as reference_calibrate_layers

from lerobot_cknna.metrics.calibration import calibrate, calibrate_max
from lerobot_cknna.metrics.statistics import assess


def test_definitions_on_hand_computed_nulls():
    null = np.array([0.1, 0.2, 0.3, 0.6])
    # K = 4, alpha = 0.2: tau is the ceil(0.8 * 5) = 4th smallest of {0.5, 0.1, 0.2, 0.3, 0.6}.
    assert calibrate(0.5, null, 0.2).to_dict() == {"threshold": 0.5, "calibrated": 0.0, "p_value": 0.4}
    # The observed value is the 5th smallest, so it is tau at alpha=0.2 and 0.6 the threshold below it.
    high = calibrate(0.7, null, 0.2)
    assert (high.threshold, high.p_value) == (0.6, 0.2)
    assert high.calibrated == pytest.approx((0.7 - 0.6) / (1 - 0.6))
    # Ties count as reaching the value; a threshold of 1 calibrates to 0, not a division by zero.
    assert calibrate(0.3, np.array([0.3, 0.3, 0.1]), 0.5).p_value == 3 / 4
    assert calibrate(1.0, np.array([1.0, 1.0]), 0.05).calibrated == 0.0
    # Clamped to [0, 1].
    assert calibrate(-0.5, null, 0.2).calibrated == 0.0


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1])
def test_alpha_outside_zero_one_is_refused(alpha):
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
        calibrate(0.5, np.array([0.1]), alpha)


def test_calibrate_max_takes_the_row_maxima_as_the_null():
    values = np.array([0.2, 0.5, 0.4])
    nulls = np.array([[0.1, 0.3, 0.2], [0.6, 0.1, 0.1], [0.2, 0.2, 0.45]])
    best, null_of_max, calibration = calibrate_max(values, nulls, 0.25)
    assert best == 1 and null_of_max.tolist() == [0.3, 0.6, 0.45]
    assert calibration == calibrate(0.5, np.array([0.3, 0.6, 0.45]), 0.25)


def _iid_rows(seed: int, n: int = 60) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """feat B and three layers of feat A, i.i.d. rows; the last layer shares feat B's signal."""
    gen = torch.Generator().manual_seed(seed)
    b = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    layers = [torch.randn(n, 8, generator=gen, dtype=torch.float64) for _ in range(2)]
    layers.append(torch.cat([b, 0.8 * torch.randn(n, 4, generator=gen, dtype=torch.float64)], dim=1))
    return b, layers


def _row_perm_fn(seed: int):
    """The row permutations ``assess(null_unit="row", seed=seed)`` draws, in its order."""
    rng = np.random.default_rng(seed)
    return lambda n, device: torch.from_numpy(rng.permutation(n)).to(device)


def _metric(name: str, k: int):
    def sim(x: torch.Tensor, y: torch.Tensor) -> float:
        return assess(x, y, ks=(k,))[name][0].value

    return sim


@pytest.mark.parametrize("metric", ["cknna", "mutual_knn"])
def test_assess_matches_calibrated_similarity_on_iid_rows(metric):
    k, n_permutations, alpha, seed = 5, 19, 0.1, 3
    b, layers = _iid_rows(seed)
    for a in (layers[0], layers[2]):  # one at chance, one far above it
        null = assess(a, b, ks=(k,), n_permutations=n_permutations, null_unit="row", seed=seed, alpha=alpha)[
            metric
        ][0].null
        calibrated, p_value, tau = reference_calibrate(
            a, b, _metric(metric, k), K=n_permutations, alpha=alpha, perm_fn=_row_perm_fn(seed)
        )
        # calibrated_similarity works in float32: the same order statistic, rounded to float32.
        assert np.float32(null.threshold) == tau.item()
        assert null.p_value == pytest.approx(p_value.item(), rel=1e-7)
        assert null.calibrated == pytest.approx(calibrated.item(), rel=1e-5, abs=1e-7)
    assert null.calibrated > 0 and null.p_value == 1 / (n_permutations + 1)


def test_max_over_layers_matches_calibrate_layers_on_iid_rows():
    k, n_permutations, alpha, seed = 5, 19, 0.1, 4
    b, layers = _iid_rows(seed)
    nulls = [
        assess(a, b, ks=(k,), n_permutations=n_permutations, null_unit="row", seed=seed)["cknna"][0]
        for a in layers
    ]
    values = np.array([item.value for item in nulls])
    draws = np.stack([item.null.samples for item in nulls], axis=1)
    best, _, calibration = calibrate_max(values, draws, alpha)
    # calibrate_layers permutes Y (feat B) once per draw for every layer of X.
    calibrated, p_value, tau = reference_calibrate_layers(
        layers, [b], _metric("cknna", k), agg="max", K=n_permutations, alpha=alpha, perm_fn=_row_perm_fn(seed)
    )
    assert best == 2
    assert np.float32(calibration.threshold) == tau.item()
    assert calibration.p_value == pytest.approx(p_value.item(), rel=1e-7)
    assert calibration.calibrated == pytest.approx(calibrated.item(), rel=1e-5, abs=1e-7)
    assert math.isclose(calibration.p_value, 1 / (n_permutations + 1))
