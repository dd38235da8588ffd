"""Alignment metrics between two feature sets of the same N samples.

CKNNA (Centered Kernel Nearest-Neighbor Alignment, Huh et al. 2024) is CKA restricted
to each sample's k nearest neighbours: the unbiased HSIC estimator (Song et al. 2012,
eq. 5) is applied to linear kernels masked to the neighbour pairs, as in the reference
implementation (minyoungg/platonic-rep ``metrics.py``)::

    K = A A^T, L = B B^T                 (linear kernels; features used as given)
    M_K[i, j] = j is among the k most similar samples to i under K (i itself excluded)
    kl = HSIC_u((M_K * M_L) o K, (M_K * M_L) o L)
    kk = HSIC_u(M_K o K, M_K o K),  ll = HSIC_u(M_L o L, M_L o L)
    CKNNA = kl / (sqrt(kk * ll) + eps),  eps = 1e-6

Here it is computed without any N x N matrix: an exact blocked kNN search, then the HSIC
terms from row sums, column sums and the masked entries alone (every HSIC_u term is one
of those), in float64. Memory is O(N * (d + k)).

Where this differs from the reference on purpose:

* ``k=None`` means every other sample (k = N - 1); the reference intends that but
  raises. With k = N - 1 CKNNA is unbiased linear CKA (up to ``eps``).
* When ``kk * ll <= 0`` (masked kernels are not PSD, so this can happen) the reference
  returns NaN; here it raises :class:`UndefinedAlignmentError` with what to change.
* Neighbour ties are broken by the lower sample index (the reference leaves them to
  ``torch.topk``), so results are reproducible on data with repeated states.

Values above 1 are possible (the masked kernels are neither symmetric nor PSD, and the
numerator and denominators use different masks); they are not "better than perfect".
"""

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from lerobot_cknna.metrics.knn import NeighborExclusion, NeighborGraph, knn_graph
from lerobot_cknna.metrics.neighbour_order import ORDER_METRIC_VALUES, ORDER_METRICS
from lerobot_cknna.metrics.svcca import SVCCA_COMPONENTS, PrincipalSide, mean_correlation

REFERENCE_EPS = 1e-6
# What ``--cknna.metrics`` can name: those read off the k-NN graphs (one value per k), then SVCCA (no k).
NEIGHBOUR_METRICS = ("cknna", "mutual_knn", *ORDER_METRICS)
ALIGNMENT_METRICS = (*NEIGHBOUR_METRICS, "svcca")
# Always computed: the report, the plots and lerobot-cknna-compare read them.
DEFAULT_METRICS = ("cknna", "mutual_knn")
# Elements checked for NaN and inf at once: torch.isfinite holds temporaries larger than its input.
FINITE_CHECK_ELEMENTS = 2**22


def check_metric_names(metrics, option: str = "metrics") -> None:
    """Check a list of metrics to report (``option`` names it in the message).

    Raises:
        ValueError: an unknown name, or cknna or mutual_knn left out.
    """
    unknown = [name for name in metrics if name not in ALIGNMENT_METRICS]
    if unknown:
        raise ValueError(
            f"{option} has unknown metric(s) {unknown}; valid names: {', '.join(ALIGNMENT_METRICS)}."
        )
    missing = [name for name in DEFAULT_METRICS if name not in metrics]
    if missing:
        raise ValueError(
            f"{option} must keep {' and '.join(DEFAULT_METRICS)} (the report, the plots and "
            f"lerobot-cknna-compare read them); it lacks {missing}. Add extra metrics beside them, e.g. "
            "--cknna.metrics='[cknna,mutual_knn,lcs_knn]'."
        )


class UndefinedAlignmentError(ValueError):
    """CKNNA is undefined for these features: a self-alignment HSIC term is not positive."""


