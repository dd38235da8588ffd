"""platonic-rep's other neighbour metrics, at every k of a sweep from one pair of neighbour graphs.

Each sample ``i`` has an ordered neighbour list in feat A and one in feat B (nearest first,
equal similarities by lower index; see :class:`lerobot_cknna.metrics.knn.NeighborGraph`).
With ``A_k(i)`` and ``B_k(i)`` the first ``k`` entries:

* ``cycle_knn``: the share of samples ``i`` that come back to themselves through a
  neighbour, ``i in A_k(j)`` for some ``j in B_k(i)`` (feat B first, then feat A);
* ``lcs_knn``: the mean length of the longest common subsequence of ``A_k(i)`` and
  ``B_k(i)``, divided by ``k`` (platonic-rep reports the length itself, k times this);
* ``edit_distance_knn``: ``1 - mean Levenshtein(A_k(i), B_k(i)) / k`` (insertions,
  deletions and substitutions cost 1), as platonic-rep reports it.

The longest common subsequence and the edit distance of the first ``k`` entries are the
``(k, k)`` cells of one dynamic-programming table over the whole lists, so a single pass of
``max(ks)`` vectorized row updates gives every k of the sweep.
"""

import numpy as np
import torch

from lerobot_cknna.metrics.knn import NeighborGraph
from lerobot_cknna.metrics.rank_terms import RankedGraph

ORDER_METRICS = ("cycle_knn", "lcs_knn", "edit_distance_knn")


def cycle_knn_values(graph_a: NeighborGraph, graph_b: NeighborGraph, ks: tuple[int, ...]) -> np.ndarray:
    """``cycle_knn`` at every k of ``ks`` (ascending, at most both graphs' length).

    A cycle through the B-neighbour ``j`` closes at ``k`` exactly when both its steps rank
    below ``k``: ``max(rank of j in B(i), rank of i in A(j)) < k``. The smallest such
    rank over a row's B-neighbours decides every k at once.
    """
    k_max = max(ks)
    graph_b = graph_b.truncate(k_max)
    n = graph_b.indices.shape[0]
    rows = torch.arange(n, device=graph_b.indices.device).repeat_interleave(k_max)
    cols = graph_b.indices.flatten()
    back_rank = RankedGraph.build(graph_a.truncate(k_max)).rank_of(cols, rows)
    step_rank = torch.arange(k_max, device=rows.device).repeat(n)
    closing_rank = torch.maximum(back_rank, step_rank).view(n, k_max).amin(dim=1)
    return np.array([float((closing_rank < k).double().mean()) for k in ks])


def _prefix_tables(first: torch.Tensor, second: torch.Tensor, ks: tuple[int, ...], edit: bool) -> np.ndarray:
    """Per row, the LCS length (or edit distance) of the first ``k`` entries of both lists, for each k.

    Row ``r`` of the table holds the values for ``first[:, :r]`` against every prefix of
    ``second``. With ``t`` the best of "take ``second[j]`` as a match or substitution" and
    "drop ``first[r]``", the "drop ``second[j]``" moves are a running max (LCS) or, after
    subtracting their cost ``j``, a running min (edit distance) along the row.

    Returns:
        (N, len(ks)) float64.
    """
    n, k_max = first.shape
    columns = torch.arange(k_max + 1, device=first.device)
    previous = (
        columns.expand(n, -1).clone()
        if edit
        else torch.zeros(n, k_max + 1, dtype=torch.long, device=first.device)
    )
    out = torch.empty(n, len(ks), dtype=torch.float64, device=first.device)
    wanted = {k: col for col, k in enumerate(ks)}
    for r in range(1, k_max + 1):
        same = (first[:, r - 1, None] == second).long()
        if edit:
            start = torch.full((n, 1), r, dtype=torch.long, device=first.device)
            take = torch.minimum(previous[:, 1:] + 1, previous[:, :-1] + 1 - same)
            current = torch.cat([start, take], dim=1) - columns
            current = current.cummin(dim=1).values + columns
        else:
            take = torch.maximum(previous[:, 1:], previous[:, :-1] + same)
            current = torch.cat([previous[:, :1], take], dim=1).cummax(dim=1).values
        if r in wanted:
            out[:, wanted[r]] = current[:, r].double()
        previous = current
    return out.cpu().numpy()


def lcs_knn_values(graph_a: NeighborGraph, graph_b: NeighborGraph, ks: tuple[int, ...]) -> np.ndarray:
    """``lcs_knn`` (mean LCS length over k) at every k of ``ks``."""
    k_max = max(ks)
    lengths = _prefix_tables(graph_a.indices[:, :k_max], graph_b.indices[:, :k_max], ks, edit=False)
    return lengths.mean(axis=0) / np.asarray(ks)


def edit_distance_knn_values(
    graph_a: NeighborGraph, graph_b: NeighborGraph, ks: tuple[int, ...]
) -> np.ndarray:
    """``edit_distance_knn`` (one minus the mean edit distance over k) at every k of ``ks``."""
    k_max = max(ks)
    distances = _prefix_tables(graph_a.indices[:, :k_max], graph_b.indices[:, :k_max], ks, edit=True)
    return 1 - distances.mean(axis=0) / np.asarray(ks)


ORDER_METRIC_VALUES = {
    "cycle_knn": cycle_knn_values,
    "lcs_knn": lcs_knn_values,
    "edit_distance_knn": edit_distance_knn_values,
}
