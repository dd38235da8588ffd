"""The permutation null without rebuilding feat B's graph for every pairing where that is exact.

Under a pairing ``sigma`` sample ``i`` holds feat B of sample ``sigma[i]``. When ``sigma`` is
a permutation (episodes of equal length, or the row null) the other samples' feat B are
those of the other rows of ``b``, so row ``i`` of the pairing's graph is row ``sigma[i]`` of
graph B, relabelled by ``sigma^-1``: the same values, the same order except among equal
values (ties go to the lower *new* index). This holds when the neighbour exclusion is also
carried along by ``sigma`` (an episode goes whole to one episode, at a constant frame
shift when there is a window). Then, for each k:

* when no row of graph B has a tie across a k of the sweep, the k-NN sets are exactly
  the relabelled ones, feat B's self term is unchanged, and only the shared pairs are
  computed (:func:`lerobot_cknna.metrics.rank_terms.cross_terms` with ``sigma``);
* otherwise, when every row's list is long enough to hold the whole tie group at
  ``max(ks)``, the relabelled lists are re-sorted by (value, new index);
* otherwise the graph is rebuilt as before.

A pairing of episodes of unequal lengths repeats some rows of ``b`` and drops others. Where
feat B is searched with the k-d tree (float64, few dimensions) and the exclusion is carried,
row ``i`` of the pairing's graph is read off graph B as well (:func:`_expanded`): the rows
holding ``sigma[i]``'s neighbours, each neighbour expanded to every row that holds it, and the
other rows holding ``sigma[i]`` itself, ranked by (value, row). A row whose ``max(ks)``-th value
does not beat the last of ``sigma[i]``'s list is searched again, alone.

Feat A's self term does not depend on the pairing and is computed once per k.

The extra neighbour metrics (:mod:`lerobot_cknna.metrics.neighbour_order`) read feat B's
ordered lists under the pairing: relabelled (ties re-sorted) where that is exact, searched
again otherwise. SVCCA permutes the rows of feat B's principal directions when the pairing
is a permutation and recomputes them otherwise.
"""

from dataclasses import dataclass

import numpy as np
import torch

from lerobot_cknna.metrics.alignment import (
    HSICTerms,
    UndefinedAlignmentError,
    cknna_from_terms,
)
from lerobot_cknna.metrics.knn import (
    NeighborExclusion,
    NeighborGraph,
    _float64_similarities,
    _order,
    _tree_search_applies,
    admissible_counts,
    knn_graph,
    knn_rows,
)
from lerobot_cknna.metrics.neighbour_order import ORDER_METRIC_VALUES
from lerobot_cknna.metrics.observed import Observed
from lerobot_cknna.metrics.rank_terms import RankedGraph, cross_terms, self_terms
from lerobot_cknna.metrics.svcca import SVCCA_COMPONENTS, PrincipalSide, mean_correlation

METRICS = ("cknna", "mutual_knn")


def _is_permutation(sigma: torch.Tensor) -> bool:
    return bool(torch.equal(sigma.sort().values, torch.arange(len(sigma), device=sigma.device)))


def _distinct_pairs(first: torch.Tensor, second: torch.Tensor) -> int:
    return len(torch.unique(torch.stack([first, second]), dim=1).T)


def _carries_exclusion(exclusion: NeighborExclusion | None, sigma: torch.Tensor) -> bool:
    """Whether ``j`` is excluded for ``i`` exactly when ``sigma[j]`` is for ``sigma[i]``."""
    if exclusion is None:
        return True
    episode, moved = exclusion.episode_index, exclusion.episode_index[sigma]
    n_episodes = len(torch.unique(episode))
    # Each episode goes whole to one episode, and no two to the same one.
    if not _distinct_pairs(episode, moved) == n_episodes == len(torch.unique(moved)):
        return False
    if exclusion.window is None:
        return True
    shift = exclusion.frame_index[sigma] - exclusion.frame_index
    return _distinct_pairs(episode, shift) == n_episodes


def _boundary_ties(graph_b: NeighborGraph, ks: tuple[int, ...], admissible: torch.Tensor) -> torch.Tensor:
    """(N,) rows of graph B whose top-k set, for some k of ``ks``, depends on how ties are broken."""
    values, length = graph_b.similarities, graph_b.k
    tied = torch.zeros(len(values), dtype=torch.bool, device=values.device)
    for k in ks:
        tied |= values[:, k - 1] == values[:, k] if k < length else admissible > k
    return tied


def _whole_tie_groups(graph_b: NeighborGraph, k_max: int, admissible: torch.Tensor) -> bool:
    """Whether every row's list holds all the samples that tie with its ``k_max``-th neighbour."""
    complete = admissible <= graph_b.k
    if graph_b.k > k_max:
        complete |= graph_b.similarities[:, k_max - 1] > graph_b.similarities[:, -1]
    return bool(complete.all())


