"""Pearson, Spearman and their bootstrap over runs, against scipy.stats and a direct loop over resamples."""

import numpy as np
import pytest
from scipy import stats

from lerobot_cknna.results.correlation import (
    bootstrap_correlations,
    pearson,
    resample_runs,
    spearman,
    weighted_average_ranks,
)

# Success rates with ties (0.2 three times), as a handful of evaluated policies give them.
CKNNA = np.array([0.31, 0.12, 0.55, 0.42, 0.27, 0.61])
SUCCESS = np.array([0.2, 0.2, 0.7, 0.2, 0.5, 0.9])


@pytest.mark.parametrize("seed", range(5))
def test_pearson_and_spearman_match_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=9)
    y = np.round(0.5 * x + rng.normal(size=9), 0)  # rounding makes ties on y
    assert len(np.unique(y)) < len(y)
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_weighted_ranks_are_the_average_ranks_of_the_drawn_sample():
    values = np.array([0.3, 0.1, 0.3, 0.9, 0.5])
    indices = np.array([[0, 0, 2, 4, 1], [3, 3, 3, 1, 1]])
    weights = np.stack([np.bincount(row, minlength=len(values)) for row in indices])
    ranks = weighted_average_ranks(values, weights)
    for row, drawn in zip(ranks, indices, strict=True):
        np.testing.assert_allclose(row[drawn], stats.rankdata(values[drawn]))


def test_a_constant_side_has_no_correlation():
    assert np.isnan(pearson(CKNNA, np.full(6, 0.4))) and np.isnan(spearman(CKNNA, np.full(6, 0.4)))
    with pytest.raises(ValueError, match="same value for every run"):
        bootstrap_correlations(CKNNA, np.full(6, 0.4))
    with pytest.raises(ValueError, match="equally long"):
        bootstrap_correlations(CKNNA, SUCCESS[:5])


def test_bootstrap_matches_a_direct_loop_over_resamples():
    resamples, seed = 400, 3
    results = bootstrap_correlations(CKNNA, SUCCESS, resamples=resamples, seed=seed, level=0.9)
    kept = {"pearson": [], "spearman": []}
    dropped = 0
    for drawn in resample_runs(len(CKNNA), resamples, seed):
        x, y = CKNNA[drawn], SUCCESS[drawn]
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            dropped += 1
            continue
        kept["pearson"].append(stats.pearsonr(x, y).statistic)
        kept["spearman"].append(stats.spearmanr(x, y).statistic)
    assert dropped > 0  # three runs share a success rate: some resamples draw only them
    for method, samples in kept.items():
        result = results[method]
        assert result.dropped == dropped and result.resamples == resamples and result.seed == seed
        low, high = np.quantile(samples, [0.05, 0.95])
        assert (result.low, result.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    assert results["pearson"].value == pytest.approx(stats.pearsonr(CKNNA, SUCCESS).statistic, abs=1e-12)
    assert results["spearman"].value == pytest.approx(stats.spearmanr(CKNNA, SUCCESS).statistic, abs=1e-12)


def test_bootstrap_is_reproducible_and_its_seed_matters():
    first, again = bootstrap_correlations(CKNNA, SUCCESS), bootstrap_correlations(CKNNA, SUCCESS)
    assert first == again and first["pearson"].resamples == 10_000
    other = bootstrap_correlations(CKNNA, SUCCESS, seed=1)["pearson"]
    assert (other.low, other.high, other.dropped) != (
        first["pearson"].low,
        first["pearson"].high,
        first["pearson"].dropped,
    )
    assert first["pearson"].low < first["pearson"].value < first["pearson"].high
