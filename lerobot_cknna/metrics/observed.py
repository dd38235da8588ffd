"""The observed data that the permutation null and the jackknife read."""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from lerobot_cknna.metrics.alignment import DEFAULT_METRICS, self_hsic
from lerobot_cknna.metrics.knn import NeighborExclusion, NeighborGraph
from lerobot_cknna.metrics.neighbour_order import ORDER_METRICS


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
        metrics: the metrics to compute (cknna and mutual_knn always are).
    """

    a: torch.Tensor
    b: torch.Tensor
    graph_a: NeighborGraph
    graph_b: NeighborGraph
    ks: tuple[int, ...]
    exclusion: NeighborExclusion | None
    eps: float
    metrics: tuple[str, ...] = DEFAULT_METRICS

    @property
    def order_metrics(self) -> list[str]:
        """The selected metrics of :mod:`lerobot_cknna.metrics.neighbour_order`."""
        return [metric for metric in self.metrics if metric in ORDER_METRICS]

    @cached_property
    def self_terms(self) -> tuple[list[float], list[float]]:
        """CKNNA's ``kk`` and ``ll`` at every k (each graph's self-alignment; no pairing changes them)."""
        n = self.a.shape[0]
        return tuple(
            [self_hsic(graph.truncate(k), n) for k in self.ks] for graph in (self.graph_a, self.graph_b)
        )

    def empty_values(self, rows: int) -> dict[str, np.ndarray]:
        """NaN arrays (rows, len(ks)) for every metric, (rows, 1) for SVCCA, which has no k."""
        metrics = dict.fromkeys((*DEFAULT_METRICS, *self.metrics))
        return {
            metric: np.full((rows, 1 if metric == "svcca" else len(self.ks)), np.nan) for metric in metrics
        }
