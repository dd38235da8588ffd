"""Exact k-nearest-neighbour graphs under the linear kernel, computed in tiles.

CKNNA and mutual kNN only look at each sample's ``k`` most similar other samples, so the
N x N kernel never has to exist: similarities are computed one tile at a time and only
each row's top ``k`` survive. Memory is O(N * (d + k)) plus one
tile of ``block_size x block_size`` similarities.

Ties are broken deterministically: among equal similarities the lower sample index wins.
Robot data has exact ties (a robot at rest produces identical states), so this matters.
"""

import contextlib
from dataclasses import dataclass

import torch

from lerobot_cknna.metrics.low_dim_knn import InnerProductTree

DEFAULT_BLOCK_SIZE = 2048
# Float64 elements gathered at once for re-ranking: 4 MB, which stays in cache.
GATHER_ELEMENTS = 2**19
# Float64 CPU features of at most this many dimensions are searched with a k-d tree.
LOW_DIM_MAX = 16
TREE_QUERY_ELEMENTS = 2**20
# Nearest samples fetched beyond the k admissible ones, so that a gap after the k-th proves it.
TREE_SPARE = 8


@dataclass(frozen=True)
class NeighborExclusion:
    """Candidates a sample may not pick as neighbours, besides itself.

    Robot data is made of trajectories, so a sample's nearest neighbours are mostly frames
    of its own episode. Excluding them asks whether the two representations agree across
    episodes rather than along one.

    Attributes:
        episode_index: (N,) episode of each sample.
        frame_index: (N,) frame (or env step) of each sample; needed only with ``window``.
        window: ``None`` excludes the whole episode; ``w`` excludes frames of the same
            episode at most ``w`` steps away.
    """

    episode_index: torch.Tensor
    frame_index: torch.Tensor | None = None
    window: int | None = None

    def __post_init__(self):
        if self.window is not None:
            if self.frame_index is None:
                raise ValueError("A neighbour exclusion window needs frame_index for every sample.")
            if self.window < 0:
                raise ValueError(f"The exclusion window must be >= 0 frames, got {self.window}.")

    def describe(self) -> str:
        """Short human-readable form, recorded with results."""
        if self.window is None:
            return "same episode"
        return f"same episode within {self.window} frames"

    def to(self, device: torch.device) -> "NeighborExclusion":
        """The same rule with its index tensors on ``device``."""
        frames = None if self.frame_index is None else self.frame_index.to(device)
        return NeighborExclusion(self.episode_index.to(device), frames, self.window)

    def subset(self, rows: torch.Tensor) -> "NeighborExclusion":
        """The same rule restricted to the samples ``rows``."""
        frames = None if self.frame_index is None else self.frame_index[rows]
        return NeighborExclusion(self.episode_index[rows], frames, self.window)

    def admissible_counts(self) -> torch.Tensor:
        """(N,) number of candidates each sample may pick as neighbours."""
        n = len(self.episode_index)
        _, episode_of, episode_sizes = torch.unique(
            self.episode_index, return_inverse=True, return_counts=True
        )
        if self.window is None:
            return n - episode_sizes[episode_of]
        # Frames of the same episode within the window, self included: count by sorted search.
        key = episode_of.double() * (self.frame_index.max() - self.frame_index.min() + 2 * self.window + 1)
        key = key + (self.frame_index - self.frame_index.min()).double()
        sorted_key = key.sort().values
        near = torch.searchsorted(sorted_key, key + self.window, right=True) - torch.searchsorted(
            sorted_key, key - self.window
        )
        return n - near

    def block_mask(self, rows: slice, cols: slice) -> torch.Tensor:
        """Boolean mask of excluded candidates ``cols`` for the samples ``rows``."""
        return self._excluded((rows, None), (None, cols))

    def pair_mask(self, samples: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Boolean mask of excluded ``candidates[r, c]`` for the samples ``samples[r]``."""
        return self._excluded(samples[:, None], candidates)

    def _excluded(self, first, second) -> torch.Tensor:
        """Exclusion of the samples indexed by ``second`` for those indexed by ``first`` (broadcast)."""
        same = self.episode_index[first] == self.episode_index[second]
        if self.window is None:
            return same
        gap = (self.frame_index[first] - self.frame_index[second]).abs()
        return same & (gap <= self.window)


@dataclass(frozen=True)
class NeighborGraph:
    """The k nearest neighbours of every sample.

    Attributes:
        indices: (N, k) int64; row ``i`` lists the neighbours of sample ``i`` ordered by
            decreasing similarity, equal similarities by increasing index. The first
            ``k'`` columns are therefore the exact ``k'``-NN graph for any ``k' <= k``.
        similarities: (N, k) float64 linear-kernel values ``<x_i, x_j>`` for those pairs,
            recomputed in float64 whatever the input dtype.
    """

    indices: torch.Tensor
    similarities: torch.Tensor

    @property
    def k(self) -> int:
        return self.indices.shape[1]

    def truncate(self, k: int) -> "NeighborGraph":
        """The exact k-NN graph for a smaller ``k``."""
        if k > self.k:
            raise ValueError(f"Cannot take {k} neighbours from a graph built with k={self.k}.")
        return NeighborGraph(self.indices[:, :k], self.similarities[:, :k])


def _block_top_k(sims: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k (values, column indices) per row, in no order; among values tied at the k-th place, lower columns win."""
    if k >= sims.shape[1]:
        return sims, torch.arange(sims.shape[1], device=sims.device).expand_as(sims)
    values, indices = sims.topk(k + 1, dim=1, sorted=False)
    smallest, smallest_at = values.min(dim=1, keepdim=True)
    has_tie = (values == smallest).sum(dim=1) > 1
    # Without a tie at the k-th place, the top k are the top k + 1 less their smallest.
    keep = torch.ones_like(values, dtype=torch.bool).scatter_(1, smallest_at, False)
    values, indices = values[keep].view(-1, k), indices[keep].view(-1, k)
    if has_tie.any():
        tied_rows = sims[has_tie]
        threshold = smallest[has_tie]
        above = tied_rows > threshold
        tied = tied_rows == threshold
        still_needed = k - above.sum(dim=1, keepdim=True)
        chosen = above | (tied & (tied.cumsum(dim=1) <= still_needed))
        indices[has_tie] = chosen.nonzero()[:, 1].view(-1, k)
        values[has_tie] = tied_rows.gather(1, indices[has_tie])
    return values, indices


def _order(values: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort each row by value (descending), then index (ascending)."""
    indices, by_index = indices.sort(dim=1)
    values = values.gather(1, by_index)
    values, by_value = values.sort(dim=1, descending=True, stable=True)
    return values, indices.gather(1, by_value)


def _float32_sort_keys(values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Int64 keys whose descending order is (value desc, index asc) of float32 ``values``.

    The high 32 bits are the value's bits made monotone as a signed integer (``-0.0`` counted
    as ``+0.0``), the low 32 bits ``2^31 - 1 - index``; every (value, index) gets its own key.
    """
    bits = (values + 0.0).view(torch.int32)
    monotone = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    return (monotone.long() << 32) | (2**31 - 1 - indices)


def _from_float32_sort_keys(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    monotone = (keys >> 32).int()
    values = torch.where(monotone < 0, monotone ^ 0x7FFFFFFF, monotone).view(torch.float32)
    return values, 2**31 - 1 - (keys & 0xFFFFFFFF)


def _top_ordered(values: torch.Tensor, indices: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``k`` of each row in the order of :func:`_order` (one int64 top-k for float32)."""
    if values.dtype == torch.float32:
        return _from_float32_sort_keys(_float32_sort_keys(values, indices).topk(k, dim=1).values)
    values, indices = _order(values, indices)
    return values[:, :k], indices[:, :k]


class _RunningTopK:
    """Exact top-k per row over column tiles seen one at a time.

    Keeping the best ``k`` of (previous best) + (tile's best) is exact because the order
    (value desc, index asc) is total: the top k of a union is within the union of top ks.
    """

    def __init__(self, n: int, k: int, dtype: torch.dtype, device: torch.device):
        self.k = k
        self.values = torch.full((n, k), float("-inf"), dtype=dtype, device=device)
        self.indices = torch.full((n, k), -1, dtype=torch.long, device=device)

    def update(self, rows: slice, sims: torch.Tensor, column_offset: int):
        values, indices = _block_top_k(sims, self.k)
        self.values[rows], self.indices[rows] = _top_ordered(
            torch.cat([self.values[rows], values], dim=1),
            torch.cat([self.indices[rows], indices + column_offset], dim=1),
            self.k,
        )


def _float64_similarities(
    feats: torch.Tensor,
    indices: torch.Tensor,
    rows: torch.Tensor | None = None,
    widths: torch.Tensor | None = None,
) -> torch.Tensor:
    """``<x_i, x_j>`` in float64 for every row ``i`` and its neighbours ``indices[i]``.

    ``indices[r]`` belongs to sample ``rows[r]``, or to sample ``r`` when ``rows`` is ``None``.
    With ``widths``, only the first ``widths[r]`` neighbours of row ``r`` are needed: entries
    past the widest row of a chunk of rows are left at ``-inf``.

    Each value is the sum, over the last dimension, of a contiguous (rows, neighbours, d)
    block of float64 products, so it does not depend on how the rows are chunked. The
    neighbours' rows are gathered into one buffer, reused and small enough to stay in cache.
    """
    dim = feats.shape[1]
    rows_per_chunk = max(1, GATHER_ELEMENTS // (indices.shape[1] * dim))
    out = torch.full(indices.shape, float("-inf"), dtype=torch.float64, device=indices.device)
    buffer = torch.empty(rows_per_chunk * indices.shape[1] * dim, dtype=torch.float64, device=feats.device)
    for offset in range(0, indices.shape[0], rows_per_chunk):
        chunk = slice(offset, min(offset + rows_per_chunk, indices.shape[0]))
        width = indices.shape[1] if widths is None else int(widths[chunk].max())
        idx = indices[chunk, :width]
        products = buffer[: idx.numel() * dim].view(*idx.shape, dim)
        if feats.dtype == torch.float64:
            torch.index_select(feats, 0, idx.reshape(-1), out=products.view(-1, dim))
        else:
            products.view(-1, dim).copy_(feats.index_select(0, idx.reshape(-1)))
        products.mul_(feats[chunk if rows is None else rows[chunk], None, :].double())
        out[chunk, :width] = products.sum(dim=-1)
    return out


def _symmetric_search(
    feats: torch.Tensor, k: int, exclusion: NeighborExclusion | None, block_size: int, dtype: torch.dtype
) -> _RunningTopK:
    """Top k of every row from the tiles on and above the diagonal (each used for rows and columns).

    Similarities are computed in ``dtype``; tiles are converted one at a time, so a float32
    search of float64 features never holds a float32 copy of them all.
    """
    n = feats.shape[0]
    best = _RunningTopK(n, k, dtype, feats.device)
    starts = range(0, n, block_size)
    for row_start in starts:
        rows = slice(row_start, min(row_start + block_size, n))
        row_tile = feats[rows].to(dtype)
        for col_start in (start for start in starts if start >= row_start):
            cols = slice(col_start, min(col_start + block_size, n))
            sims = row_tile @ feats[cols].to(dtype).T
            if exclusion is not None:
                sims.masked_fill_(exclusion.block_mask(rows, cols), float("-inf"))
            if col_start == row_start:
                sims.fill_diagonal_(float("-inf"))
            best.update(rows, sims, col_start)
            if col_start != row_start:
                best.update(cols, sims.T.contiguous(), row_start)  # top-k is faster along contiguous rows
    return best


def _rows_search(
    feats: torch.Tensor,
    rows: torch.Tensor,
    k: int,
    exclusion: NeighborExclusion | None,
    block_size: int,
    dtype: torch.dtype,
) -> _RunningTopK:
    """Top k of the given rows only, against every column tile (in ``dtype``, converted per tile)."""
    n = feats.shape[0]
    best = _RunningTopK(len(rows), k, dtype, feats.device)
    everyone = slice(0, len(rows))
    queries = feats[rows].to(dtype)
    for col_start in range(0, n, block_size):
        cols = slice(col_start, min(col_start + block_size, n))
        sims = queries @ feats[cols].to(dtype).T
        if exclusion is not None:
            sims.masked_fill_(exclusion.block_mask(rows, cols), float("-inf"))
        sims.masked_fill_(
            rows[:, None] == torch.arange(cols.start, cols.stop, device=feats.device), float("-inf")
        )
        best.update(everyone, sims, col_start)
    return best


def _float32_dot_error(dim: int) -> float:
    """``(d + 2) u``, ``u = 2^-24``: rounding of float64 inputs to float32 plus any summation order."""
    return 2.0**-24 * (dim + 2)


def _float32_search_is_certifiable(feats: torch.Tensor) -> bool:
    return _float32_dot_error(feats.shape[1]) < 1e-2


@contextlib.contextmanager
def _ieee_float32_matmul():
    """Float32 matmul in full float32 while the certified search runs; the caller's setting comes back.

    TF32 or bf16 matmul (a float32 matmul precision other than ``"highest"``) breaks the error bound.
    lerobot-eval turns TF32 on for the whole process (``allow_tf32 = True``, lerobot_eval.py:747),
    which makes the precision ``"high"`` for every later matmul, the simulation's scoring included.
    """
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def _certified_float64_search(
    feats: torch.Tensor,
    rows: torch.Tensor | None,
    k: int,
    exclusion: NeighborExclusion | None,
    block_size: int,
    admissible: torch.Tensor,
) -> NeighborGraph:
    """Exact float64 k-NN at float32 speed: candidates in float32, re-ranked and certified in float64.

    A float32 dot product of float64 inputs differs from the exact one by at most
    ``gamma * |x_i| |x_j|`` with ``gamma = (d + 2) u / (1 - (d + 2) u)``, ``u = 2^-24``
    (input rounding plus any summation order). A row's candidates are its top ``c > k``
    in float32; if the exact k-th best candidate beats the float32 value of the last
    candidate by more than that bound, no other sample can reach or tie it, so the exact
    top k is among the candidates. Rows that cannot be certified are searched in float64.

    ``rows``: the samples to search for (``None``: all of them, with the symmetric search);
    ``admissible``: the number of candidates of each of those samples.
    """
    n_candidates = min(int(admissible.min()), 2 * k + 8)
    with _ieee_float32_matmul():
        if rows is None:
            coarse = _symmetric_search(feats, n_candidates, exclusion, block_size, torch.float32)
        else:
            coarse = _rows_search(feats, rows, n_candidates, exclusion, block_size, torch.float32)
    unit_error = _float32_dot_error(feats.shape[1])
    norms = feats.norm(dim=1)
    bound = unit_error / (1 - unit_error) * (norms if rows is None else norms[rows]) * norms.max()
    # A candidate more than two bounds below the k-th float32 value is beaten by k others.
    needed = (coarse.values.double() >= coarse.values[:, k - 1, None].double() - 2 * bound[:, None]).sum(
        dim=1
    )
    similarities = _float64_similarities(feats, coarse.indices, rows, needed)
    values, indices = _order(similarities, coarse.indices)
    certified = (values[:, k - 1] > coarse.values[:, -1].double() + bound) | (admissible <= n_candidates)
    values, indices = values[:, :k], indices[:, :k]
    uncertain = (~certified).nonzero()[:, 0]
    if len(uncertain):
        searched = uncertain if rows is None else rows[uncertain]
        exact = _rows_search(feats, searched, k, exclusion, block_size, feats.dtype)
        # The same float64 formula as every other row (a float64 matmul may round differently).
        values[uncertain], indices[uncertain] = _order(
            _float64_similarities(feats, exact.indices, searched), exact.indices
        )
    return NeighborGraph(indices, values)


def _tree_search_applies(feats: torch.Tensor) -> bool:
    return feats.dtype == torch.float64 and feats.device.type == "cpu" and feats.shape[1] <= LOW_DIM_MAX


def _admissible_top_k(
    feats: torch.Tensor,
    samples: torch.Tensor,
    candidates: torch.Tensor,
    k: int,
    exclusion: NeighborExclusion | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 top k of ``candidates[r]`` (``-1``: padding) for ``samples[r]``, self and excluded struck out."""
    struck = (candidates < 0) | (candidates == samples[:, None])
    candidates = candidates.clamp(min=0)
    if exclusion is not None:
        struck |= exclusion.pair_mask(samples, candidates)
    similarities = _float64_similarities(feats, candidates, samples).masked_fill_(struck, float("-inf"))
    values, indices = _order(similarities, candidates)
    return values[:, :k], indices[:, :k]


def _tree_search(
    feats: torch.Tensor,
    rows: torch.Tensor | None,
    k: int,
    exclusion: NeighborExclusion | None,
    admissible: torch.Tensor,
) -> NeighborGraph:
    """The float64 k-NN of :func:`_certified_float64_search`, from a k-d tree in few dimensions.

    A sample with ``n - admissible`` struck-out candidates (itself, its exclusion) has ``k``
    admissible ones among its ``k + n - admissible`` nearest in the tree; a few more are
    fetched. Their float64 similarities are ranked as everywhere in this module; the row is
    exact when its ``k``-th value beats what :meth:`InnerProductTree.nearest` proves the other
    samples stay at or below. Otherwise (ties or near-ties at the boundary) every sample that can reach the
    ``k``-th value is fetched (:meth:`InnerProductTree.reaching`) and ranked.
    """
    n = feats.shape[0]
    samples = torch.arange(n) if rows is None else rows
    tree = InnerProductTree(feats, workers=torch.get_num_threads())
    struck_out = n - admissible
    values = torch.empty(len(samples), k, dtype=torch.float64)
    indices = torch.empty(len(samples), k, dtype=torch.long)
    rows_per_chunk = max(1, TREE_QUERY_ELEMENTS // (k + TREE_SPARE + int(struck_out.max())))
    for chunk in torch.argsort(struck_out).split(rows_per_chunk):
        count = min(n, k + TREE_SPARE + int(struck_out[chunk].max()))
        candidates, unreached = tree.nearest(samples[chunk], count)
        values[chunk], indices[chunk] = _admissible_top_k(feats, samples[chunk], candidates, k, exclusion)
        unsure = chunk[values[chunk, k - 1] <= unreached]
        if len(unsure):
            candidates = tree.reaching(samples[unsure], values[unsure, k - 1])
            values[unsure], indices[unsure] = _admissible_top_k(
                feats, samples[unsure], candidates, k, exclusion
            )
    return NeighborGraph(indices, values)


def admissible_counts(n: int, exclusion: NeighborExclusion | None, device: torch.device) -> torch.Tensor:
    """(N,) number of candidates each of ``n`` samples may pick as neighbours (self never)."""
    if exclusion is None:
        return torch.full((n,), n - 1, device=device)
    return exclusion.to(device).admissible_counts()


def check_admissible(admissible: torch.Tensor, k: int) -> None:
    """Raise the error :func:`knn_graph` raises when some sample has fewer than ``k`` candidates."""
    if int(admissible.min()) < k:
        raise ValueError(
            f"Some samples have only {int(admissible.min())} admissible neighbours but k={k}; "
            "lower k or relax the neighbour exclusion."
        )


def _search(
    feats: torch.Tensor,
    rows: torch.Tensor | None,
    k: int,
    exclusion: NeighborExclusion | None,
    block_size: int | None,
    admissible: torch.Tensor,
) -> NeighborGraph:
    """The k-NN lists of ``rows`` (``None``: every sample); see :func:`knn_graph`."""
    if exclusion is not None:
        exclusion = exclusion.to(feats.device)
    block_size = block_size or DEFAULT_BLOCK_SIZE
    if _tree_search_applies(feats):
        return _tree_search(feats, rows, k, exclusion, admissible)
    if feats.dtype == torch.float64 and _float32_search_is_certifiable(feats):
        return _certified_float64_search(feats, rows, k, exclusion, block_size, admissible)
    if rows is None:
        best = _symmetric_search(feats, k, exclusion, block_size, feats.dtype)
    else:
        best = _rows_search(feats, rows, k, exclusion, block_size, feats.dtype)
    if feats.dtype == torch.float64:
        return NeighborGraph(best.indices, best.values)
    return NeighborGraph(best.indices, _float64_similarities(feats, best.indices, rows))


def knn_rows(
    feats: torch.Tensor,
    rows: torch.Tensor,
    k: int,
    exclusion: NeighborExclusion | None = None,
    block_size: int | None = None,
) -> NeighborGraph:
    """Rows ``rows`` of ``knn_graph(feats, k, exclusion)``, searched for those samples only.

    The same neighbours in the same order (ties by lower index), found in O(len(rows) N d)
    instead of O(N^2 d); the caller has checked that every sample has ``k`` candidates.
    """
    admissible = admissible_counts(feats.shape[0], exclusion, feats.device)[rows]
    return _search(feats, rows, k, exclusion, block_size, admissible)


def knn_graph(
    feats: torch.Tensor,
    k: int,
    exclusion: NeighborExclusion | None = None,
    block_size: int | None = None,
) -> NeighborGraph:
    """Exact k-NN graph of ``feats`` under the linear kernel ``<x_i, x_j>``, self excluded.

    The kernel is symmetric, so only tiles on and above the diagonal are computed; each
    tile updates the neighbour lists of its rows and, transposed, of its columns. That
    halves the dominant cost, the N^2 d multiply. Float64 input is searched in float32
    and certified exact in float64 (see :func:`_certified_float64_search`).

    Args:
        feats: (N, d) features, used as given (normalize them first if you want cosine).
        k: neighbours per sample.
        exclusion: further candidates to exclude (same episode, nearby frames).
        block_size: tile side; the default tile holds 16M similarities.

    Returns:
        The neighbour graph; see :class:`NeighborGraph` for the ordering guarantee.

    Raises:
        ValueError: if some sample has fewer than ``k`` admissible candidates.
    """
    admissible = admissible_counts(feats.shape[0], exclusion, feats.device)
    check_admissible(admissible, k)
    return _search(feats, None, k, exclusion, block_size, admissible)
