"""The observed data that the permutation null and the jackknife read."""

from dataclasses import dataclass

import torch

from lerobot_cknna.metrics.knn import NeighborExclusion, NeighborGraph


@dataclass(frozen=True)
class Observed:
    """Both feature sets of the same samples, their neighbour graphs and the scoring options.

    Attributes:
        a: feat A, (N, d_a).
        b: feat B, (N, d_b).
        graph_a: feat A's graph, at least ``max(ks)`` neighbours (more spare searches).
        graph_b: feat B's graph, likewise.
        ks: ascending neighbourhood sizes.
        exclusion: the neighbour exclusion, or ``None``.
        eps: denominator constant of CKNNA.
    """

    a: torch.Tensor
    b: torch.Tensor
    graph_a: NeighborGraph
    graph_b: NeighborGraph
    ks: tuple[int, ...]
    exclusion: NeighborExclusion | None
    eps: float
