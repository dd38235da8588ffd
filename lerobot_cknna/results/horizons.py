"""CKNNA over horizons: feat A at step t against the state (or trajectory) h steps later.

A policy's condition embedding exists to choose what happens next, so it may agree more with
where the robot is going than with where it is: the starVLA study finds CKNNA rising steadily
with h over h = 0..15, and S² reads its motor kernel at h = 7. ``--cknna.horizons=[0,5,10,15]``
scores, for each h, feat A at frame t against feat B built ``h`` frames later in the same
episode (:mod:`lerobot_cknna.results.targets` defines "later" precisely, and drops samples
without a state there). Each horizon is scored as a run of its own on the samples it keeps,
with the headline's options (its own permutation null and jackknife interval), so the values
along h differ by the pairing and by the samples that the later horizons lose at each episode's
end; ``n`` and ``n_dropped`` say how many.
"""

import logging

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.features_io import SavedFeatures
from lerobot_cknna.results.scoring import samples_to_score, score_subset


def score_horizons(features: SavedFeatures, cfg: CKNNAConfig) -> list[dict]:
    """CKNNA and mutual kNN at ``cfg.k`` for each of ``cfg.horizons``, in the order given.

    Returns:
        One record per horizon: ``{"horizon", "feat_b", "n_dropped"}`` (feat B in words, samples
        without it) and the fields of :func:`~lerobot_cknna.results.scoring.score_subset`
        (``n``, ``n_episodes``, ``skipped``, ``cknna``, ``mutual_knn``).
    """
    records = []
    for horizon in cfg.horizons:
        target = samples_to_score(features, cfg, horizon)
        samples = target.features
        record = {"horizon": horizon, "feat_b": target.description, "n_dropped": target.n_dropped}
        logging.info(f"Scoring feat B = {target.description} (N={len(samples.feat_a)})")
        if len(samples.feat_a):
            record |= score_subset(samples, cfg, cfg.exclusion(samples.episode_index, samples.frame_index))
        else:
            record |= {"n": 0, "n_episodes": 0, "cknna": None, "mutual_knn": None}
            record["skipped"] = f"no sample has its {target.description} in its episode"
        records.append(record)
    return records