def _relabelled(graph_b: NeighborGraph, sigma: torch.Tensor, k_max: int) -> NeighborGraph:
    """The graph of ``b[sigma]`` from graph B of ``b`` (``sigma`` a permutation; ties re-sorted)."""
    inverse = torch.empty_like(sigma)
    inverse[sigma] = torch.arange(len(sigma), device=sigma.device)
    values, indices = _order(graph_b.similarities[sigma], inverse[graph_b.indices[sigma]])
    return NeighborGraph(indices[:, :k_max], values[:, :k_max])


def _expanded(
    b: torch.Tensor,
    graph_b: NeighborGraph,
    sigma: torch.Tensor,
    k_max: int,
    exclusion: NeighborExclusion | None,
) -> NeighborGraph:
    """The graph of ``b[sigma]`` from graph B of ``b``, for a row map that repeats or drops rows.

    Row ``i``'s candidates are the samples of ``sigma[i]``'s list in graph B, already ranked by
    value, with ``sigma[i]`` itself put in its place by its own value; each expands to the rows
    that hold it, in row order, which is the order of a search where no two samples tie. Every
    sample outside the list is at or below the list's last value, so where row ``i``'s
    ``k_max``-th neighbour is above it the candidates held the whole top ``k_max`` (only as many
    as can fill ``k_max`` places are expanded, bounded alike by the first left out). The values
    are graph B's (the self pairs' computed by the same formula), those a search of ``b[sigma]``
    computes. Rows whose top ``k_max`` the list does not bound, or holds two tied samples, are
    searched in ``b[sigma]``.
    """
    n, device = len(sigma), sigma.device
    listed = graph_b.similarities[sigma]
    own = _float64_similarities(b, sigma[:, None], sigma)
    # sigma[i] goes after the listed samples above it: a tie with one of them is searched.
    place = (listed > own).sum(dim=1, keepdim=True)
    slots = torch.arange(listed.shape[1] + 1, device=device)
    from_list = (slots - (slots > place).long()).clamp(max=listed.shape[1] - 1)
    is_own = slots == place
    sources = torch.where(is_own, sigma[:, None], graph_b.indices[sigma].gather(1, from_list))
    source_values = torch.where(is_own, own, listed.gather(1, from_list))
    # The rows holding each sample of b: rows_by_source[start[s] : start[s] + count[s]].
    count = torch.bincount(sigma, minlength=b.shape[0])
    # Only the first samples whose rows fill k_max places are expanded (sigma[i]'s own may all be struck);
    # every sample after them is at or below the first one left out.
    filled = count[sources].cumsum(dim=1) - count[sigma][:, None]
    width = int((filled < k_max).sum(dim=1).max()) + 1
    bound = source_values[:, width] if width < sources.shape[1] else listed[:, -1]
    sources, source_values = sources[:, :width], source_values[:, :width]
    start = count.cumsum(dim=0) - count
    rows_by_source = torch.argsort(sigma, stable=True)
    copy = torch.arange(int(count.max()), device=device)
    held = copy < count[sources][..., None]
    candidates = rows_by_source[(start[sources][..., None] + copy).clamp(max=n - 1)].flatten(1)
    queries = torch.arange(n, device=device)
    held = held.flatten(1) & (candidates != queries[:, None])
    if exclusion is not None:
        held &= ~exclusion.pair_mask(queries, candidates)
    values = source_values[..., None].expand(-1, -1, len(copy)).flatten(1)
    rank = held.cumsum(dim=1) - 1
    short = held.sum(dim=1) < k_max
    first_slots = torch.arange(held.shape[1], device=device) < k_max  # a short row's stand-ins, searched
    kept = torch.where(short[:, None], first_slots, held & (rank < k_max))
    indices, values = candidates[kept].view(n, k_max), values[kept].view(n, k_max)
    ties = ((source_values[:, 1:] == source_values[:, :-1]) & (source_values[:, 1:] >= values[:, -1:])).any(
        dim=1
    )
    unsure = (short | ties | (values[:, -1] <= bound)).nonzero()[:, 0]
    if len(unsure):
        searched = knn_rows(b[sigma], unsure, k_max, exclusion)
        values[unsure], indices[unsure] = searched.similarities, searched.indices
    return NeighborGraph(indices, values)


def null_samples(observed: Observed, pairings: list[torch.Tensor]) -> tuple[dict[str, np.ndarray], int]:
    """Metric values (metric -> (n_pairings, len(ks))) under each pairing; NaN where undefined.

    Args:
        observed: the features, their graphs as observed (neighbours beyond ``max(ks)`` let
            feat B's be relabelled on data with ties) and the options.
        pairings: the row maps ``sigma``.

    Returns:
        The values and the number of (pairing, k) where CKNNA was undefined.
    """
    (result,) = null_samples_of_sets([observed], pairings)
    return result


