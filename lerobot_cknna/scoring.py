"""From saved features to ``cknna.json``: prep, metrics, nulls, intervals, warnings.

``cknna.json`` (schema_version 1) holds:

* ``source``: where the features came from (policy, hook, weights provenance, data), as
  given by the command that gathered them;
* ``n``, ``n_episodes``, ``feat_a_dim``, ``feat_b_dim``;
* ``feature_prep`` (per side), ``exclusion``, ``eps``, ``k``;
* ``headline``: ``cknna`` and ``mutual_knn`` at ``k``, each with ``value``, the HSIC
  terms, ``null`` (samples, mean, std, p_value, calibrated, z) and ``interval``;
* ``k_sweep``: the same per k;
* ``warnings``: everything a reader must know before trusting the numbers.
"""

import json
import logging
from pathlib import Path

import torch

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.features_io import SavedFeatures, write_atomic
from lerobot_cknna.statistics import assess

SCHEMA_VERSION = 1
RESULTS_FILE = "cknna.json"


def usable_ks(cfg: CKNNAConfig, n: int) -> tuple[list[int], list[str]]:
    """The headline k and the sweep values that fit N samples, and a warning per dropped value."""
    if cfg.k > n - 1:
        raise ValueError(
            f"--cknna.k={cfg.k} needs more than {cfg.k} samples but only {n} were gathered. "
            "Gather more (more episodes or frames) or lower --cknna.k."
        )
    ks = sorted({cfg.k, *(k for k in cfg.k_sweep if 2 <= k <= n - 1)})
    dropped = sorted(set(cfg.k_sweep) - set(ks))
    notes = (
        [f"k values {dropped} dropped from the sweep: they need more than {n} samples."] if dropped else []
    )
    return ks, notes


def score_features(features: SavedFeatures, cfg: CKNNAConfig, source: dict | None = None) -> dict:
    """Compute every metric ``cfg`` asks for on ``features``; returns the ``cknna.json`` record."""
    n = features.feat_a.shape[0]
    ks, notes = usable_ks(cfg, n)
    feat_a = cfg.feature_prep_a(features.feat_a.double())
    feat_b = cfg.feature_prep_b(features.feat_b.double())
    exclusion = cfg.exclusion(features.episode_index, features.frame_index)
    logging.info(f"Scoring N={n} samples at k={ks} ({cfg.n_permutations} permutations)")
    assessed = assess(
        feat_a,
        feat_b,
        ks=tuple(ks),
        episode_index=features.episode_index,
        frame_index=features.frame_index,
        exclusion=exclusion,
        n_permutations=cfg.n_permutations,
        null_unit=cfg.null_unit,
        interval_level=cfg.interval_level,
        eps=cfg.eps,
        seed=cfg.seed,
    )
    sweep = {metric: [item.to_dict() for item in items] for metric, items in assessed.items()}
    headline = {metric: next(r for r in records if r["k"] == cfg.k) for metric, records in sweep.items()}
    warnings = list(dict.fromkeys(notes + [w for record in headline.values() for w in record["warnings"]]))
    return {
        "schema_version": SCHEMA_VERSION,
        "source": source or {},
        "n": n,
        "n_episodes": int(torch.unique(features.episode_index).numel()),
        "feat_a_dim": features.feat_a.shape[1],
        "feat_b_dim": features.feat_b.shape[1],
        "feature_prep": {"feat_a": cfg.feature_prep_a.describe(), "feat_b": cfg.feature_prep_b.describe()},
        "exclusion": None if exclusion is None else exclusion.describe(),
        "eps": cfg.eps,
        "k": cfg.k,
        "headline": headline,
        "k_sweep": sweep,
        "warnings": warnings,
    }


def write_results(directory: Path, record: dict) -> Path:
    """Write ``cknna.json`` atomically into ``directory``."""
    path = Path(directory) / RESULTS_FILE
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(record, indent=2, allow_nan=False)))
    return path


def summary_lines(record: dict) -> list[str]:
    """A few lines a person reads first: value, uncertainty, null, sample size."""
    lines = [
        f"N={record['n']} samples in {record['n_episodes']} episodes, k={record['k']}, "
        f"prep A={record['feature_prep']['feat_a']}, B={record['feature_prep']['feat_b']}"
    ]
    for metric, result in record["headline"].items():
        text = f"  {metric:<10} = {result['value']:.4f}"
        if result["interval"]:
            text += f"  [{result['interval']['low']:.4f}, {result['interval']['high']:.4f}]"
            text += f" ({100 * result['interval']['level']:.0f}% jackknife over episodes)"
        if result["null"]:
            null = result["null"]
            text += f"  null {null['mean']:.4f} +/- {null['std']:.4f}, p={null['p_value']:.3g}"
            text += f", calibrated {null['calibrated']:.3f}"
        lines.append(text)
    lines += [f"  warning: {note}" for note in record["warnings"]]
    return lines
