"""The alignment metrics written the obvious way, with full N x N matrices.

This is the definition, not the product: O(N^3) time and about a dozen N x N matrices.
It exists so the fast implementations in :mod:`lerobot_cknna.metrics.alignment` can be checked
against something written independently of them (tests, ``benchmarks/``). It follows
platonic-rep's ``metrics.py`` step by step, except that neighbour ties go to the lower
index (a stable sort), which is the tie rule the fast path documents.
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


def knn_mask(kernel: torch.Tensor, k: int, excluded: torch.Tensor | None = None) -> torch.Tensor:
    """N x N 0/1 mask of each row's k largest off-diagonal entries (ties: lower index first)."""
    scores = kernel.clone().fill_diagonal_(float("-inf"))
    if excluded is not None:
        scores[excluded] = float("-inf")
    order = torch.argsort(scores, dim=1, descending=True, stable=True)[:, :k]
    return torch.zeros_like(kernel).scatter_(1, order, 1.0)


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
