"""SVCCA as platonic-rep computes it: top principal directions of each side, then CCA between them.

platonic-rep's ``svcca(feats_A, feats_B, cca_dim=10)``:

1. standardize each side: subtract the column mean, divide by the column's unbiased standard
   deviation plus 1e-8;
2. keep the ``cca_dim`` leading left singular vectors of each side (``torch.svd_lowrank``,
   a randomized approximation);
3. fit ``sklearn``'s CCA with ``cca_dim`` components between the two sets of singular
   vectors and return the mean correlation of the paired canonical variates.

Note that it keeps a fixed number of directions (10), not the directions that explain 99%
of the variance as in the original SVCCA paper (Raghu et al. 2017). Both sets of singular
vectors are orthonormal and centred, so their canonical correlations are exactly the
singular values of ``U_a^T U_b`` (the cosines of the principal angles between the two
subspaces). That is what is computed here, exactly (an eigendecomposition of the d x d or
N x N Gram matrix, in float64) instead of by a randomized SVD and an iterative CCA.

The number of directions is ``min(components, d_a, d_b)``, lowered further when a side has
fewer directions whose variance exceeds :data:`RANK_TOLERANCE` times its largest (a constant
or duplicated feature): their singular vectors would be arbitrary. platonic-rep fails there
(``sklearn`` refuses more components than features, e.g. 10 on the 8-D LIBERO state).
"""

from dataclasses import dataclass

import torch

# platonic-rep's default number of kept directions (``cca_dim``).
SVCCA_COMPONENTS = 10
# platonic-rep adds this to each column's standard deviation before dividing.
STD_EPS = 1e-8
# Directions with less than this share of the leading direction's variance are degenerate.
RANK_TOLERANCE = 1e-10


def standardize(feats: torch.Tensor) -> torch.Tensor:
    """Centre each column and divide it by its unbiased standard deviation plus :data:`STD_EPS`, in float64."""
    feats = feats.double()
    centred = feats - feats.mean(dim=0)
    return centred / (centred.std(dim=0) + STD_EPS)


def principal_basis(standardized: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left singular vectors of ``standardized`` (N, d) and their variances, largest first.

    Computed from the smaller of the two Gram matrices: ``X^T X = V S^2 V^T`` gives
    ``U = X V / S``; ``X X^T = U S^2 U^T`` gives ``U`` directly.

    Returns:
        ``(U, S^2)``: (N, r) orthonormal columns and (r,) variances, ``r = min(N, d)``.
    """
    n, d = standardized.shape
    if d <= n:
        variances, vectors = torch.linalg.eigh(standardized.T @ standardized)
        variances, vectors = variances.flip(0), vectors.flip(1)
        return standardized @ vectors / variances.clamp(min=0).sqrt(), variances
    variances, basis = torch.linalg.eigh(standardized @ standardized.T)
    return basis.flip(1), variances.flip(0)


def effective_rank(variances: torch.Tensor) -> int:
    """How many directions carry more than :data:`RANK_TOLERANCE` of the leading direction's variance."""
    return int((variances > RANK_TOLERANCE * variances[0]).sum())


@dataclass(frozen=True)
class PrincipalSide:
    """One side's standardized leading directions.

    Attributes:
        basis: (N, r) orthonormal left singular vectors of the standardized features, leading first.
        rank: how many of them carry non-negligible variance (:func:`effective_rank`).
    """

    basis: torch.Tensor
    rank: int

    @classmethod
    def of(cls, feats: torch.Tensor) -> "PrincipalSide":
        basis, variances = principal_basis(standardize(feats))
        return cls(basis, effective_rank(variances))

    def permuted(self, sigma: torch.Tensor) -> "PrincipalSide":
        """The side of ``feats[sigma]`` for a permutation ``sigma`` (standardizing ignores row order)."""
        return PrincipalSide(self.basis[sigma], self.rank)


def mean_correlation(side_a: PrincipalSide, side_b: PrincipalSide, components: int) -> tuple[float, int]:
    """Mean canonical correlation of the first ``components`` directions (fewer where a rank is lower).

    Returns:
        The value and the number of directions kept.
    """
    kept = min(components, side_a.rank, side_b.rank)
    correlations = torch.linalg.svdvals(side_a.basis[:, :kept].T @ side_b.basis[:, :kept])
    return float(correlations.clamp(max=1.0).mean()), kept
