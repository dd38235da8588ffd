import torch

from lerobot_cknna.metrics.knn import knn_graph
from lerobot_cknna.metrics.rank_terms import FILTER_BUCKETS, RankedGraph


def _rank_by_scan(indices: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    hits = indices[rows] == cols[:, None]
    return torch.where(hits.any(dim=1), hits.int().argmax(dim=1), indices.shape[1])


def test_rank_of_is_the_position_in_the_row_or_k():
    gen = torch.Generator().manual_seed(0)
    graph = knn_graph(torch.randn(3000, 6, generator=gen, dtype=torch.float64), 12)
    ranked = RankedGraph.build(graph)
    buckets = graph.indices % FILTER_BUCKETS
    shares_a_bucket = (buckets[:, :, None] == buckets[:, None, :]).sum(dim=(1, 2)) > 12
    assert shares_a_bucket.any() and not shares_a_bucket.all()
    rows = torch.randint(0, 3000, (20000,), generator=gen)
    cols = torch.cat([torch.randint(0, 3000, (10000,), generator=gen), graph.indices[rows[10000:], 3]])
    assert torch.equal(ranked.rank_of(rows, cols), _rank_by_scan(graph.indices, rows, cols))
    assert torch.equal(ranked.reverse_rank, _rank_by_scan(graph.indices, ranked.cols, ranked.rows))


def test_rank_of_under_a_relabelling_is_the_rank_of_the_relabelled_pair():
    gen = torch.Generator().manual_seed(1)
    graph = knn_graph(torch.randn(3000, 6, generator=gen, dtype=torch.float64), 12)
    ranked = RankedGraph.build(graph)
    sigma = torch.randperm(3000, generator=gen)
    rows, cols = ranked.rows, ranked.cols
    assert torch.equal(ranked.rank_of(rows, cols, sigma), ranked.rank_of(sigma[rows], sigma[cols]))
