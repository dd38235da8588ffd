import pytest
import torch

from lerobot_cknna.metrics.svcca import (
    PrincipalSide,
    effective_rank,
    mean_correlation,
    principal_basis,
    standardize,
)


@pytest.mark.parametrize(("n", "d"), [(60, 5), (6, 40)])  # both Gram matrices: d x d and N x N
def test_principal_basis_is_the_leading_left_singular_vectors(n, d):
    x = standardize(torch.randn(n, d, generator=torch.Generator().manual_seed(n), dtype=torch.float64))
    basis, variances = principal_basis(x)
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    rank = effective_rank(variances)
    assert rank == min(n - 1, d)  # centring removes one direction when d >= N
    torch.testing.assert_close(variances[:rank], s[:rank] ** 2, rtol=1e-10, atol=0)
    # The same directions up to sign.
    torch.testing.assert_close(
        (basis[:, :rank] * u[:, :rank]).sum(dim=0).abs(), torch.ones(rank, dtype=torch.float64)
    )


def test_standardize_matches_platonic_rep():
    x = torch.tensor([[1.0, 5.0], [2.0, 5.0], [6.0, 5.0]], dtype=torch.float64)
    out = standardize(x)
    expected_first = (x[:, 0] - 3) / (x[:, 0].std() + 1e-8)
    torch.testing.assert_close(out[:, 0], expected_first)
    assert torch.equal(out[:, 1], torch.zeros(3, dtype=torch.float64))  # a constant column vanishes


def test_permuted_side_equals_the_side_of_permuted_rows():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(80, 12, generator=gen, dtype=torch.float64)
    b = a[:, :3] + torch.randn(80, 3, generator=gen, dtype=torch.float64)
    sigma = torch.randperm(80, generator=gen)
    side_a, side_b = PrincipalSide.of(a), PrincipalSide.of(b)
    moved, kept = mean_correlation(side_a, side_b.permuted(sigma), 10)
    searched, _ = mean_correlation(side_a, PrincipalSide.of(b[sigma]), 10)
    assert kept == 3
    assert moved == pytest.approx(searched, abs=1e-12)
    assert mean_correlation(side_a, side_b, 10)[0] > moved  # the true pairing correlates more
