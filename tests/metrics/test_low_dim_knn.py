import torch

from lerobot_cknna.metrics.knn import _float64_similarities
from lerobot_cknna.metrics.low_dim_knn import InnerProductTree


def _all_similarities(feats: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    everyone = torch.arange(len(feats)).expand(len(rows), -1)
    return _float64_similarities(feats, everyone, rows)


def _features() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    # Unequal norms (the lift matters) and duplicated rows (exact ties).
    feats = torch.randn(300, 6, generator=gen, dtype=torch.float64) * torch.rand(300, 1, generator=gen)
    return torch.cat([feats, feats[:30]])


def test_nearest_are_the_most_similar_and_the_rest_stay_below_the_bound():
    feats = _features()
    rows = torch.arange(0, len(feats), 7)
    indices, unreached = InnerProductTree(feats, workers=1).nearest(rows, 20)
    similarities = _all_similarities(feats, rows)
    for r in range(len(rows)):
        outside = torch.ones(len(feats), dtype=torch.bool)
        outside[indices[r]] = False
        assert similarities[r, outside].max() <= unreached[r]
        assert similarities[r, indices[r]].min() >= similarities[r, outside].max() - 1e-12


def test_every_sample_is_returned_when_asked_for_all():
    feats = _features()
    indices, unreached = InnerProductTree(feats, workers=1).nearest(torch.tensor([3]), len(feats))
    assert sorted(indices[0].tolist()) == list(range(len(feats)))
    assert unreached.tolist() == [float("-inf")]


def test_reaching_holds_every_sample_at_or_above_the_threshold():
    feats = _features()
    rows = torch.arange(0, len(feats), 11)
    similarities = _all_similarities(feats, rows)
    threshold = similarities.sort(dim=1, descending=True).values[:, 15]
    balls = InnerProductTree(feats, workers=2).reaching(rows, threshold)
    for r in range(len(rows)):
        reached = set(balls[r][balls[r] >= 0].tolist())
        assert set((similarities[r] >= threshold[r]).nonzero()[:, 0].tolist()) <= reached
