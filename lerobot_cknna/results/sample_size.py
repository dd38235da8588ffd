"""CKNNA against the number of samples N, on nested subsets of whole episodes.

CKNNA is not a property of a policy alone: with k fixed, more samples put the k nearest
neighbours closer, and the same model scores 0.117 at N=5,000 and 0.240 at N=50,000 in the
starVLA study. ``--cknna.n_curve=[500,1000,2000]`` scores the run's samples (after
``--cknna.target`` and ``--cknna.sampling``) on nested subsets of whole episodes
(:func:`~lerobot_cknna.results.sampling.nested_episode_rows`: one shuffle under
``--cknna.seed``, each subset the shortest prefix of episodes holding at least N samples). Each
point is scored as a run of its own, with its null, calibrated score and interval, so the
curve shows whether the number has settled at the run's N and what N a comparison needs.
"""

import logging

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.features_io import SavedFeatures
from lerobot_cknna.results.sampling import nested_episode_rows
from lerobot_cknna.results.scoring import score_subset


def score_n_curve(features: SavedFeatures, cfg: CKNNAConfig) -> list[dict]:
    """CKNNA and mutual kNN at ``cfg.k`` on nested episode subsets of ``features``, smallest first.

    Args:
        features: the samples the headline scored.
        cfg: the options, with ``n_curve``.

    Returns:
        One record per size: ``{"n_requested"}`` and the fields of
        :func:`~lerobot_cknna.results.scoring.score_subset` (``n`` is the subset's actual size,
        at least ``n_requested`` since episodes are kept whole).
    """
    sizes = sorted(cfg.n_curve)
    points = []
    for size, rows in zip(sizes, nested_episode_rows(features.episode_index, sizes, cfg.seed), strict=True):
        subset = features.select(rows)
        logging.info(f"Scoring a nested subset of N={len(rows)} samples (asked for {size})")
        exclusion = cfg.exclusion(subset.episode_index, subset.frame_index)
        points.append({"n_requested": size} | score_subset(subset, cfg, exclusion))
    return points
