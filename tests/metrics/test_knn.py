import pytest
import torch

from lerobot_cknna.metrics import knn
from lerobot_cknna.metrics.knn import NeighborExclusion, knn_graph, knn_rows


def test_neighbours_are_ordered_and_prefixes_are_exact():
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(400, 12, generator=gen, dtype=torch.float64)
    graph = knn_graph(feats, 30)
    sims = feats @ feats.T
    sims.fill_diagonal_(float("-inf"))
    expected = torch.argsort(sims, dim=1, descending=True, stable=True)[:, :30]
    assert torch.equal(graph.indices, expected)
    torch.testing.assert_close(graph.similarities, sims.gather(1, expected))
    assert torch.equal(knn_graph(feats, 7).indices, graph.truncate(7).indices)


def test_float32_similarities_are_recomputed_in_float64():
    gen = torch.Generator().manual_seed(1)
    feats = torch.randn(100, 300, generator=gen)
    graph = knn_graph(feats, 5)
    assert graph.similarities.dtype == torch.float64
    exact = (feats.double()[:, None, :] * feats.double()[graph.indices]).sum(-1)
    torch.testing.assert_close(graph.similarities, exact, rtol=1e-12, atol=1e-12)


def test_ties_go_to_the_lower_index_whatever_the_block_size():
    feats = torch.tensor([[1.0, 0.0]] * 6 + [[0.0, 1.0]] * 4, dtype=torch.float64)
    for block_size in (1, 3, 10):
        graph = knn_graph(feats, 3, block_size=block_size)
        assert graph.indices[0].tolist() == [1, 2, 3]
        assert graph.indices[5].tolist() == [0, 1, 2]
        assert graph.indices[9].tolist() == [6, 7, 8]


def test_exclusion_masks_the_episode_or_a_window():
    episode = torch.tensor([0] * 5 + [1] * 5)
    frame = torch.arange(10) % 5
    feats = torch.cat([torch.arange(10.0)[:, None], torch.ones(10, 1)], dim=1)
    whole = knn_graph(feats, 3, NeighborExclusion(episode))
    assert all(episode[j] != episode[i] for i in range(10) for j in whole.indices[i])
    near = knn_graph(feats, 3, NeighborExclusion(episode, frame, window=1))
    for i in range(10):
        for j in near.indices[i]:
            assert episode[j] != episode[i] or abs(int(frame[j]) - int(frame[i])) > 1


def test_exclusion_window_needs_frames():
    with pytest.raises(ValueError, match="needs frame_index"):
        NeighborExclusion(torch.zeros(3), window=2)
    with pytest.raises(ValueError, match=">= 0 frames"):
        NeighborExclusion(torch.zeros(3), torch.zeros(3), window=-1)


def test_truncate_beyond_k_is_refused():
    graph = knn_graph(torch.randn(20, 3), 4)
    with pytest.raises(ValueError, match="built with k=4"):
        graph.truncate(5)


@pytest.mark.parametrize("window", [None, 0, 2])
def test_admissible_counts_match_the_mask(window):
    gen = torch.Generator().manual_seed(2)
    episode = torch.randint(0, 4, (60,), generator=gen)
    frame = torch.randint(0, 15, (60,), generator=gen)
    exclusion = NeighborExclusion(episode, frame, window)
    mask = exclusion.block_mask(slice(0, 60), slice(0, 60))
    mask.fill_diagonal_(True)
    assert exclusion.admissible_counts().tolist() == (~mask).sum(dim=1).tolist()


def dense_knn(feats: torch.Tensor, k: int) -> torch.Tensor:
    sims = feats @ feats.T
    sims.fill_diagonal_(float("-inf"))
    return torch.argsort(sims, dim=1, descending=True, stable=True)[:, :k]


def test_float64_differences_below_float32_resolution_are_still_exact(monkeypatch):
    # Neighbours whose similarities differ in the 10th digit: float32 (7 digits) cannot rank
    # them, so the certified (tiled) search must fall back to float64 for those rows.
    monkeypatch.setattr(knn, "LOW_DIM_MAX", 0)
    gen = torch.Generator().manual_seed(3)
    base = torch.randn(8, 16, generator=gen, dtype=torch.float64)
    feats = base.repeat_interleave(25, dim=0) + 1e-9 * torch.randn(
        200, 16, generator=gen, dtype=torch.float64
    )
    graph = knn_graph(feats, 10)
    assert torch.equal(graph.indices, dense_knn(feats, 10))
    coarse = knn_graph(feats.float(), 10)
    assert not torch.equal(coarse.indices.sort(dim=1).values, graph.indices.sort(dim=1).values)


def test_float64_search_without_the_float32_filter_gives_the_same_graph(monkeypatch):
    gen = torch.Generator().manual_seed(4)
    feats = torch.randn(300, 24, generator=gen, dtype=torch.float64)
    filtered = knn_graph(feats, 12)
    previous = torch.get_float32_matmul_precision()
    try:
        # lerobot-eval leaves TF32 on ("high"): the filter still runs in full float32, and says so after.
        torch.set_float32_matmul_precision("high")
        assert torch.equal(knn_graph(feats, 12).similarities, filtered.similarities)
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(previous)
    monkeypatch.setattr(knn, "_float32_search_is_certifiable", lambda feats: False)
    unfiltered = knn_graph(feats, 12)
    assert torch.equal(filtered.indices, unfiltered.indices)
    torch.testing.assert_close(filtered.similarities, unfiltered.similarities, rtol=1e-13, atol=1e-13)
    assert torch.equal(filtered.indices, dense_knn(feats, 12))


