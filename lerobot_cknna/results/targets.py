"""What feat A is compared with: the state now, the state h steps later, or a stretch of trajectory.

Feat A of a sample (episode ``e``, frame ``t``) is always the policy's embedding at ``t``. Its
partner, feat B, is built from the states saved with the run:

* ``--cknna.target=state`` (default): the state at ``t``, as gathered;
* ``--cknna.target=trajectory --cknna.window=W``: the states at ``t, t+1, ..., t+W`` stacked
  into one ``(W+1)·S`` vector, so two samples are neighbours when their next ``W`` steps move
  alike. It is a simple trajectory kernel in the spirit of S²'s motor kernel, which ranks
  future trajectories by a DTW distance instead of a Euclidean one on the stacked states;
* a horizon ``h`` (``--cknna.horizons``, :mod:`lerobot_cknna.results.horizons`) shifts either
  target ``h`` steps ahead: the state at ``t+h``, or the states ``t+h, ..., t+h+W``.

"``h`` steps later" means frame ``t + h`` of the same episode. ``frame_index`` counts dataset
frames (replay) or environment steps (simulation), so a step is the same length whatever was
sampled. A sample whose episode has no saved sample at a frame the target needs has no partner:
the episode ended first, or the run skipped that frame (replay with ``--cknna.max_samples``
keeps evenly spaced frames). Such samples are dropped and counted, never paired with the
nearest saved frame, which would mix horizons. Under a fixed stride ``s`` only horizons (and
windows) that are multiples of ``s`` keep samples. For example::

    samples = build_target(features, CKNNAConfig(target="trajectory", window=4), horizon=5)
    samples.features.feat_b  # (N', 5·S): the states at t+5 ... t+9 of each kept sample
    samples.n_dropped        # how many samples had no state at one of those frames
"""

from dataclasses import dataclass

import torch

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.features_io import SavedFeatures


def frames_ahead(features: SavedFeatures, offset: int) -> torch.Tensor:
    """For each sample, the row of the sample ``offset`` frames later in the same episode; -1 where none.

    Raises:
        ValueError: two samples share an episode and a frame, so "the sample at frame t" is ambiguous.
    """
    episode, frame = features.episode_index.long(), features.frame_index.long()
    span = int(frame.max()) + abs(offset) + 1
    keys = episode * span + frame
    sorted_keys, order = keys.sort()
    if len(sorted_keys) > 1 and bool((sorted_keys[1:] == sorted_keys[:-1]).any()):
        raise ValueError(
            "Some samples share an episode and a frame, so a frame's later states are ambiguous; "
            "score targets other than --cknna.target=state only on runs whose (episode, frame) pairs are unique."
        )
    wanted = keys + offset
    position = torch.searchsorted(sorted_keys, wanted).clamp(max=len(sorted_keys) - 1)
    found = (sorted_keys[position] == wanted) & (frame + offset >= 0)
    return torch.where(found, order[position], torch.full_like(position, -1))


def stacked_states(features: SavedFeatures, offsets: list[int]) -> tuple[SavedFeatures, int]:
    """The samples that have a state at every offset, with feat B their states there, concatenated.

    Args:
        features: the samples as gathered.
        offsets: frame offsets, in the order their states are stacked (``[0]`` is feat B itself).

    Returns:
        The kept samples (feat A, episode, frame and labels unchanged; feat B of width
        ``len(offsets)·S``) and the number dropped.
    """
    rows = torch.stack([frames_ahead(features, offset) for offset in offsets], dim=1)
    kept = (rows >= 0).all(dim=1)
    selected = features.select(kept)
    selected.feat_b = features.feat_b[rows[kept]].flatten(1)
    return selected, int((~kept).sum())


def target_offsets(target: str, window: int | None, horizon: int = 0) -> list[int]:
    """The frame offsets whose states make feat B: ``[h]`` for the state, ``[h, ..., h+W]`` for a trajectory."""
    if target == "trajectory":
        return list(range(horizon, horizon + window + 1))
    return [horizon]


def describe_target(target: str, window: int | None, horizon: int = 0) -> str:
    """Feat B in words, e.g. ``state at t+5`` or ``states t..t+4 stacked (trajectory, W=4)``."""

    def at(offset: int) -> str:
        return f"t+{offset}" if offset else "t"

    if target == "trajectory":
        return f"states {at(horizon)}..{at(horizon + window)} stacked (trajectory, W={window})"
    return f"state at {at(horizon)}"


@dataclass
class TargetSamples:
    """The samples a target keeps, with feat B replaced by the target, and what it cost."""

    features: SavedFeatures
    n_dropped: int
    description: str


def build_target(features: SavedFeatures, cfg: CKNNAConfig, horizon: int = 0) -> TargetSamples:
    """Feat B as ``cfg.target`` and ``cfg.window`` ask, ``horizon`` steps ahead.

    Args:
        features: the samples as gathered.
        cfg: the ``--cknna.*`` options.
        horizon: how many frames ahead the target starts.
    """
    offsets = target_offsets(cfg.target, cfg.window, horizon)
    if offsets == [0]:
        return TargetSamples(features, 0, describe_target(cfg.target, cfg.window))
    selected, n_dropped = stacked_states(features, offsets)
    return TargetSamples(selected, n_dropped, describe_target(cfg.target, cfg.window, horizon))
