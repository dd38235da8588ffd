"""``layers.json``: CKNNA and mutual kNN at every layer along the path to the hooked module.

Each layer is scored like the headline (:mod:`lerobot_cknna.results.scoring`): the same feat B
(``--cknna.target``) and samples (``--cknna.sampling``), feature prep, neighbour exclusion, k,
permutation null (``--cknna.n_permutations`` draws, the same seed) and jackknife interval, at
the headline k only (no scores over k, no breakdowns). Every layer's null draws the same
pairings in the same order (the same seed over the same episodes), so the ``j``-th null samples
of all layers come from one pairing. ``layers.json`` holds:

* ``schema_version``, ``source`` (as in ``cknna.json``), ``n``, ``n_episodes``, ``k``,
  ``feature_prep``, ``exclusion``, ``eps``, ``n_permutations``, ``interval_level``, ``alpha``;
* ``main_hook_index``: the depth of the hooked module (feat A), the last layer;
* ``layers``: one record per layer, shallow to deep: ``index`` (depth), ``depth`` (relative,
  0 to 1), ``path``, ``read`` (``output``, or ``input`` for the residual stream entering a
  decoder layer), ``feat_dim``, ``main_hook``, and ``cknna`` and ``mutual_knn`` records as in
  ``cknna.json``'s ``headline``;
* ``max_over_layers``: per metric, the best layer as ``calibrate_layers(agg="max")`` of
  ``calibrated_similarity`` finds it (``None`` without a null): ``value`` (the highest over the
  layers), ``layer``, ``depth`` and ``path`` (where it is) and ``null``, whose ``j``-th sample is the highest
  of the layers' ``j``-th samples, with ``threshold``, ``calibrated`` and ``p_value`` of the
  maximum against it (:func:`lerobot_cknna.metrics.calibration.calibrate_max`). Picking the highest
  of many layers inflates a per-layer score; the null of the maximum accounts for the picking.

The last layer is feat A itself, so its values equal the headline's. Schema 2 added ``alpha`` and
``max_over_layers``, and the null fields of ``cknna.json`` schema 3.
"""

import numpy as np

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.metrics.calibration import calibrate_max
from lerobot_cknna.metrics.jackknife import METRICS
from lerobot_cknna.results.feature_sets import score_sets
from lerobot_cknna.results.layer_features import LayerFeatures

LAYERS_SCHEMA_VERSION = 2
LAYERS_FILE = "layers.json"


def null_in_draw_order(null: dict) -> np.ndarray:
    """(draws,) a null record's samples in draw order, NaN at the draws it left out (undefined)."""
    draws = np.full(len(null["samples"]) + len(null["left_out"]), np.nan)
    kept = np.ones(len(draws), dtype=bool)
    kept[null["left_out"]] = False
    draws[kept] = null["samples"]
    return draws


def max_over_layers(records: list[dict], metric: str, alpha: float) -> dict | None:
    """The highest ``metric`` over the layer records, calibrated against the null of the highest.

    Args:
        records: the ``layers`` records, whose nulls drew the same pairings in the same order.
        metric: ``cknna`` or ``mutual_knn``.
        alpha: level of the threshold.

    Returns:
        ``{"value", "layer", "depth", "path", "null": {"samples", "left_out", "alpha", "threshold",
        "calibrated", "p_value"}}``, or ``None`` when the layers have no null. A draw where the
        metric is undefined at some layer has no maximum and is left out.

    Raises:
        ValueError: the layers' nulls hold different numbers of draws (so not the same pairings).
    """
    nulls = [record[metric]["null"] for record in records]
    if any(null is None for null in nulls):
        return None
    draws = [null_in_draw_order(null) for null in nulls]
    if len({len(layer_draws) for layer_draws in draws}) > 1:
        raise ValueError(
            f"The layers' {metric} nulls have different numbers of draws ({[len(d) for d in draws]}); "
            "they did not use the same pairings, so their maximum is no null. Score the layers again."
        )
    draws = np.stack(draws, axis=1)
    defined = np.isfinite(draws).all(axis=1)
    values = np.array([record[metric]["value"] for record in records])
    best, null_of_max, calibration = calibrate_max(values, draws[defined], alpha)
    return {
        "value": float(values[best]),
        "layer": records[best]["index"],
        "depth": records[best]["depth"],
        "path": records[best]["path"],
        "null": {
            "samples": null_of_max.tolist(),
            "left_out": np.flatnonzero(~defined).tolist(),
            "alpha": alpha,
            **calibration.to_dict(),
        },
    }


def score_layers(layers: list[LayerFeatures], cfg: CKNNAConfig, source: dict | None = None) -> dict:
    """CKNNA and mutual kNN at ``cfg.k`` for every layer of the sweep; returns the ``layers.json`` record.

    Args:
        layers: the sweep, shallow to deep, the hooked module last.
        cfg: the ``--cknna.*`` options, as for the headline.
        source: where the features came from, recorded as given.

    Raises:
        ValueError: the layers hold different samples, or ``cfg.k`` does not fit them.
    """
    labels = [
        f"layer {layer.index} of {len(layers) - 1} ({layer.tap.path}, {layer.tap.read})" for layer in layers
    ]
    shared, scored = score_sets([layer.features for layer in layers], labels, cfg, source)
    records = [
        {
            "index": layer.index,
            "depth": layer.index / max(len(layers) - 1, 1),
            "path": layer.tap.path,
            "read": layer.tap.read,
            "feat_dim": layer.features.feat_a.shape[1],
            "main_hook": layer.index == len(layers) - 1,
            **metrics,
        }
        for layer, metrics in zip(layers, scored, strict=True)
    ]
    return {
        "schema_version": LAYERS_SCHEMA_VERSION,
        **shared,
        "main_hook_index": len(layers) - 1,
        "layers": records,
        "max_over_layers": {metric: max_over_layers(records, metric, cfg.alpha) for metric in METRICS},
    }
