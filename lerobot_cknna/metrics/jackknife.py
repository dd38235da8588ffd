"""Delete-a-group jackknife estimates from the full graphs, without a search per left-out group.

Leaving out a group of episodes re-indexes the kept samples in their old order, and the
neighbour exclusion is a rule on pairs of samples, so a kept sample's neighbours in the
subset are its neighbours in the full data with the left-out samples struck out, in the
same order (ties by lower index stay ties by lower index). Built with more than ``max(ks)``
neighbours, the full lists answer every kept sample that keeps at least ``max(ks)`` of
them; the others are searched in the subset (:func:`lerobot_cknna.metrics.knn.knn_rows`).

When every kept sample keeps enough, nothing is searched or sorted: a full-list entry is
in the subset's graph when it survives among the first ``max(ks)`` of its row, its rank
there is the number of survivors before it, and the reverse pair and the other graph's
pair are found through positions looked up once in the full lists.

The extra neighbour metrics (:mod:`lerobot_cknna.metrics.neighbour_order`) need the ordered
lists of the subset, which :func:`_subset_graph` builds; SVCCA is recomputed on the subset.
"""

from dataclasses import dataclass

import numpy as np
import torch

from lerobot_cknna.metrics.alignment import HSICTerms, cknna_from_terms
from lerobot_cknna.metrics.knn import (
    NeighborExclusion,
    NeighborGraph,
    admissible_counts,
    check_admissible,
    knn_rows,
)
from lerobot_cknna.metrics.neighbour_order import ORDER_METRIC_VALUES
from lerobot_cknna.metrics.observed import Observed
from lerobot_cknna.metrics.rank_terms import RankedGraph, cross_terms, hsic_by_rank, self_terms, shared_counts
from lerobot_cknna.metrics.svcca import SVCCA_COMPONENTS, PrincipalSide, mean_correlation

METRICS = ("cknna", "mutual_knn")


def jackknife_groups(episodes: list[torch.Tensor], max_groups: int) -> list[torch.Tensor]:
    """The rows of each left-out group: at most ``max_groups`` groups, episodes dealt round-robin."""
    n_groups = min(len(episodes), max_groups)
    return [torch.cat(episodes[g::n_groups]) for g in range(n_groups)]


def _subset_graph(
    feats: torch.Tensor,
    graph: NeighborGraph,
    kept: torch.Tensor,
    k: int,
    exclusion: NeighborExclusion | None,
) -> NeighborGraph:
    """``knn_graph(feats[rows], k, exclusion)`` for the kept ``rows``, from the full ``graph``."""
    rows = kept.nonzero()[:, 0]
    new_index = kept.cumsum(dim=0) - 1
    lists = graph.indices[rows]
    stays = kept[lists]
    # A stable sort of "left out" puts the neighbours that stay first, in their order.
    first = torch.argsort((~stays).to(torch.uint8), dim=1, stable=True)[:, :k]
    indices = new_index[lists.gather(1, first)]
    similarities = graph.similarities[rows].gather(1, first)
    short = (stays.sum(dim=1) < k).nonzero()[:, 0]
    if len(short):
        searched = knn_rows(feats[rows], short, k, exclusion)
        indices[short], similarities[short] = searched.indices, searched.similarities
    return NeighborGraph(indices, similarities)


@dataclass(frozen=True)
class _FullLists:
    """One graph's full lists, flat (row ``i`` from ``i * k``), and each pair's position in the other graph.

    Only what the left-out groups read: the rows (the flat index over ``k``) and the look-ups of
    :class:`RankedGraph` (sorted keys, bucket table) are not kept, half its memory.
    """

    k: int
    cols: torch.Tensor
    similarities: torch.Tensor
    reverse_rank: torch.Tensor
    position_in_other: torch.Tensor | None = None

    @classmethod
    def of(cls, ranked: RankedGraph, position_in_other: torch.Tensor | None = None) -> "_FullLists":
        return cls(ranked.k, ranked.cols, ranked.similarities, ranked.reverse_rank, position_in_other)


@dataclass(frozen=True)
class _Survivors:
    """Which entries of a graph's full lists make the subset's graph, and their rank there."""

    inside: torch.Tensor
    rank: torch.Tensor
    complete: bool

    @classmethod
    def of(cls, graph: NeighborGraph, kept: torch.Tensor, k: int) -> "_Survivors":
        stays = kept.index_select(0, graph.indices.flatten()).view(graph.indices.shape) & kept[:, None]
        rank = stays.cumsum(dim=1) - 1
        complete = bool((stays.sum(dim=1)[kept] >= k).all())
        return cls((stays & (rank < k)).flatten(), rank.flatten(), complete)

    def rank_at(self, rows: torch.Tensor, positions: torch.Tensor, length: int, absent: int) -> torch.Tensor:
        """Subset rank of the entries at ``positions`` (``length``: none) of ``rows``; else ``absent``."""
        flat = rows * length + positions.clamp(max=length - 1)
        inside = (positions < length) & self.inside.index_select(0, flat)
        return torch.where(inside, self.rank.index_select(0, flat), absent)


