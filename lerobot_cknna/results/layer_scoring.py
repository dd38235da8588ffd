"""``layers.json``: CKNNA and mutual kNN at every layer along the path to the hooked module.

Each layer is scored like the headline (:mod:`lerobot_cknna.results.scoring`): the same feat B
(``--cknna.target``) and samples (``--cknna.sampling``), feature prep, neighbour exclusion, k, permutation null (``--cknna.n_permutations`` draws, the same seed) and
jackknife interval, at the headline k only (no scores over k, no breakdowns). ``layers.json`` holds:

* ``schema_version``, ``source`` (as in ``cknna.json``), ``n``, ``n_episodes``, ``k``,
  ``feature_prep``, ``exclusion``, ``eps``, ``n_permutations``, ``interval_level``;
* ``main_hook_index``: the depth of the hooked module (feat A), the last layer;
* ``layers``: one record per layer, shallow to deep: ``index`` (depth), ``depth`` (relative,
  0 to 1), ``path``, ``read`` (``output``, or ``input`` for the residual stream entering a
  decoder layer), ``feat_dim``, ``main_hook``, and ``cknna`` and ``mutual_knn`` records as in
  ``cknna.json``'s ``headline``.

The last layer is feat A itself, so its values equal the headline's.
"""

import logging

import torch

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.layer_features import LayerFeatures
from lerobot_cknna.results.scoring import assess_records, neighbour_limit, samples_to_score, usable_ks

LAYERS_SCHEMA_VERSION = 1
LAYERS_FILE = "layers.json"


def _check_same_samples(layers: list[LayerFeatures]) -> None:
    first = layers[0].features
    for layer in layers[1:]:
        if not (
            torch.equal(layer.features.episode_index, first.episode_index)
            and torch.equal(layer.features.frame_index, first.frame_index)
        ):
            raise ValueError(
                f"Layer {layer.index} ({layer.tap.path}) holds other samples than layer 0; the layer taps "
                "was not gathered in one pass (a run killed between two flushes?). Run it again."
            )


def score_layers(layers: list[LayerFeatures], cfg: CKNNAConfig, source: dict | None = None) -> dict:
    """CKNNA and mutual kNN at ``cfg.k`` for every layer of the sweep; returns the ``layers.json`` record.

    Args:
        layers: the sweep, shallow to deep, the hooked module last.
        cfg: the ``--cknna.*`` options, as for the headline.
        source: where the features came from, recorded as given.

    Raises:
        ValueError: the layers hold different samples, or ``cfg.k`` does not fit them.
    """
    _check_same_samples(layers)
    samples = [samples_to_score(layer.features, cfg).features for layer in layers]
    first = samples[0]
    n = first.feat_a.shape[0]
    exclusion = cfg.exclusion(first.episode_index, first.frame_index)
    usable_ks(cfg, n, neighbour_limit(first, exclusion, cfg.interval_level is not None))
    records = []
    for layer, features in zip(layers, samples, strict=True):
        logging.info(f"Scoring layer {layer.index} of {len(layers) - 1}: {layer.tap.path} ({layer.tap.read})")
        assessed = assess_records(features, cfg, [cfg.k], exclusion, cfg.n_permutations, cfg.interval_level)
        records.append(
            {
                "index": layer.index,
                "depth": layer.index / max(len(layers) - 1, 1),
                "path": layer.tap.path,
                "read": layer.tap.read,
                "feat_dim": layer.features.feat_a.shape[1],
                "main_hook": layer.index == len(layers) - 1,
                **{metric: result for metric, (result,) in assessed.items()},
            }
        )
    return {
        "schema_version": LAYERS_SCHEMA_VERSION,
        "source": source or {},
        "n": n,
        "n_episodes": int(torch.unique(first.episode_index).numel()),
        "k": cfg.k,
        "feature_prep": {"feat_a": cfg.feature_prep_a.describe(), "feat_b": cfg.feature_prep_b.describe()},
        "exclusion": None if exclusion is None else exclusion.describe(),
        "eps": cfg.eps,
        "n_permutations": cfg.n_permutations,
        "interval_level": cfg.interval_level,
        "main_hook_index": len(layers) - 1,
        "layers": records,
    }
