"""Pearson and Spearman correlation across runs, with percentile bootstrap intervals over the runs.

A bootstrap resample draws as many runs as there are, with replacement, so a run may appear
several times. Every statistic here is therefore computed on *weighted* runs: ``weights[b, i]``
is how often run ``i`` appears in resample ``b`` (all ones for the data itself). Spearman's
rank of a run within a resample then follows from counts alone: the average (1-based) rank of
a value ``v`` among values with multiplicities ``w`` is ``less + (equal + 1) / 2``, where
``less`` and ``equal`` count the draws below and equal to ``v`` (ties share the mean of the
ranks they span, as :func:`scipy.stats.rankdata` does by default). All resamples are computed at
once, in ``O(resamples x runs^2)`` time and ``O(resamples x runs)`` memory.

A resample in which one side is constant (every drawn run has the same success rate, or the
same CKNNA) has no correlation; it is dropped, and the number dropped is reported beside the
interval.
"""

from dataclasses import dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
BOOTSTRAP_LEVEL = 0.95


@dataclass(frozen=True)
class BootstrapCorrelation:
    """A correlation coefficient across runs and its percentile bootstrap interval.

    Attributes:
        method: ``pearson`` or ``spearman``.
        value: the coefficient over all runs.
        low: lower end of the interval; ``None`` when every resample was dropped.
        high: upper end of the interval.
        level: the interval's coverage, e.g. 0.95 for the 2.5th to 97.5th percentiles.
        resamples: resamples drawn.
        dropped: resamples dropped because one side was constant in them.
        seed: seed of the generator that drew the resamples.
    """

    method: str
    value: float
    low: float | None
    high: float | None
    level: float
    resamples: int
    dropped: int
    seed: int


def _as_weights(n: int, weights: np.ndarray | None) -> np.ndarray:
    return np.ones((1, n)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=float))


def _constant_in(values: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """Per resample: whether every drawn run has the same value (exactly; no rounding can hide it)."""
    low = np.where(drawn, values, np.inf).min(axis=1)
    high = np.where(drawn, values, -np.inf).max(axis=1)
    return low == high


def weighted_pearson(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Pearson's r of ``x`` and ``y`` where run ``i`` counts ``weights[b, i]`` times, for every row ``b``.

    Args:
        x: a value per run, ``(n,)``, or per resample and run, ``(B, n)``.
        y: the same for the other side.
        weights: multiplicities ``(B, n)``; default one row of ones.

    Returns:
        ``(B,)`` coefficients; ``nan`` where every drawn run has the same value on a side.
    """
    weights = _as_weights(np.shape(x)[-1], weights)
    total = weights.sum(axis=1, keepdims=True)
    dx = x - (weights * x).sum(axis=1, keepdims=True) / total
    dy = y - (weights * y).sum(axis=1, keepdims=True) / total
    sxy, sxx, syy = ((weights * a * b).sum(axis=1) for a, b in ((dx, dy), (dx, dx), (dy, dy)))
    # Rounding leaves a constant side a spread of ~1e-17, so constancy is decided on the values.
    constant = _constant_in(x, weights > 0) | _constant_in(y, weights > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.clip(sxy / np.sqrt(sxx * syy), -1.0, 1.0)
    return np.where(constant, np.nan, r)


def weighted_average_ranks(values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Each run's average rank (1-based, ties averaged) among the runs drawn with ``weights``.

    Args:
        values: a value per run, ``(n,)``.
        weights: multiplicities ``(B, n)``; default one row of ones.

    Returns:
        ``(B, n)`` ranks; a run not drawn in a row still gets the rank its value would have there.
    """
    values = np.asarray(values, dtype=float)
    weights = _as_weights(len(values), weights)
    less = weights @ (values[:, None] < values[None, :])
    equal = weights @ (values[:, None] == values[None, :])
    return less + (equal + 1) / 2


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's correlation of two equally long sequences; ``nan`` when one is constant."""
    return float(weighted_pearson(np.asarray(x, dtype=float), np.asarray(y, dtype=float))[0])


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (Pearson's r of average ranks); ``nan`` when one side is constant."""
    return float(weighted_pearson(weighted_average_ranks(x), weighted_average_ranks(y))[0])


def resample_runs(n: int, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """``(resamples, n)`` run indices, each row ``n`` draws with replacement (NumPy's PCG64 under ``seed``)."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_correlations(
    x: np.ndarray,
    y: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = BOOTSTRAP_LEVEL,
) -> dict[str, BootstrapCorrelation]:
    """Pearson and Spearman correlation of ``x`` and ``y`` across runs, with percentile bootstrap intervals.

    The runs are resampled with replacement (:func:`resample_runs`); each resample's Pearson r
    and Spearman rho are computed on the drawn runs, those where a side is constant are
    dropped, and the interval is the central ``level`` of the rest (percentiles with linear
    interpolation, as :func:`numpy.quantile`).

    Args:
        x: one value per run (here: the headline CKNNA).
        y: the paired value per run (here: the task success rate).
        resamples: bootstrap resamples to draw.
        seed: seed of the resampling, so the interval is reproducible.
        level: coverage of the interval.

    Returns:
        ``{"pearson": ..., "spearman": ...}``.

    Raises:
        ValueError: fewer than 2 runs, lengths that differ, values that are not finite, or a side
            that is constant over all runs (no correlation is defined).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 2:
        raise ValueError(
            f"Need two equally long sequences of 2 or more values, got shapes {x.shape} and {y.shape}."
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("Every value must be finite to correlate them.")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        raise ValueError("One side has the same value for every run: no correlation is defined.")
    n = len(x)
    indices = resample_runs(n, resamples, seed)
    counts = np.bincount((indices + n * np.arange(resamples)[:, None]).ravel(), minlength=resamples * n)
    weights = counts.reshape(resamples, n).astype(float)
    kept = ~(_constant_in(x, weights > 0) | _constant_in(y, weights > 0))
    kept_weights = weights[kept]
    ranks_x, ranks_y = (weighted_average_ranks(values, kept_weights) for values in (x, y))
    statistics = {
        "pearson": (pearson(x, y), weighted_pearson(x, y, kept_weights)),
        "spearman": (spearman(x, y), weighted_pearson(ranks_x, ranks_y, kept_weights)),
    }
    tail = (1 - level) / 2
    results = {}
    for method, (value, samples) in statistics.items():
        low, high = (float(q) for q in np.quantile(samples, [tail, 1 - tail])) if kept.any() else (None, None)
        results[method] = BootstrapCorrelation(
            method, value, low, high, level, resamples, int((~kept).sum()), seed
        )
    return results