@dataclass(frozen=True)
class _SideA:
    """What one feature set's null reads of its own side, the same for every pairing."""

    ranked: RankedGraph
    self_terms: list[float]
    principal: PrincipalSide | None


def _check_same_b(sets: list[Observed]) -> None:
    first = sets[0]
    for other in sets[1:]:
        same = (other.b is first.b or torch.equal(other.b, first.b)) and torch.equal(
            other.graph_b.indices, first.graph_b.indices
        )
        if not same or (other.ks, other.metrics) != (first.ks, first.metrics):
            raise ValueError(
                "The feature sets of one null must share feat B, its graph, the ks and the metrics."
            )


def null_samples_of_sets(
    sets: list[Observed], pairings: list[torch.Tensor]
) -> list[tuple[dict[str, np.ndarray], int]]:
    """:func:`null_samples` of several feat A sets paired with one feat B, sharing feat B's work.

    Under each pairing feat B's side (its relabelled or searched graph, its self terms, its
    principal directions) is built once and read by every set, so a layer sweep or the token
    groups pay one search of feat B per pairing, not one per set. Each set's values are those
    :func:`null_samples` gives it alone.

    Args:
        sets: the observed data of each set; they share ``b``, ``graph_b``, ``ks``,
            ``exclusion`` and ``metrics``.
        pairings: the row maps ``sigma``.

    Returns:
        Per set, its values and its number of undefined (pairing, k), as :func:`null_samples`.

    Raises:
        ValueError: the sets do not share feat B.
    """
    _check_same_b(sets)
    first = sets[0]
    graph_b, b, ks, exclusion = first.graph_b, first.b, first.ks, first.exclusion
    k_max, n = max(ks), b.shape[0]
    device = graph_b.indices.device
    exclusion = None if exclusion is None else exclusion.to(device)
    ks_tensor = torch.tensor(ks, device=device)
    with_svcca = "svcca" in first.metrics
    sides = [
        _SideA(
            RankedGraph.build(observed.graph_a.truncate(k_max)),
            observed.self_terms[0],
            PrincipalSide.of(observed.a) if with_svcca else None,
        )
        for observed in sets
    ]
    self_b = first.self_terms[1]
    admissible = admissible_counts(n, exclusion, device)
    ranks_are_carried = not bool(_boundary_ties(graph_b, ks, admissible).any())
    ranked_b = RankedGraph.build(graph_b.truncate(k_max)) if ranks_are_carried else None
    ties_can_be_resorted = _whole_tie_groups(graph_b, k_max, admissible)
    expands = _tree_search_applies(b) and graph_b.k > k_max
    principal_b = PrincipalSide.of(b) if with_svcca else None

    values = [observed.empty_values(len(pairings)) for observed in sets]
    undefined = [0] * len(sets)
    for row, sigma in enumerate(pairings):
        sigma = sigma.to(device)
        permutes = _is_permutation(sigma)
        carried = _carries_exclusion(exclusion, sigma)
        relabels = permutes and carried
        if with_svcca:
            side_b = principal_b.permuted(sigma) if permutes else PrincipalSide.of(b[sigma])
        graph = None
        if relabels and ranks_are_carried:
            paired_b, self_b_here = None, self_b
            if first.order_metrics:
                graph = _relabelled(graph_b, sigma, k_max)
        else:
            if relabels and ties_can_be_resorted:
                graph = _relabelled(graph_b, sigma, k_max)
            elif not permutes and carried and expands:
                graph = _expanded(b, graph_b, sigma, k_max, exclusion)
            else:
                graph = knn_graph(b[sigma], k_max, exclusion)
            paired_b = RankedGraph.build(graph)
            self_b_here = self_terms(paired_b, ks_tensor)
        for index, (observed, side) in enumerate(zip(sets, sides, strict=True)):
            if paired_b is None:
                kl, shared = cross_terms(side.ranked, ranked_b, ks_tensor, sigma)
            else:
                kl, shared = cross_terms(side.ranked, paired_b, ks_tensor)
            here = values[index]
            if with_svcca:
                here["svcca"][row, 0] = mean_correlation(side.principal, side_b, SVCCA_COMPONENTS)[0]
            for metric in observed.order_metrics:
                here[metric][row] = ORDER_METRIC_VALUES[metric](observed.graph_a, graph, ks)
            for col, k in enumerate(ks):
                here["mutual_knn"][row, col] = float(shared[col]) / (n * k)
                try:
                    terms = HSICTerms(kl=float(kl[col]), kk=side.self_terms[col], ll=self_b_here[col])
                    here["cknna"][row, col] = cknna_from_terms(terms, observed.eps)
                except UndefinedAlignmentError:
                    undefined[index] += 1
    return list(zip(values, undefined, strict=True))
