import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from lerobot_cknna.metrics import alignment
from lerobot_cknna.metrics.alignment import (
    ALIGNMENT_METRICS,
    UndefinedAlignmentError,
    check_metric_names,
    cka,
    cknna,
    cycle_knn,
    edit_distance_knn,
    lcs_knn,
    mutual_knn,
    svcca,
)
from lerobot_cknna.metrics.knn import NeighborExclusion
from lerobot_cknna.testing import dense_reference

ORDER_METRICS = (cycle_knn, lcs_knn, edit_distance_knn)
SIZES = [
    (5, 2),
    (5, 3),
    (6, 4),
    (17, 2),
    (17, 15),
    (64, 10),
    (64, 62),
    (300, 7),
    (300, 151),
    (1000, 10),
    (1000, 998),
    (2000, 10),
    (2000, 1998),
]


def related_pair(n: int, seed: int, d_a: int = 48, d_b: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """feat B partly explained by feat A, so that every HSIC term is far from zero."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d_a, generator=gen, dtype=torch.float64) + 0.5
    b = a[:, :d_b] @ torch.randn(d_b, d_b, generator=gen, dtype=torch.float64)
    b = b + 0.7 * torch.randn(n, d_b, generator=gen, dtype=torch.float64)
    return a, b


def assert_close(fast: float, dense: float, rel: float = 1e-9):
    assert math.isclose(fast, dense, rel_tol=rel, abs_tol=1e-13), (fast, dense)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize(("n", "k"), SIZES)
def test_cknna_equals_dense_definition(n, k, normalize):
    a, b = related_pair(n, seed=n + k)
    if normalize:
        a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    fast = cknna(a, b, k)
    dense = dense_reference.cknna(a, b, k)
    assert_close(fast.value, dense["value"])
    assert_close(fast.hsic_kl, dense["kl"])
    assert_close(fast.hsic_kk, dense["kk"])
    assert_close(fast.hsic_ll, dense["ll"])
    assert (fast.n, fast.k) == (n, k)


@pytest.mark.parametrize(("n", "k"), [(17, 5), (300, 10), (1000, 50)])
def test_mutual_knn_and_cka_equal_dense_definition(n, k):
    a, b = related_pair(n, seed=3 * n)
    assert_close(mutual_knn(a, b, k).value, dense_reference.mutual_knn(a, b, k))
    assert_close(cka(a, b).value, dense_reference.cka(a, b))
    assert_close(cka(a, b, unbiased=True).value, dense_reference.cka(a, b, unbiased=True))


def test_float32_input_matches_dense_float64_closely():
    a, b = related_pair(1500, seed=7)
    a32, b32 = F.normalize(a, dim=-1).float(), F.normalize(b, dim=-1).float()
    dense = dense_reference.cknna(a32.double(), b32.double(), 10)
    assert_close(cknna(a32, b32, 10).value, dense["value"], rel=1e-6)


def test_tiled_search_does_not_change_the_result(monkeypatch):
    from lerobot_cknna.metrics import knn

    a, b = related_pair(257, seed=11)
    whole = cknna(a, b, 9)
    monkeypatch.setattr(knn, "DEFAULT_BLOCK_SIZE", 7)  # 7 x 7 tiles, narrower than k, last one partial
    tiled = cknna(a, b, 9)
    # Same neighbours; kernel values may differ in the last bit (BLAS sums tiles in another order).
    assert_close(tiled.value, whole.value, rel=1e-14)
    assert_close(tiled.hsic_kl, whole.hsic_kl, rel=1e-14)


@pytest.mark.parametrize("window", [None, 3])
def test_neighbour_exclusion_equals_dense_definition(window):
    n, k = 240, 12
    a, b = related_pair(n, seed=5)
    episode = torch.arange(n) // 30
    frame = torch.arange(n) % 30
    excluded = episode[:, None] == episode[None, :]
    if window is not None:
        excluded &= (frame[:, None] - frame[None, :]).abs() <= window
    fast = cknna(a, b, k, exclusion=NeighborExclusion(episode, frame, window))
    dense = dense_reference.cknna(a, b, k, excluded=excluded)
    assert_close(fast.value, dense["value"])
    assert fast.exclusion == ("same episode" if window is None else "same episode within 3 frames")


def test_exact_ties_go_to_the_lower_index():
    # Quantized state with repeated rows: a robot at rest gives identical samples.
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, 3, (150, 4), generator=gen).double()
    b = torch.randint(0, 3, (150, 3), generator=gen).double()
    a[40:60] = a[40]
    fast = cknna(a, b, 10)
    dense = dense_reference.cknna(a, b, 10)
    assert_close(fast.value, dense["value"])
    assert_close(mutual_knn(a, b, 10).value, dense_reference.mutual_knn(a, b, 10))
    # The same input twice gives the same bits.
    assert cknna(a, b, 10).value == fast.value


def test_identical_features_give_one():
    a, _ = related_pair(500, seed=1)
    assert cknna(a, a, 10).value == pytest.approx(1.0, abs=1e-6)
    assert mutual_knn(a, a, 10).value == 1.0


def test_all_neighbours_is_unbiased_cka():
    a, b = related_pair(120, seed=2)
    assert cknna(a, b, None).k == 119
    assert_close(cknna(a, b, None).value, cka(a, b, unbiased=True).value)


def test_features_are_used_as_given():
    a, b = related_pair(200, seed=4)
    as_given = cknna(a, b).value
    assert as_given == pytest.approx(dense_reference.cknna(a.double(), b.double(), 10)["value"], rel=1e-9)
    assert as_given != pytest.approx(cknna(F.normalize(a, dim=-1), b).value)


def test_numpy_input_is_accepted():
    a, b = related_pair(100, seed=6)
    assert cknna(a.numpy(), b.numpy(), 5).value == cknna(a, b, 5).value


def test_float_and_dict_forms():
    a, b = related_pair(100, seed=8)
    result = cknna(a, b, 5)
    assert float(result) == result.value
    record = result.to_dict()
    assert record["metric"] == "cknna" and record["k"] == 5 and record["n"] == 100


def test_negative_self_alignment_raises_instead_of_nan():
    # One point opposite a cluster: its masked self-HSIC at k=3 is negative.
    a = torch.tensor([-1.0, 0.01, 0.0101, 0.0102, 0.05, 0.0501, 0.0502, 0.0503, 0.0504, 0.0505])[:, None]
    a = a.double()
    b = torch.randn(10, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    dense = dense_reference.cknna(a, b, 3)
    assert dense["kk"] < 0 < dense["ll"] and math.isnan(dense["value"])  # what the reference returns
    with pytest.raises(UndefinedAlignmentError, match="self-alignment HSIC of feats_a"):
        cknna(a, b, 3)
    assert dense_reference.cknna(a, a, 3)["value"] < 0  # the reference even scores a == a below 0
    with pytest.raises(UndefinedAlignmentError, match="Increase k"):
        cknna(a, a, 3)


@pytest.mark.parametrize(
    ("feats_a", "feats_b", "k", "message"),
    [
        (np.ones((10, 3)) + np.arange(10)[:, None], np.random.rand(9, 2), 3, "same samples"),
        (np.random.rand(3, 3), np.random.rand(3, 2), 2, "at least 4 samples"),
        (np.random.rand(10, 3), np.random.rand(10, 2), 10, r"Use k <= 9"),
        (np.random.rand(10, 3), np.random.rand(10, 2), 1, "k must be an integer >= 2"),
        (np.random.rand(10, 3), np.random.rand(10, 2), 2.5, "k must be an integer >= 2"),
        (np.full((10, 3), np.nan), np.random.rand(10, 2), 3, "non-finite"),
        (np.ones((10, 3)), np.random.rand(10, 2), 3, "zero variance"),
        (np.random.rand(10), np.random.rand(10, 2), 3, r"\(N, d\) matrix"),
    ],
)
def test_bad_input_says_what_to_change(feats_a, feats_b, k, message):
    with pytest.raises(ValueError, match=message):
        cknna(feats_a, feats_b, k)
    for metric in (mutual_knn, *ORDER_METRICS):
        if isinstance(k, int) and k >= 2:
            with pytest.raises(ValueError, match=message):
                metric(feats_a, feats_b, k)
    if "k" not in message:
        with pytest.raises(ValueError, match=message):
            svcca(feats_a, feats_b)


def test_too_few_candidates_after_exclusion():
    a, b = related_pair(40, seed=9)
    episode = torch.arange(40) // 20
    with pytest.raises(ValueError, match="admissible neighbours"):
        cknna(a, b, 25, exclusion=NeighborExclusion(episode))


def test_large_k_over_n_is_flagged():
    a, b = related_pair(20, seed=10)
    assert any("k/N" in note for note in cknna(a, b, 10).warnings)
    a, b = related_pair(2000, seed=10)
    assert not any("k/N" in note for note in cknna(a, b, 10).warnings)


@pytest.mark.parametrize(("n", "k"), [(5, 2), (17, 5), (64, 10), (200, 7), (120, 30)])
def test_order_metrics_equal_dense_definition(n, k):
    a, b = related_pair(n, seed=7 * n + k)
    for metric in ORDER_METRICS:
        fast = metric(a, b, k)
        assert_close(fast.value, getattr(dense_reference, metric.__name__)(a, b, k))
        assert (fast.metric, fast.n, fast.k) == (metric.__name__, n, k)
    # cycle_knn goes through feat B first: the sides are not interchangeable.
    assert_close(cycle_knn(b, a, k).value, dense_reference.cycle_knn(b, a, k))


@pytest.mark.parametrize("window", [None, 3])
def test_order_metrics_with_neighbour_exclusion_equal_dense_definition(window):
    n, k = 180, 8
    a, b = related_pair(n, seed=12)
    episode, frame = torch.arange(n) // 30, torch.arange(n) % 30
    excluded = episode[:, None] == episode[None, :]
    if window is not None:
        excluded &= (frame[:, None] - frame[None, :]).abs() <= window
    for metric in ORDER_METRICS:
        fast = metric(a, b, k, exclusion=NeighborExclusion(episode, frame, window))
        assert_close(fast.value, getattr(dense_reference, metric.__name__)(a, b, k, excluded))
        assert fast.exclusion is not None


def test_order_metrics_break_exact_ties_by_the_lower_index():
    # Repeated rows: the order of tied neighbours decides LCS and edit distance.
    gen = torch.Generator().manual_seed(3)
    a = torch.randint(0, 3, (120, 4), generator=gen).double()
    b = torch.randint(0, 3, (120, 3), generator=gen).double()
    a[30:50] = a[30]
    for metric in ORDER_METRICS:
        assert_close(metric(a, b, 10).value, getattr(dense_reference, metric.__name__)(a, b, 10))


def test_same_neighbours_in_the_same_order_score_one():
    a, _ = related_pair(300, seed=13)
    for metric in (lcs_knn, edit_distance_knn):
        assert metric(a, 2 * a, 10).value == 1.0
    # Not cycle_knn: a sample's neighbours need not list it among theirs (inner-product hubs).
    assert cycle_knn(a, 2 * a, 10).value == cycle_knn(a, a, 10).value < 1


@pytest.mark.parametrize(
    ("n", "d_a", "d_b", "components"), [(300, 48, 8, 10), (300, 48, 8, 3), (40, 200, 8, 10)]
)
def test_svcca_equals_dense_definition(n, d_a, d_b, components):
    a, b = related_pair(n, seed=n + d_a, d_a=d_a, d_b=d_b)
    fast = svcca(a, b, components)
    assert fast.components == min(components, d_a, d_b)
    assert_close(fast.value, dense_reference.svcca(a, b, fast.components))
    assert (fast.metric, fast.k, fast.warnings) == ("svcca", None, [])


def test_svcca_keeps_only_directions_with_variance():
    a, b = related_pair(200, seed=14)
    b = torch.cat([b, 3 * b[:, :2], torch.full((200, 1), 0.25)], dim=1)  # two copies and a constant
    fast = svcca(a, b)
    assert fast.components == 8
    assert any("kept 8 directions" in note for note in fast.warnings)
    assert_close(fast.value, dense_reference.svcca(a, b[:, :8], 8))


def test_svcca_is_invariant_to_invertible_maps_within_the_kept_directions():
    a, _ = related_pair(300, seed=15, d_b=6)
    mixed = a[:, :6] @ torch.randn(6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert svcca(a[:, :6], mixed, 6).value == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("components", [0, -1, 2.5, True])
def test_svcca_needs_a_whole_number_of_directions(components):
    a, b = related_pair(50, seed=16)
    with pytest.raises(ValueError, match="at least one direction"):
        svcca(a, b, components)


def test_metric_names_are_checked():
    check_metric_names(list(ALIGNMENT_METRICS))
    with pytest.raises(ValueError, match="valid names: cknna, mutual_knn, cycle_knn"):
        check_metric_names(["cknna", "mutual_knn", "lcs"], "--cknna.metrics")
    with pytest.raises(ValueError, match=r"must keep cknna and mutual_knn.*lacks \['mutual_knn'\]"):
        check_metric_names(["cknna", "svcca"])


def test_non_finite_samples_are_found_in_every_chunk_of_the_check(monkeypatch):
    monkeypatch.setattr(alignment, "FINITE_CHECK_ELEMENTS", 4 * 7)
    feats = torch.randn(50, 7, dtype=torch.float64)
    feats[3, 2], feats[41, 0], feats[49, 6] = float("nan"), float("inf"), float("-inf")
    with pytest.raises(ValueError, match=r"in 3 of 50 samples \(first: \[3, 41, 49\]\)"):
        alignment.as_features(feats, "feats_a")
