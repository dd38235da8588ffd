"""Delete-a-group jackknife estimates from the full graphs, without a search per left-out group.

Leaving out a group of episodes re-indexes the kept samples in their old order, and the
neighbour exclusion is a rule on pairs of samples, so a kept sample's neighbours in the
subset are its neighbours in the full data with the left-out samples struck out, in the
same order (ties by lower index stay ties by lower index). Built with more than ``max(ks)``
neighbours, the full lists answer every kept sample that keeps at least ``max(ks)`` of
them; the others are searched in the subset (:func:`lerobot_cknna.metrics.knn.knn_rows`).
"""

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
from lerobot_cknna.metrics.observed import Observed
from lerobot_cknna.metrics.rank_terms import RankedGraph, cross_terms, self_terms

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
    a, b, ks, exclusion = observed.a, observed.b, observed.ks, observed.exclusion
    k_max = max(ks)
    ks_tensor = torch.tensor(ks, device=a.device)
    estimates = {metric: np.full((len(groups), len(ks)), np.nan) for metric in METRICS}
    for g, dropped in enumerate(groups):
        kept = torch.ones(a.shape[0], dtype=torch.bool, device=a.device)
        kept[dropped.to(a.device)] = False
        n = int(kept.sum())
        sub_exclusion = None if exclusion is None else exclusion.subset(kept.nonzero()[:, 0].cpu())
        check_admissible(admissible_counts(n, sub_exclusion, a.device), k_max)
        ranked_a, ranked_b = (
            RankedGraph.build(_subset_graph(feats, graph, kept, k_max, sub_exclusion))
            for feats, graph in ((a, observed.graph_a), (b, observed.graph_b))
        )
        self_a, self_b = self_terms(ranked_a, ks_tensor), self_terms(ranked_b, ks_tensor)
        kl, shared = cross_terms(ranked_a, ranked_b, ks_tensor)
        for col in range(len(ks)):
            terms = HSICTerms(kl=float(kl[col]), kk=float(self_a[col]), ll=float(self_b[col]))
            estimates["cknna"][g, col] = cknna_from_terms(terms, observed.eps)
        estimates["mutual_knn"][g] = shared / (n * np.asarray(ks))
    return estimates