def _terms_from_lists(
    full_a: _FullLists,
    full_b: _FullLists,
    kept: torch.Tensor,
    survivors: tuple[_Survivors, _Survivors],
    ks: torch.Tensor,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``kk``, ``ll``, ``kl`` and shared counts of the subset ``kept``, read off the full lists."""
    n, k_max = int(kept.sum()), int(ks[-1])
    new_index = kept.cumsum(dim=0) - 1
    entries = []
    for full, alive in zip((full_a, full_b), survivors, strict=True):
        at = alive.inside.nonzero()[:, 0]
        rows, cols = at // full.k, full.cols.index_select(0, at)
        reverse = alive.rank_at(cols, full.reverse_rank.index_select(0, at), full.k, k_max)
        entries.append((at, rows, cols, reverse))
    self_ab = []
    for full, alive, (at, rows, cols, reverse) in zip((full_a, full_b), survivors, entries, strict=True):
        similarities = full.similarities.index_select(0, at)
        new_rows, new_cols = new_index.index_select(0, rows), new_index.index_select(0, cols)
        rank = alive.rank.index_select(0, at)
        self_ab.append(hsic_by_rank(new_rows, new_cols, rank, reverse, similarities, similarities, ks, n))
    (at_a, rows, cols, reverse_a), (alive_a, alive_b) = entries[0], survivors
    length_b = full_b.k
    position_b = full_a.position_in_other.index_select(0, at_a)
    rank_b = alive_b.rank_at(rows, position_b, length_b, k_max)
    shared = (rank_b < k_max).nonzero()[:, 0]
    at_b = rows[shared] * length_b + position_b[shared]
    reverse_b = alive_b.rank_at(cols[shared], full_b.reverse_rank[at_b], length_b, k_max)
    rank = torch.maximum(alive_a.rank[at_a[shared]], rank_b[shared])
    kl = hsic_by_rank(
        new_index[rows[shared]],
        new_index[cols[shared]],
        rank,
        torch.maximum(reverse_a[shared], reverse_b),
        full_a.similarities[at_a[shared]],
        full_b.similarities[at_b],
        ks,
        n,
    )
    counts = shared_counts(rank, ks)
    return self_ab[0], self_ab[1], kl, counts


def _terms_from_search(
    observed: Observed, kept: torch.Tensor, exclusion: NeighborExclusion | None, ks: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``kk``, ``ll``, ``kl`` and shared counts of the subset ``kept``, searching the rows that need it."""
    ranked_a, ranked_b = (
        RankedGraph.build(_subset_graph(feats, graph, kept, int(ks[-1]), exclusion))
        for feats, graph in ((observed.a, observed.graph_a), (observed.b, observed.graph_b))
    )
    return self_terms(ranked_a, ks), self_terms(ranked_b, ks), *cross_terms(ranked_a, ranked_b, ks)


def jackknife_estimates(observed: Observed, groups: list[torch.Tensor]) -> dict[str, np.ndarray]:
    """Each metric (metric -> (n_groups, len(ks))) with each group of samples left out.

    Args:
        observed: the features, their graphs (the longer, the fewer samples are searched
            again) and the options.
        groups: the rows of each left-out group.

    Raises:
        ValueError: a subset leaves some sample fewer than ``max(ks)`` candidates.
        UndefinedAlignmentError: CKNNA is undefined in a subset.
    """
    a, ks, exclusion = observed.a, observed.ks, observed.exclusion
    k_max = max(ks)
    ks_tensor = torch.tensor(ks, device=a.device)
    exclusion_device = None if exclusion is None else exclusion.episode_index.device
    ranked_b = RankedGraph.build(observed.graph_b)
    ranked_a = RankedGraph.build(observed.graph_a)
    full_a = _FullLists.of(ranked_a, ranked_b.rank_of(ranked_a.rows, ranked_a.cols))
    full_b = _FullLists.of(ranked_b)
    del ranked_a, ranked_b
    estimates = observed.empty_values(len(groups))
    for g, dropped in enumerate(groups):
        kept = torch.ones(a.shape[0], dtype=torch.bool, device=a.device)
        kept[dropped.to(a.device)] = False
        n = int(kept.sum())
        sub_exclusion = (
            None if exclusion is None else exclusion.subset(kept.nonzero()[:, 0].to(exclusion_device))
        )
        check_admissible(admissible_counts(n, sub_exclusion, a.device), k_max)
        survivors = (
            _Survivors.of(observed.graph_a, kept, k_max),
            _Survivors.of(observed.graph_b, kept, k_max),
        )
        if all(alive.complete for alive in survivors):
            self_a, self_b, kl, shared = _terms_from_lists(full_a, full_b, kept, survivors, ks_tensor)
        else:
            self_a, self_b, kl, shared = _terms_from_search(observed, kept, sub_exclusion, ks_tensor)
        for col in range(len(ks)):
            terms = HSICTerms(kl=float(kl[col]), kk=float(self_a[col]), ll=float(self_b[col]))
            estimates["cknna"][g, col] = cknna_from_terms(terms, observed.eps)
        estimates["mutual_knn"][g] = shared / (n * np.asarray(ks))
        if observed.order_metrics:
            sub_a, sub_b = (
                _subset_graph(feats, graph, kept, k_max, sub_exclusion)
                for feats, graph in ((a, observed.graph_a), (observed.b, observed.graph_b))
            )
            for metric in observed.order_metrics:
                estimates[metric][g] = ORDER_METRIC_VALUES[metric](sub_a, sub_b, ks)
        if "svcca" in observed.metrics:
            sides = PrincipalSide.of(a[kept]), PrincipalSide.of(observed.b[kept])
            estimates["svcca"][g, 0] = mean_correlation(*sides, SVCCA_COMPONENTS)[0]
    return estimates
