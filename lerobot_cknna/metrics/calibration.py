"""A score read against its permutation null: threshold, calibrated score and p-value.

The definitions are those of ``calibrated_similarity.calibrate`` (Gröger et al., PyPI
``calibrated-similarity``), so the numbers can be checked against it. With the observed value
``s`` and ``K`` null samples:

* ``threshold`` ``tau``: the ``ceil((1 - alpha)(K + 1))``-th smallest of the ``K + 1`` values
  (the observed value counts as one of them, as the pairing it comes from is one of the pairings);
* ``calibrated``: ``clamp((s - tau) / (1 - tau), 0, 1)``, 0 for every score a null pairing would
  reach with probability ``alpha``, 1 for identical neighbourhoods; the denominator is at least
  ``1e-12`` so that a null that reaches 1 gives 0;
* ``p_value``: ``(1 + #{null >= s}) / (K + 1)``, never 0.

:func:`calibrate_max` reads the best of several scores (the best layer) against the null of the
best: its ``k``-th sample is the maximum of the ``k``-th samples, which is only a null of the
maximum when every score's ``k``-th sample comes from the same pairing
(``calibrate_layers(agg="max")``).
"""

import math
from dataclasses import asdict, dataclass

import numpy as np

# calibrated_similarity's floor on 1 - tau.
DENOMINATOR_FLOOR = 1e-12


@dataclass(frozen=True)
class Calibration:
    """Where a score stands against its null at level ``alpha``.

    Attributes:
        threshold: ``tau``, the ``(1 - alpha)`` order statistic of the observed value and the null.
        calibrated: ``clamp((value - tau) / (1 - tau), 0, 1)``.
        p_value: ``(1 + #{null >= value}) / (K + 1)``.
    """

    threshold: float
    calibrated: float
    p_value: float

    def to_dict(self) -> dict:
        return asdict(self)


def calibrate(value: float, null: np.ndarray, alpha: float) -> Calibration:
    """Threshold, calibrated score and p-value of ``value`` against the ``K`` samples ``null``.

    Args:
        value: the observed score.
        null: (K,) the score under K permuted pairings, the observed pairing not among them.
        alpha: level of the threshold, in (0, 1).

    Raises:
        ValueError: ``alpha`` outside (0, 1), or an empty null.

    Example:
        >>> import numpy as np
        >>> c = calibrate(0.5, np.array([0.1, 0.2, 0.3, 0.6]), alpha=0.2)
        >>> round(c.threshold, 3), round(c.calibrated, 3), c.p_value
        (0.5, 0.0, 0.4)
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}.")
    null = np.asarray(null, dtype=np.float64)
    if null.size == 0:
        raise ValueError("A calibration needs at least one null sample.")
    n_null = len(null)
    order = min(max(math.ceil((1 - alpha) * (n_null + 1)), 1), n_null + 1)
    threshold = float(np.sort(np.append(null, value))[order - 1])
    calibrated = min(max((value - threshold) / max(1 - threshold, DENOMINATOR_FLOOR), 0.0), 1.0)
    p_value = (1 + int((null >= value).sum())) / (n_null + 1)
    return Calibration(threshold, calibrated, p_value)


def calibrate_max(values: np.ndarray, nulls: np.ndarray, alpha: float) -> tuple[int, np.ndarray, Calibration]:
    """The largest of several scores, calibrated against the null of the largest.

    Args:
        values: (L,) the observed scores (e.g. one per layer).
        nulls: (K, L) the scores under K pairings; row ``k`` must hold every score under the
            same pairing.
        alpha: level of the threshold.

    Returns:
        Which score is the largest (the first on ties), the null of the maximum (row maxima) and
        the calibration of the maximum against it.
    """
    best = int(np.argmax(values))
    null_of_max = np.asarray(nulls, dtype=np.float64).max(axis=1)
    return best, null_of_max, calibrate(float(values[best]), null_of_max, alpha)
