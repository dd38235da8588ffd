"""CKNNA's HSIC terms and mutual kNN at every k of a sweep, in one pass over ranked neighbour lists.

A graph built at ``k_max`` holds the graph at every ``k <= k_max``: the pair ``(i, j)`` is
in the k-NN mask exactly when ``j``'s rank in row ``i`` is below ``k``. Every term of the
unbiased HSIC on a mask (:func:`lerobot_cknna.metrics.alignment._masked_hsic`) is a sum over
mask pairs, so each pair is added once, to the smallest k of the sweep that contains it,
and a cumulative sum over the sweep gives every k. The CKNNA numerator's mask (both
graphs) holds ``(i, j)`` exactly when ``max(rank_a, rank_b) < k``. The values equal those
of :func:`lerobot_cknna.metrics.alignment.hsic_terms` up to float64 rounding of sums taken in
another order.
"""

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import torch

from lerobot_cknna.metrics.knn import NeighborGraph

# Buckets per row of the table that answers most pair look-ups without a binary search
# (a power of two: the bucket of column ``j`` is its low bits).
FILTER_BUCKETS = 1024


@dataclass(frozen=True)
class RankedGraph:
    """A neighbour graph, flattened, with the look-ups that rank-based sums need.

    Attributes:
        n: number of samples.
        k: neighbours per sample.
        rows, cols, similarities: every pair ``(i, j)`` and its kernel value, row by row,
            each row in rank order (flat index ``i * k + rank``).
        sorted_keys: every pair key ``i * n + j``, sorted.
        key_rank: the rank of each sorted key in its row.
        reverse_rank: the rank of ``(j, i)`` for each pair; ``k`` where absent.
    """

    n: int
    k: int
    rows: torch.Tensor
    cols: torch.Tensor
    similarities: torch.Tensor
    sorted_keys: torch.Tensor
    key_rank: torch.Tensor
    reverse_rank: torch.Tensor

    @classmethod
    def build(cls, graph: NeighborGraph) -> "RankedGraph":
        n, k = graph.indices.shape
        rows = torch.arange(n, device=graph.indices.device).repeat_interleave(k)
        cols = graph.indices.flatten()
        sorted_keys, order = (rows * n + cols).sort()
        ranked = cls(n, k, rows, cols, graph.similarities.flatten(), sorted_keys, order % k, torch.empty(0))
        return replace(ranked, reverse_rank=ranked.rank_of(cols, rows))

    @cached_property
    def _bucket_rank(self) -> torch.Tensor:
        """Row ``i``'s neighbours by bucket: one rank per ``(i, j % FILTER_BUCKETS)``.

        The rank of row ``i``'s one neighbour in that bucket, ``k`` where it has none, ``-1``
        where it has several, flat at ``i * FILTER_BUCKETS + j % FILTER_BUCKETS``.
        """
        buckets = self.rows * FILTER_BUCKETS + (self.cols & (FILTER_BUCKETS - 1))
        dtype = torch.int16 if self.k < 2**15 else torch.int32
        ranks = (torch.arange(len(buckets), device=buckets.device) % self.k).to(dtype)
        table = torch.full((self.n * FILTER_BUCKETS,), self.k, dtype=dtype, device=buckets.device)
        table[buckets] = ranks
        # Where neighbours share a bucket, one write wins; the others read back a rank not theirs.
        table[buckets[table.index_select(0, buckets) != ranks]] = -1
        return table

    def rank_of(
        self, rows: torch.Tensor, cols: torch.Tensor, sigma: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Rank of ``cols[p]`` in row ``rows[p]``; ``k`` where it is not a neighbour.

        With ``sigma``, the rank of ``sigma[cols[p]]`` in row ``sigma[rows[p]]``.
        """
        labels = torch.arange(self.n, device=rows.device) if sigma is None else sigma
        buckets = (labels * FILTER_BUCKETS).index_select(0, rows)
        buckets += (labels & (FILTER_BUCKETS - 1)).index_select(0, cols)
        in_bucket = self._bucket_rank.index_select(0, buckets)
        maybe = (in_bucket != self.k).nonzero()[:, 0]
        rows_at, cols_at = labels[rows.index_select(0, maybe)], labels[cols.index_select(0, maybe)]
        rank_at = in_bucket.index_select(0, maybe).long()
        # One neighbour in the bucket: the pair is there iff it is that neighbour.
        is_it = self.cols.index_select(0, rows_at * self.k + rank_at.clamp(min=0)) == cols_at
        rank_at = torch.where(is_it, rank_at, self.k)
        several = (in_bucket.index_select(0, maybe) < 0).nonzero()[:, 0]
        if len(several):
            keys = rows_at[several] * self.n + cols_at[several]
            position = torch.searchsorted(self.sorted_keys, keys).clamp(max=len(self.sorted_keys) - 1)
            found = self.sorted_keys.index_select(0, position) == keys
            rank_at[several] = torch.where(found, self.key_rank.index_select(0, position), self.k)
        return torch.full_like(rows, self.k).index_copy_(0, maybe, rank_at)


def _per_k(bins: torch.Tensor, values: torch.Tensor, site: torch.Tensor | None, n: int, width: int):
    """Sums of ``values`` over the entries with ``bin <= j``, for each ``j < width - 1`` (by ``site`` if given).

    ``bins`` is the index of the first k of the sweep that holds each entry (``width - 1``: none).
    """
    index = bins if site is None else site * width + bins
    sums = torch.zeros(width * (1 if site is None else n), dtype=torch.float64, device=values.device)
    sums = sums.index_add_(0, index, values).view(-1, width).cumsum(dim=1)[:, :-1]
    return sums[0] if site is None else sums


def hsic_by_rank(
    rows: torch.Tensor,
    cols: torch.Tensor,
    rank: torch.Tensor,
    reverse_rank: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    ks: torch.Tensor,
    n: int,
) -> np.ndarray:
    """``HSIC_u(M_k o X, M_k o Y)`` for every k of ``ks``, the masks given by ranks.

    Args:
        rows: the ``i`` of the pairs ``(i, j)`` that any mask holds.
        cols: their ``j``.
        rank: pair ``(i, j)`` is in ``M_k`` iff ``rank < k``.
        reverse_rank: the rank of ``(j, i)`` (anything >= max k where no mask holds it).
        x: kernel X's entries at those pairs (float64).
        y: kernel Y's entries at those pairs (float64).
        ks: ascending neighbourhood sizes.
        n: number of samples.
    """
    width, last = len(ks) + 1, int(ks[-1])
    # The first k holding each rank, looked up: searchsorted(ks, rank, right=True), ranks >= max k clamped.
    first_k = torch.searchsorted(ks, torch.arange(last + 1, device=ks.device), right=True)
    bins = first_k.index_select(0, rank.clamp(max=last))
    trace_term = _per_k(
        first_k.index_select(0, torch.maximum(rank, reverse_rank).clamp(max=last)), x * y, None, n, width
    )
    col_x, row_y = _per_k(bins, x, cols, n, width), _per_k(bins, y, rows, n, width)
    total_x, total_y = _per_k(bins, x, None, n, width), _per_k(bins, y, None, n, width)
    value = trace_term + total_x * total_y / ((n - 1) * (n - 2)) - 2 * (col_x * row_y).sum(dim=0) / (n - 2)
    return (value / (n * (n - 3))).cpu().numpy()


def self_terms(ranked: RankedGraph, ks: torch.Tensor) -> np.ndarray:
    """The self-alignment term (``kk`` or ``ll``) at every k of ``ks``."""
    rank = torch.arange(ranked.k, device=ks.device).repeat(ranked.n)
    sims = ranked.similarities
    return hsic_by_rank(ranked.rows, ranked.cols, rank, ranked.reverse_rank, sims, sims, ks, ranked.n)


def cross_terms(
    ranked_a: RankedGraph, ranked_b: RankedGraph, ks: torch.Tensor, sigma: torch.Tensor | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """CKNNA's numerator ``kl`` and the number of shared neighbour pairs at every k of ``ks``.

    Args:
        ranked_a: graph A.
        ranked_b: graph B, or, with ``sigma``, the graph of ``b`` whose relabelling by
            ``sigma`` is graph B of the pairing (sample ``i`` holds row ``sigma[i]`` of ``b``):
            ``(i, j)`` is then a B pair iff ``(sigma[i], sigma[j])`` is one of ``ranked_b``,
            with the same rank.
        ks: ascending neighbourhood sizes, at most both graphs' k.
        sigma: a permutation of the samples, or ``None``.
    """
    n, k = ranked_a.n, ranked_a.k
    rows, cols = ranked_a.rows, ranked_a.cols
    rank_b = ranked_b.rank_of(rows, cols, sigma)
    shared = (rank_b < ranked_b.k).nonzero()[:, 0]
    rows_b = rows[shared] if sigma is None else sigma[rows[shared]]
    at_b = rows_b * ranked_b.k + rank_b[shared]
    rank = torch.maximum(shared % k, rank_b[shared])
    reverse = torch.maximum(ranked_a.reverse_rank[shared], ranked_b.reverse_rank[at_b])
    x, y = ranked_a.similarities[shared], ranked_b.similarities[at_b]
    return hsic_by_rank(rows[shared], cols[shared], rank, reverse, x, y, ks, n), shared_counts(rank, ks)


def shared_counts(rank: torch.Tensor, ks: torch.Tensor) -> np.ndarray:
    """The number of pairs with ``rank < k`` for every k of ``ks`` (shared pairs: mutual kNN)."""
    counts = torch.zeros(len(ks) + 1, dtype=torch.long, device=ks.device)
    counts.index_add_(0, torch.searchsorted(ks, rank, right=True), torch.ones_like(rank))
    return counts.cumsum(dim=0)[:-1].cpu().numpy()
