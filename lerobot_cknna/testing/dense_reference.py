"""The alignment metrics written the obvious way, with full N x N matrices.

This is the definition, not the product: O(N^3) time and about a dozen N x N matrices.
It exists so the fast implementations in :mod:`lerobot_cknna.metrics.alignment` can be checked
against something written independently of them (tests, ``benchmarks/``). It follows
platonic-rep's ``metrics.py`` step by step, except that neighbour ties go to the lower
index (a stable sort), which is the tie rule the fast path documents, that ``lcs_knn`` is
divided by k, and that SVCCA's singular vectors and CCA are exact (platonic-rep uses a
randomized SVD and sklearn's iterative CCA).
"""

import torch


def hsic_unbiased(kernel_x: torch.Tensor, kernel_y: torch.Tensor) -> torch.Tensor:
    """Unbiased HSIC estimator, Song et al. (2012) eq. 5, with dense matrices."""
    m = kernel_x.shape[0]
    x = kernel_x.clone().fill_diagonal_(0)
    y = kernel_y.clone().fill_diagonal_(0)
    value = (
        torch.sum(x * y.T)
        + torch.sum(x) * torch.sum(y) / ((m - 1) * (m - 2))
        - 2 * torch.sum(torch.mm(x, y)) / (m - 2)
    )
    return value / (m * (m - 3))


def hsic_biased(kernel_x: torch.Tensor, kernel_y: torch.Tensor) -> torch.Tensor:
    """Biased HSIC, trace(K H L H)."""
    h = torch.eye(kernel_x.shape[0], dtype=kernel_x.dtype) - 1 / kernel_x.shape[0]
    return torch.trace(kernel_x @ h @ kernel_y @ h)


def nearest(kernel: torch.Tensor, k: int, excluded: torch.Tensor | None = None) -> torch.Tensor:
    """(N, k) columns of each row's k largest off-diagonal entries, largest first (ties: lower index first)."""
    scores = kernel.clone().fill_diagonal_(float("-inf"))
    if excluded is not None:
        scores[excluded] = float("-inf")
    return torch.argsort(scores, dim=1, descending=True, stable=True)[:, :k]


def knn_mask(kernel: torch.Tensor, k: int, excluded: torch.Tensor | None = None) -> torch.Tensor:
    """N x N 0/1 mask of each row's k largest off-diagonal entries (ties: lower index first)."""
    return torch.zeros_like(kernel).scatter_(1, nearest(kernel, k, excluded), 1.0)


def cknna(
    feats_a: torch.Tensor,
    feats_b: torch.Tensor,
    k: int,
    excluded: torch.Tensor | None = None,
    eps: float = 1e-6,
) -> dict[str, float]:
    """CKNNA and its three HSIC terms. ``excluded`` is an N x N boolean of banned neighbours."""
    kernel_k = feats_a @ feats_a.T
    kernel_l = feats_b @ feats_b.T
    mask_k = knn_mask(kernel_k, k, excluded)
    mask_l = knn_mask(kernel_l, k, excluded)
    both = mask_k * mask_l
    kl = hsic_unbiased(both * kernel_k, both * kernel_l)
    kk = hsic_unbiased(mask_k * kernel_k, mask_k * kernel_k)
    ll = hsic_unbiased(mask_l * kernel_l, mask_l * kernel_l)
    value = kl / (torch.sqrt(kk * ll) + eps)
    return {"value": float(value), "kl": float(kl), "kk": float(kk), "ll": float(ll)}


def mutual_knn(feats_a: torch.Tensor, feats_b: torch.Tensor, k: int) -> float:
    """Mean fraction of shared k nearest neighbours."""
    both = knn_mask(feats_a @ feats_a.T, k) * knn_mask(feats_b @ feats_b.T, k)
    return float((both.sum(dim=1) / k).mean())


def cka(feats_a: torch.Tensor, feats_b: torch.Tensor, unbiased: bool = False, eps: float = 1e-6) -> float:
    """Linear CKA with dense kernels."""
    hsic = hsic_unbiased if unbiased else hsic_biased
    kernel_k, kernel_l = feats_a @ feats_a.T, feats_b @ feats_b.T
    kl, kk, ll = hsic(kernel_k, kernel_l), hsic(kernel_k, kernel_k), hsic(kernel_l, kernel_l)
    return float(kl / (torch.sqrt(kk * ll) + eps))


def neighbour_lists(feats: torch.Tensor, k: int, excluded: torch.Tensor | None = None) -> list[list[int]]:
    """Each sample's k nearest neighbours by linear kernel, nearest first (ties: lower index first)."""
    return nearest(feats @ feats.T, k, excluded).tolist()