def _tied_and_duplicated(gen: torch.Generator) -> torch.Tensor:
    # Small integers: many exact ties, duplicated rows, unequal norms.
    return torch.randint(-2, 3, (600, 4), generator=gen).double()


def _unit_with_repeats(gen: torch.Generator) -> torch.Tensor:
    base = torch.randn(400, 8, generator=gen, dtype=torch.float64)
    feats = torch.cat([base, base[:40].repeat(5, 1)])
    return feats / feats.norm(dim=1, keepdim=True)


def _near_ties(gen: torch.Generator) -> torch.Tensor:
    base = torch.randn(20, 8, generator=gen, dtype=torch.float64).repeat_interleave(25, dim=0)
    return base + 1e-9 * torch.randn(500, 8, generator=gen, dtype=torch.float64)


@pytest.fixture
def tf32_on():
    """What lerobot-eval leaves in the process that scores a simulation (``allow_tf32 = True``)."""
    previous = torch.get_float32_matmul_precision()
    torch.backends.cuda.matmul.allow_tf32 = True
    yield
    torch.set_float32_matmul_precision(previous)


@pytest.mark.parametrize("make", [_tied_and_duplicated, _unit_with_repeats, _near_ties])
@pytest.mark.parametrize("window", ["none", "episode", 2])
def test_tree_route_gives_the_tiled_graph_bit_for_bit(make, window, monkeypatch, tf32_on):
    feats = make(torch.Generator().manual_seed(5))
    n = feats.shape[0]
    exclusion = None
    if window != "none":
        episode, frame = torch.arange(n) // 50, torch.arange(n) % 50
        exclusion = NeighborExclusion(episode, frame, None if window == "episode" else window)
    assert knn._tree_search_applies(feats)
    tree = knn_graph(feats, 40, exclusion)
    rows = torch.tensor([0, 7, 99, n - 1])
    tree_rows = knn_rows(feats, rows, 25, exclusion)
    monkeypatch.setattr(knn, "LOW_DIM_MAX", 0)
    assert not knn._tree_search_applies(feats)
    tiled = knn_graph(feats, 40, exclusion, block_size=128)
    assert torch.equal(tree.indices, tiled.indices)
    assert torch.equal(tree.similarities, tiled.similarities)
    tiled_rows = knn_rows(feats, rows, 25, exclusion, block_size=128)
    assert torch.equal(tree_rows.indices, tiled_rows.indices)
    assert torch.equal(tree_rows.similarities, tiled_rows.similarities)


def test_tree_route_matches_the_dense_definition_on_exact_ties():
    feats = _tied_and_duplicated(torch.Generator().manual_seed(6))
    assert torch.equal(knn_graph(feats, 30).indices, dense_knn(feats, 30))


def test_tree_route_is_for_float64_on_cpu_in_few_dimensions_only():
    assert knn._tree_search_applies(torch.zeros(4, knn.LOW_DIM_MAX, dtype=torch.float64))
    assert not knn._tree_search_applies(torch.zeros(4, knn.LOW_DIM_MAX + 1, dtype=torch.float64))
    # Float32 input is ranked by float32 similarities, which only the tiled search reproduces.
    assert not knn._tree_search_applies(torch.zeros(4, 8, dtype=torch.float32))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_running_top_k_over_tiles_is_a_stable_sort_of_the_whole_row(dtype):
    # Many exact ties (-0.0 among them, equal to +0.0) and -inf: the lower column wins every tie.
    gen = torch.Generator().manual_seed(5)
    sims = torch.randint(-2, 3, (50, 300), generator=gen).to(dtype) / 2
    sims[:, ::3] *= -1
    sims[:, ::7] = float("-inf")
    expected = torch.argsort(sims, dim=1, descending=True, stable=True)
    for k in (1, 7, 40, 150):
        for tile in (1, 13, 300):
            best = knn._RunningTopK(50, k, dtype, sims.device)
            for start in range(0, 300, tile):
                best.update(slice(0, 50), sims[:, start : start + tile], start)
            assert torch.equal(best.indices, expected[:, :k])
            assert torch.equal(best.values, sims.gather(1, expected[:, :k]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float64_similarities_do_not_depend_on_the_chunking(monkeypatch, dtype):
    gen = torch.Generator().manual_seed(6)
    feats = torch.randn(60, 37, generator=gen, dtype=dtype)
    indices = torch.randint(0, 60, (60, 9), generator=gen)
    rows = torch.randperm(60, generator=gen)
    # The definition, all rows in one product: every value is the same sum of the same products.
    expected = (feats.double()[indices] * feats.double()[rows][:, None, :]).sum(dim=-1)
    for elements in (1, 37 * 9 * 4, 10**6):
        monkeypatch.setattr(knn, "GATHER_ELEMENTS", elements)
        assert torch.equal(knn._float64_similarities(feats, indices, rows), expected)
