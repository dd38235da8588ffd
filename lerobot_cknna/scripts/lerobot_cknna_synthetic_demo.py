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
import datetime as dt
import logging
from pathlib import Path

import torch
from lerobot.utils.utils import init_logging

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.features_io import SavedFeatures, save_features
from lerobot_cknna.scoring import score_features, summary_lines, write_results


def synthetic_state(n_episodes: int, length: int, gen: torch.Generator) -> torch.Tensor:
    """(n_episodes * length, 8) smooth LIBERO-like proprioceptive trajectories."""
    velocity = torch.randn(n_episodes, length, 3, generator=gen).cumsum(dim=1) * 0.002
    position = torch.tensor([-0.2, 0.0, 1.1]) + velocity.cumsum(dim=1)
    rotation = (
        torch.tensor([3.1, 0.0, 0.0]) + torch.randn(n_episodes, length, 3, generator=gen).cumsum(dim=1) * 0.01
    )
    closes_at = torch.randint(length // 3, 2 * length // 3, (n_episodes, 1), generator=gen)
    opening = torch.where(torch.arange(length) < closes_at, 0.04, 0.01)[..., None]
    gripper = torch.cat([opening, -opening], dim=-1)
    return torch.cat([position, rotation, gripper], dim=-1).reshape(n_episodes * length, 8)


def embed(state: torch.Tensor, gen: torch.Generator, dim: int = 256) -> torch.Tensor:
    """A fixed random 2-layer tanh network of the standardized state, plus noise."""
    z = (state - state.mean(dim=0)) / state.std(dim=0).clamp_min(1e-6)
    hidden = torch.tanh(z @ torch.randn(8, 128, generator=gen))
    return hidden @ torch.randn(128, dim, generator=gen) + 2.0 * torch.randn(len(state), dim, generator=gen)


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

    gen = torch.Generator().manual_seed(0)
    state = synthetic_state(args.episodes, args.length, gen)
    episode = torch.arange(args.episodes).repeat_interleave(args.length)
    frame = torch.arange(args.length).repeat(args.episodes)
    network_seed = 1
    runs = {
        "aligned": embed(state, torch.Generator().manual_seed(network_seed)),
        "independent": embed(
            synthetic_state(args.episodes, args.length, gen), torch.Generator().manual_seed(network_seed)
        ),
    }
    now = dt.datetime.now()
    cfg = CKNNAConfig(prep_b="standardize_l2")
    for name, feat_a in runs.items():
        run_dir = args.output_root / f"{now:%Y-%m-%d}" / f"{now:%H-%M-%S}_demo_{name}"
        features = SavedFeatures(feat_a, state, episode, frame)
        save_features(run_dir, features)
        source = {
            "kind": "synthetic demo",
            "feat_a": f"random 2-layer network of the {'same' if name == 'aligned' else 'an independent'} state",
            "weights": "random (synthetic features, no policy)",
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
