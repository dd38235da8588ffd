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


def canonical_correlations(
    feats_a: torch.Tensor, feats_b: torch.Tensor, components: int
) -> tuple[torch.Tensor, int]:
    """The canonical correlations between the leading principal directions of the two sides.

    Args:
        feats_a: (N, d_a) features.
        feats_b: (N, d_b) features of the same samples.
        components: directions to keep per side (platonic-rep's ``cca_dim``).

    Returns:
        The correlations, largest first, and the number of directions actually kept (see
        the module docstring for when it is below ``components``).
    """
    basis_a, variances_a = principal_basis(standardize(feats_a))
    basis_b, variances_b = principal_basis(standardize(feats_b))
    kept = min(components, effective_rank(variances_a), effective_rank(variances_b))
    correlations = torch.linalg.svdvals(basis_a[:, :kept].T @ basis_b[:, :kept])
    return correlations.clamp(max=1.0), kept