def _paired_lists(feats_a, feats_b, k, excluded) -> list[tuple[list[int], list[int]]]:
    """Each sample's (feat A list, feat B list)."""
    return list(
        zip(neighbour_lists(feats_a, k, excluded), neighbour_lists(feats_b, k, excluded), strict=True)
    )


def cycle_knn(
    feats_a: torch.Tensor, feats_b: torch.Tensor, k: int, excluded: torch.Tensor | None = None
) -> float:
    """Share of samples i with some j in B's k-NN of i that has i in A's k-NN of j."""
    lists_a, lists_b = neighbour_lists(feats_a, k, excluded), neighbour_lists(feats_b, k, excluded)
    returns = [any(i in lists_a[j] for j in lists_b[i]) for i in range(len(lists_b))]
    return sum(returns) / len(returns)


def longest_common_subsequence(x: list[int], y: list[int]) -> int:
    """Textbook dynamic programme."""
    table = [[0] * (len(y) + 1) for _ in range(len(x) + 1)]
    for i in range(1, len(x) + 1):
        for j in range(1, len(y) + 1):
            if x[i - 1] == y[j - 1]:
                table[i][j] = table[i - 1][j - 1] + 1
            else:
                table[i][j] = max(table[i - 1][j], table[i][j - 1])
    return table[len(x)][len(y)]


def levenshtein(x: list[int], y: list[int]) -> int:
    """Textbook dynamic programme: insertion, deletion and substitution each cost 1."""
    table = [[i + j if i == 0 or j == 0 else 0 for j in range(len(y) + 1)] for i in range(len(x) + 1)]
    for i in range(1, len(x) + 1):
        for j in range(1, len(y) + 1):
            table[i][j] = min(
                table[i - 1][j] + 1,
                table[i][j - 1] + 1,
                table[i - 1][j - 1] + (x[i - 1] != y[j - 1]),
            )
    return table[len(x)][len(y)]


def lcs_knn(
    feats_a: torch.Tensor, feats_b: torch.Tensor, k: int, excluded: torch.Tensor | None = None
) -> float:
    """platonic-rep's mean LCS length of the ordered k-NN lists, divided by k."""
    lengths = [longest_common_subsequence(x, y) for x, y in _paired_lists(feats_a, feats_b, k, excluded)]
    return sum(lengths) / len(lengths) / k


def edit_distance_knn(
    feats_a: torch.Tensor, feats_b: torch.Tensor, k: int, excluded: torch.Tensor | None = None
) -> float:
    """platonic-rep's 1 - mean edit distance of the ordered k-NN lists / k."""
    distances = [levenshtein(x, y) for x, y in _paired_lists(feats_a, feats_b, k, excluded)]
    return 1 - sum(distances) / len(distances) / k


def svcca(feats_a: torch.Tensor, feats_b: torch.Tensor, components: int) -> float:
    """Standardize, keep ``components`` left singular vectors per side, mean correlation of the CCA pairs.

    CCA the textbook way: whiten each side with its covariance, take the SVD of the whitened
    cross-covariance, project both sides on the paired directions and correlate each pair.
    """

    def leading_singular_vectors(feats: torch.Tensor) -> torch.Tensor:
        centred = feats - feats.mean(dim=0)
        standardized = centred / (torch.std(centred, dim=0) + 1e-8)
        return torch.linalg.svd(standardized, full_matrices=False).U[:, :components]

    def inverse_sqrt(covariance: torch.Tensor) -> torch.Tensor:
        values, vectors = torch.linalg.eigh(covariance)
        return vectors @ torch.diag(values**-0.5) @ vectors.T

    x, y = leading_singular_vectors(feats_a.double()), leading_singular_vectors(feats_b.double())
    x, y = x - x.mean(dim=0), y - y.mean(dim=0)
    n = x.shape[0]
    whiten_x, whiten_y = inverse_sqrt(x.T @ x / (n - 1)), inverse_sqrt(y.T @ y / (n - 1))
    u, _, vh = torch.linalg.svd(whiten_x @ (x.T @ y / (n - 1)) @ whiten_y)
    variates_x, variates_y = x @ whiten_x @ u, y @ whiten_y @ vh.T
    correlations = [
        torch.corrcoef(torch.stack([variates_x[:, i], variates_y[:, i]]))[0, 1] for i in range(components)
    ]
    return float(torch.stack(correlations).mean())