@dataclass
class AlignmentResult:
    """One alignment score and everything needed to read it.

    Attributes:
        metric: one of :data:`ALIGNMENT_METRICS`, ``"cka"`` or ``"unbiased_cka"``.
        value: the score.
        n: number of samples.
        k: neighbours per sample (``None`` for CKA and SVCCA).
        hsic_kl: numerator HSIC term (CKNNA / CKA only).
        hsic_kk: feat-A self-alignment HSIC term.
        hsic_ll: feat-B self-alignment HSIC term.
        eps: the constant added to the denominator.
        exclusion: neighbour exclusion rule, if any.
        components: principal directions kept per side (SVCCA only).
        warnings: things a reader must know before trusting the value.
    """

    metric: str
    value: float
    n: int
    k: int | None = None
    hsic_kl: float | None = None
    hsic_kk: float | None = None
    hsic_ll: float | None = None
    eps: float | None = None
    exclusion: str | None = None
    components: int | None = None
    warnings: list[str] = field(default_factory=list)

    def __float__(self) -> float:
        return self.value

    def to_dict(self) -> dict:
        return asdict(self)


def as_features(feats, name: str) -> torch.Tensor:
    """Check one feature set and return it as a floating (N, d) tensor.

    Raises:
        ValueError: not 2-D, empty, non-finite, or every sample identical.
    """
    feats = torch.as_tensor(np.asarray(feats) if not isinstance(feats, torch.Tensor) else feats)
    if not feats.is_floating_point():
        feats = feats.double()
    if feats.ndim != 2 or feats.shape[0] == 0 or feats.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (N, d) matrix, got shape {tuple(feats.shape)}.")
    rows_per_chunk = max(1, FINITE_CHECK_ELEMENTS // feats.shape[1])
    bad_rows = torch.cat([(~torch.isfinite(chunk)).any(dim=1) for chunk in feats.split(rows_per_chunk)])
    if bad_rows.any():
        rows = bad_rows.nonzero()[:, 0].tolist()
        raise ValueError(
            f"{name} has non-finite values (NaN or inf) in {len(rows)} of {feats.shape[0]} samples "
            f"(first: {rows[:5]}). Drop those samples or fix the features that produced them."
        )
    if torch.equal(feats.amax(dim=0), feats.amin(dim=0)):
        raise ValueError(
            f"{name} is the same vector for every sample (zero variance), so it cannot align with "
            "anything. Check that the features really change from sample to sample."
        )
    return feats


def check_pair(feats_a, feats_b, k: int | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Validate a pair of feature sets and ``k``; return them as tensors on one device and ``k``.

    Raises:
        ValueError: with a message that says what to change.
    """
    a = as_features(feats_a, "feats_a")
    b = as_features(feats_b, "feats_b").to(a.device)
    n = a.shape[0]
    if b.shape[0] != n:
        raise ValueError(
            f"feats_a has {n} samples but feats_b has {b.shape[0]}; both must describe the same samples."
        )
    if n < 4:
        raise ValueError(f"The unbiased HSIC estimator needs at least 4 samples, got {n}. Collect more.")
    k = n - 1 if k is None else k
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
        raise ValueError(f"k must be an integer >= 2 (CKNNA needs at least two neighbours), got {k!r}.")
    if k > n - 1:
        raise ValueError(f"k={k} needs more than {k} samples, got N={n}. Use k <= {n - 1} or collect more.")
    return a, b, int(k)


@dataclass(frozen=True)
class HSICTerms:
    """The three unbiased-HSIC terms of CKNNA."""

    kl: float
    kk: float
    ll: float


def _pair_keys(graph: NeighborGraph, n: int) -> torch.Tensor:
    rows = torch.arange(graph.indices.shape[0], device=graph.indices.device)[:, None]
    return (rows * n + graph.indices).flatten()


def _masked_hsic(keys: torch.Tensor, x: torch.Tensor, y: torch.Tensor, n: int) -> float:
    """HSIC_u(M o X, M o Y) for a mask M given by its pair keys ``i * n + j``.

    ``x`` and ``y`` hold the entries of the symmetric kernels X and Y at those pairs.
    Song et al. (2012) eq. 5 needs only sum(X~ o Y~^T), the totals of X~ and Y~ and
    1^T X~ Y~ 1 = sum_l colsum(X~)_l rowsum(Y~)_l, all of which live on the mask.
    """
    if keys.numel() == 0:
        return 0.0
    rows, cols = keys // n, keys % n
    sorted_keys = keys.sort().values
    reverse = cols * n + rows
    position = torch.searchsorted(sorted_keys, reverse).clamp(max=len(sorted_keys) - 1)
    has_reverse = sorted_keys[position] == reverse
    trace_term = (x * y)[has_reverse].sum()
    col_x = torch.zeros(n, dtype=torch.float64, device=keys.device).index_add_(0, cols, x)
    row_y = torch.zeros(n, dtype=torch.float64, device=keys.device).index_add_(0, rows, y)
    value = trace_term + x.sum() * y.sum() / ((n - 1) * (n - 2)) - 2 * (col_x * row_y).sum() / (n - 2)
    return float(value / (n * (n - 3)))


def self_hsic(graph: NeighborGraph, n: int) -> float:
    """A graph's self-alignment term ``HSIC_u(M o K, M o K)`` (``kk`` or ``ll`` of CKNNA)."""
    sims = graph.similarities.flatten()
    return _masked_hsic(_pair_keys(graph, n), sims, sims, n)


def hsic_terms(
    graph_a: NeighborGraph, graph_b: NeighborGraph, n: int, self_terms: tuple[float, float] | None = None
) -> HSICTerms:
    """The CKNNA HSIC terms from two neighbour graphs over the same ``n`` samples.

    ``self_terms``: ``kk`` and ``ll`` where they are already known (they depend on one graph each).
    """
    keys_a, keys_b = _pair_keys(graph_a, n), _pair_keys(graph_b, n)
    sims_a, sims_b = graph_a.similarities.flatten(), graph_b.similarities.flatten()
    shared = torch.isin(keys_a, keys_b)
    sorted_b, order_b = keys_b.sort()
    in_b = order_b[torch.searchsorted(sorted_b, keys_a[shared])]
    return HSICTerms(
        kl=_masked_hsic(keys_a[shared], sims_a[shared], sims_b[in_b], n),
        kk=self_hsic(graph_a, n) if self_terms is None else self_terms[0],
        ll=self_hsic(graph_b, n) if self_terms is None else self_terms[1],
    )


def cknna_from_terms(terms: HSICTerms, eps: float = REFERENCE_EPS) -> float:
    """``kl / (sqrt(kk * ll) + eps)``.

    Raises:
        UndefinedAlignmentError: if ``kk`` or ``ll`` is not positive.
    """
    for name, term in (("feats_a", terms.kk), ("feats_b", terms.ll)):
        if term <= 0:
            raise UndefinedAlignmentError(
                f"The alignment is undefined here: the self-alignment HSIC of {name} is {term:.3g} "
                "(<= 0; masked kernels are not positive semi-definite). Increase k, or center and "
                "normalize the features (prep 'center_l2')."
            )
    return terms.kl / (math.sqrt(terms.kk * terms.ll) + eps)


def score_warnings(result: AlignmentResult) -> list[str]:
    """Warnings that follow from the numbers alone."""
    notes = []
    if result.k is not None and result.k / result.n > 0.05:
        notes.append(
            f"k/N = {result.k}/{result.n} = {result.k / result.n:.2f} is large: even independent "
            "features score well above 0 here, so read the value against its permutation null."
        )
    if result.metric == "cknna" and result.value > 1:
        notes.append(
            "CKNNA > 1: an artifact of masked, non-PSD kernels (often un-centred features such as "
            "raw proprioceptive state), not stronger-than-perfect alignment. Try prep 'center_l2'."
        )
    if result.metric == "cknna":
        scale = math.sqrt(result.hsic_kk * result.hsic_ll)
        if result.eps > 1e-3 * scale:
            notes.append(
                f"The reference's eps={result.eps:g} is not negligible against sqrt(kk*ll) = {scale:.3g}; "
                f"it shrinks the value by {100 * result.eps / (scale + result.eps):.2f}%. Pass eps=0 to drop it."
            )
    return notes


def centring_warnings(a: torch.Tensor, b: torch.Tensor) -> list[str]:
    """Warn when most of a feature set's energy is its mean (CKNNA tends to exceed 1 then)."""
    notes = []
    for name, feats in (("feats_a", a), ("feats_b", b)):
        mean = feats.mean(dim=0, dtype=torch.float64)
        share = float(mean.square().sum() / feats.norm(dim=1).double().square().mean())
        if share > 0.5:
            notes.append(
                f"{name} is far from centred ({100 * share:.0f}% of its energy is the mean): masked "
                "kernels then tend to push CKNNA above 1. Consider prep 'center_l2'."
            )
    return notes


def cknna_from_graphs(
    graph_a: NeighborGraph,
    graph_b: NeighborGraph,
    k: int,
    eps: float = REFERENCE_EPS,
    exclusion: NeighborExclusion | None = None,
    self_terms: tuple[float, float] | None = None,
) -> AlignmentResult:
    """CKNNA at ``k`` from neighbour graphs built with at least ``k`` neighbours (``self_terms``: see :func:`hsic_terms`)."""
    n = graph_a.indices.shape[0]
    terms = hsic_terms(graph_a.truncate(k), graph_b.truncate(k), n, self_terms)
    result = AlignmentResult(
        metric="cknna",
        value=cknna_from_terms(terms, eps),
        n=n,
        k=k,
        hsic_kl=terms.kl,
        hsic_kk=terms.kk,
        hsic_ll=terms.ll,
        eps=eps,
        exclusion=None if exclusion is None else exclusion.describe(),
    )
    result.warnings = score_warnings(result)
    return result


def mutual_knn_from_graphs(graph_a: NeighborGraph, graph_b: NeighborGraph, k: int) -> AlignmentResult:
    """Mutual kNN at ``k`` from neighbour graphs built with at least ``k`` neighbours."""
    n = graph_a.indices.shape[0]
    shared = torch.isin(_pair_keys(graph_a.truncate(k), n), _pair_keys(graph_b.truncate(k), n))
    return AlignmentResult(metric="mutual_knn", value=float(shared.sum()) / (n * k), n=n, k=k)


def cknna(
    feats_a,
    feats_b,
    k: int | None = 10,
    *,
    exclusion: NeighborExclusion | None = None,
    eps: float = REFERENCE_EPS,
) -> AlignmentResult:
    """CKNNA between two feature sets of the same samples (see the module docstring).

    Features are used as given: prepare them first (:mod:`lerobot_cknna.metrics.feature_prep`;
    the reference L2-normalizes).

    Args:
        feats_a: (N, d_a) features, e.g. a policy's condition embedding.
        feats_b: (N, d_b) features of the same samples, e.g. proprioceptive state.
        k: neighbours per sample; ``None`` for all N - 1.
        exclusion: neighbours to exclude besides self (same episode, nearby frames).
        eps: denominator constant; 1e-6 in the reference.

    Returns:
        An :class:`AlignmentResult`; ``float(result)`` or ``result.value`` is the score.

    Raises:
        ValueError: bad input (message says what to change).
        UndefinedAlignmentError: a self-alignment term is not positive.

    Example:
        >>> import torch
        >>> from lerobot_cknna import cknna
        >>> state = torch.randn(200, 8)
        >>> round(cknna(state, state).value, 3)
        1.0
    """
    a, b, k = check_pair(feats_a, feats_b, k)
    result = cknna_from_graphs(knn_graph(a, k, exclusion), knn_graph(b, k, exclusion), k, eps, exclusion)
    result.warnings += centring_warnings(a, b)
    return result


def mutual_knn(
    feats_a, feats_b, k: int = 10, *, exclusion: NeighborExclusion | None = None
) -> AlignmentResult:
    """Mean fraction of each sample's k nearest neighbours that the two feature sets share.

    Neighbours are by linear kernel on the features as given (self excluded), as in
    platonic-rep's ``mutual_knn``. Returns an :class:`AlignmentResult`.

    Example:
        >>> import torch
        >>> from lerobot_cknna import mutual_knn
        >>> state = torch.randn(200, 8)
        >>> mutual_knn(state, 2 * state, k=10).value  # the same neighbours on both sides
        1.0
    """
    a, b, k = check_pair(feats_a, feats_b, k)
    return mutual_knn_from_graphs(knn_graph(a, k, exclusion), knn_graph(b, k, exclusion), k)


def order_metrics_from_graphs(
    metric: str,
    graph_a: NeighborGraph,
    graph_b: NeighborGraph,
    ks: tuple[int, ...],
    exclusion: NeighborExclusion | None = None,
) -> list[AlignmentResult]:
    """``cycle_knn``, ``lcs_knn`` or ``edit_distance_knn`` at every k of ``ks`` (ascending) from two graphs."""
    n = graph_a.indices.shape[0]
    values = ORDER_METRIC_VALUES[metric](graph_a, graph_b, ks)
    rule = None if exclusion is None else exclusion.describe()
    return [
        AlignmentResult(metric=metric, value=float(value), n=n, k=k, exclusion=rule)
        for k, value in zip(ks, values, strict=True)
    ]


def _order_metric(
    metric: str, feats_a, feats_b, k: int, exclusion: NeighborExclusion | None
) -> AlignmentResult:
    a, b, k = check_pair(feats_a, feats_b, k)
    (result,) = order_metrics_from_graphs(
        metric, knn_graph(a, k, exclusion), knn_graph(b, k, exclusion), (k,), exclusion
    )
    return result


def cycle_knn(
    feats_a, feats_b, k: int = 10, *, exclusion: NeighborExclusion | None = None
) -> AlignmentResult:
    """Share of samples that a k-NN step in feat B, then one in feat A, can bring back to themselves.

    Sample ``i`` counts when some ``j`` among its k nearest neighbours in feat B has ``i``
    among its k nearest neighbours in feat A (platonic-rep's ``cycle_knn``; neighbours as in
    :func:`mutual_knn`). The order of the two sides matters, and identical features score
    below 1: a sample's neighbours need not list it among theirs (inner-product hubs).

    Example:
        >>> import torch
        >>> from lerobot_cknna.metrics.alignment import cycle_knn
        >>> _ = torch.manual_seed(0)
        >>> state, unrelated = torch.randn(200, 8), torch.randn(200, 8)
        >>> round(cycle_knn(state, 2 * state, k=10).value, 2), round(cycle_knn(state, unrelated, k=10).value, 2)
        (0.8, 0.37)
    """
    return _order_metric("cycle_knn", feats_a, feats_b, k, exclusion)


def lcs_knn(feats_a, feats_b, k: int = 10, *, exclusion: NeighborExclusion | None = None) -> AlignmentResult:
    """Mean longest common subsequence of the two ordered k-NN lists of each sample, over k.

    platonic-rep's ``lcs_knn`` reports the mean length itself; this is that divided by k,
    so that it lies in [0, 1] like the other metrics and reads the same at every k. 1 means
    the same neighbours in the same order; shared neighbours in another order count less.

    Example:
        >>> import torch
        >>> from lerobot_cknna.metrics.alignment import lcs_knn
        >>> state = torch.randn(200, 8)
        >>> lcs_knn(state, 3 * state, k=10).value
        1.0
    """
    return _order_metric("lcs_knn", feats_a, feats_b, k, exclusion)


def edit_distance_knn(
    feats_a, feats_b, k: int = 10, *, exclusion: NeighborExclusion | None = None
) -> AlignmentResult:
    """One minus the mean edit distance between the two ordered k-NN lists of each sample, over k.

    The Levenshtein distance (insertion, deletion, substitution each cost 1) between two
    lists of k neighbour indices is at most k, so the value lies in [0, 1]; as platonic-rep's
    ``edit_distance_knn``.

    Example:
        >>> import torch
        >>> from lerobot_cknna.metrics.alignment import edit_distance_knn
        >>> _ = torch.manual_seed(0)
        >>> state = torch.randn(200, 8)
        >>> edit_distance_knn(state, 3 * state, k=10).value  # a scale keeps inner-product neighbours
        1.0
        >>> round(edit_distance_knn(state, state + 1, k=10).value, 2)  # a shift reorders them
        0.11
    """
    return _order_metric("edit_distance_knn", feats_a, feats_b, k, exclusion)


def _linear_hsic_terms(a: torch.Tensor, b: torch.Tensor, unbiased: bool) -> float:
    """HSIC of the linear kernels A A^T and B B^T from d x d products, never N x N."""
    n = a.shape[0]
    if not unbiased:
        a_c, b_c = a - a.mean(dim=0), b - b.mean(dim=0)
        return float((a_c.T @ b_c).square().sum())
    norms_a, norms_b = a.square().sum(dim=1), b.square().sum(dim=1)
    # Column sums of K~ (K with zeroed diagonal): a_l . sum_i a_i - |a_l|^2.
    col_k = a @ a.sum(dim=0) - norms_a
    col_l = b @ b.sum(dim=0) - norms_b
    trace_term = (a.T @ b).square().sum() - (norms_a * norms_b).sum()
    value = trace_term + col_k.sum() * col_l.sum() / ((n - 1) * (n - 2)) - 2 * (col_k * col_l).sum() / (n - 2)
    return float(value / (n * (n - 3)))


def cka(feats_a, feats_b, unbiased: bool = False, eps: float = REFERENCE_EPS) -> AlignmentResult:
    """Linear CKA (biased, as in Kornblith et al. 2019, or with the unbiased HSIC).

    Computed from d x d products in O(N d^2) time and O(N d + d^2) memory, in float64.
    The reference normalization ``kl / (sqrt(kk * ll) + eps)`` is kept.

    Example:
        >>> import torch
        >>> from lerobot_cknna import cka
        >>> state = torch.randn(200, 8)
        >>> round(cka(state, state @ torch.linalg.qr(torch.randn(8, 8))[0]).value, 3)  # a rotation
        1.0
    """
    a, b, _ = check_pair(feats_a, feats_b, None)
    a, b = a.double(), b.double()
    kl = _linear_hsic_terms(a, b, unbiased)
    kk = _linear_hsic_terms(a, a, unbiased)
    ll = _linear_hsic_terms(b, b, unbiased)
    terms = HSICTerms(kl=kl, kk=kk, ll=ll)
    return AlignmentResult(
        metric="unbiased_cka" if unbiased else "cka",
        value=cknna_from_terms(terms, eps),
        n=a.shape[0],
        hsic_kl=kl,
        hsic_kk=kk,
        hsic_ll=ll,
        eps=eps,
    )


def svcca(feats_a, feats_b, components: int = SVCCA_COMPONENTS) -> AlignmentResult:
    """SVCCA: the mean canonical correlation between the leading principal directions of both sides.

    As platonic-rep's ``svcca`` (see :mod:`lerobot_cknna.metrics.svcca` for the steps and where
    this is exact where the reference approximates): each side is standardized, its
    ``components`` leading singular vectors are kept, and the value is the mean of the
    canonical correlations between the two sets. It has no k and no neighbour exclusion;
    ``result.components`` says how many directions were kept.

    Raises:
        ValueError: bad input, or ``components`` below 1.

    Example:
        >>> import torch
        >>> from lerobot_cknna.metrics.alignment import svcca
        >>> state = torch.randn(200, 8)
        >>> round(svcca(state, state @ torch.randn(8, 8)).value, 6)  # an invertible linear map
        1.0
    """
    a, b, _ = check_pair(feats_a, feats_b, None)
    if isinstance(components, bool) or not isinstance(components, int) or components < 1:
        raise ValueError(f"SVCCA needs at least one direction per side, got components={components!r}.")
    value, kept = mean_correlation(PrincipalSide.of(a), PrincipalSide.of(b), components)
    result = AlignmentResult(metric="svcca", value=value, n=a.shape[0], components=kept)
    wanted = min(components, a.shape[1], b.shape[1])
    if kept < wanted:
        result.warnings.append(
            f"SVCCA kept {kept} directions per side, not {wanted}: one side has only {kept} directions "
            "with non-negligible variance (constant or duplicated features)."
        )
    return result
