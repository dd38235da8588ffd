"""The metrics on data made here, so the whole pipeline after capture runs with nothing downloaded.

Two runs over the same synthetic LIBERO-shaped proprioceptive trajectories (8-D: end-effector
position, axis-angle, two gripper fingers; smooth, in episodes):

* ``aligned``: feat A is a fixed random 2-layer network of the state plus noise, i.e. an
  embedding that encodes the state;
* ``independent``: the same network applied to other, independent trajectories, equally
  smooth but unrelated to the state.

The first should be clearly above its episode-permutation null, the second inside it.
These are synthetic features, not a policy's: the point is to show what the numbers,
nulls and intervals look like, not to say anything about a model.
"""

import argparse
import logging
from pathlib import Path

import torch
from lerobot.utils.utils import init_logging

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.features_io import SavedFeatures, save_features
from lerobot_cknna.results.provenance import Weights
from lerobot_cknna.results.scoring import score_features, summary_lines, write_results
from lerobot_cknna.testing.synthetic import synthetic_runs
from lerobot_cknna.utils.io import default_run_dir


def main():
    """Make the demo data, score both runs, print where the results are."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output_root", type=Path, default=Path("outputs/cknna"))
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--length", type=int, default=60)
    args = parser.parse_args()
    init_logging()

    state, runs = synthetic_runs(args.episodes, args.length)
    episode = torch.arange(args.episodes).repeat_interleave(args.length)
    frame = torch.arange(args.length).repeat(args.episodes)
    cfg = CKNNAConfig(prep_b="standardize_l2")
    for name, feat_a in runs.items():
        run_dir = default_run_dir(f"demo_{name}", args.output_root)
        features = SavedFeatures(feat_a, state, episode, frame)
        save_features(run_dir, features)
        source = {
            "kind": "synthetic demo",
            "feat_a": f"random 2-layer network of the {'same' if name == 'aligned' else 'an independent'} state",
            "weights": Weights.RANDOM,
            "weights_note": "synthetic features, no policy",
        }
        record = score_features(features, cfg, source)
        path = write_results(run_dir, record)
        logging.info(f"--- {name}: {path}")
        for line in summary_lines(record):
            logging.info(line)
    logging.info(
        "These features are synthetic (random networks, no policy): they show how to read the numbers. "
        "Re-score a run with other options: lerobot-cknna-score DIR --cknna.k=20"
    )


if __name__ == "__main__":
    main()
