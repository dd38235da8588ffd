"""Which of a run's samples are scored: all frames, one frame per episode, or nested sets of episodes.

CKNNA moves with the number of samples N: with k fixed, a larger N packs the k nearest
neighbours closer together (the same model scores 0.117 at N=5,000 and 0.240 at N=50,000 in
the starVLA study). Two choices make that visible or remove it:

* ``--cknna.sampling=one_per_episode`` keeps one frame per episode, drawn at random under
  ``--cknna.seed``, as S² does (one observation per DROID episode). Consecutive frames of an
  episode are near-duplicates; with one frame each, N counts independent trajectories.
* ``--cknna.n_curve=[N1, N2, ...]`` scores nested subsets of whole episodes
  (:mod:`lerobot_cknna.results.sample_size`): the episodes are shuffled once under
  ``--cknna.seed`` and each subset is the shortest prefix holding at least ``N`` samples, so
  every smaller subset lies inside every larger one and the curve shows how the score grows
  with N rather than how one draw differs from another.
"""

import torch

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.features_io import SavedFeatures


def one_frame_per_episode(features: SavedFeatures, seed: int) -> SavedFeatures:
    """One sample of each episode, drawn uniformly at random with ``seed``, in episode order."""
    generator = torch.Generator().manual_seed(seed)
    shuffled = torch.randperm(len(features.episode_index), generator=generator)
    by_episode = shuffled[torch.argsort(features.episode_index[shuffled], stable=True)]
    episodes = features.episode_index[by_episode]
    first = torch.ones(len(episodes), dtype=torch.bool)
    first[1:] = episodes[1:] != episodes[:-1]
    return features.select(by_episode[first])


def apply_sampling(features: SavedFeatures, cfg: CKNNAConfig) -> SavedFeatures:
    """The samples ``--cknna.sampling`` keeps of ``features``."""
    if cfg.sampling == "one_per_episode":
        return one_frame_per_episode(features, cfg.seed)
    return features


def nested_episode_rows(episode_index: torch.Tensor, sizes: list[int], seed: int) -> list[torch.Tensor]:
    """For each size N, the rows of the shortest prefix of shuffled episodes holding at least N samples.

    Args:
        episode_index: each sample's episode.
        sizes: the Ns asked for.
        seed: seed of the one shuffle of the episodes that every subset shares.

    Returns:
        Row indices (sorted) per size, each set containing every smaller one.

    Raises:
        ValueError: a size exceeds the number of samples.
    """
    check_sizes(len(episode_index), sizes)
    episodes, episode_of = torch.unique(episode_index, return_inverse=True)
    generator = torch.Generator().manual_seed(seed)
    rank = torch.empty(len(episodes), dtype=torch.long)
    rank[torch.randperm(len(episodes), generator=generator)] = torch.arange(len(episodes))
    cumulative = torch.bincount(rank[episode_of], minlength=len(episodes)).cumsum(0)
    subsets = []
    for size in sizes:
        n_episodes = int(torch.searchsorted(cumulative, torch.tensor(size))) + 1
        subsets.append((rank[episode_of] < n_episodes).nonzero()[:, 0])
    return subsets


def check_sizes(n: int, sizes: list[int]) -> None:
    """Raise a ValueError naming what to do when a size of ``--cknna.n_curve`` exceeds the ``n`` samples."""
    too_large = [size for size in sizes if size > n]
    if too_large:
        raise ValueError(
            f"--cknna.n_curve asks for N={too_large} but only {n} samples are scored (after the target "
            "and sampling); drop those sizes or gather more episodes."
        )
