import numpy as np
import pytest
import torch

from lerobot_cknna.metrics.knn import NeighborGraph
from lerobot_cknna.metrics.neighbour_order import (
    cycle_knn_values,
    edit_distance_knn_values,
    lcs_knn_values,
)
from lerobot_cknna.testing import dense_reference


def graph_of(lists: list[list[int]]) -> NeighborGraph:
    indices = torch.tensor(lists)
    return NeighborGraph(indices, torch.zeros(indices.shape, dtype=torch.float64))


def test_hand_worked_lists():
    # Row 0: the same neighbours in reverse order; row 1: one neighbour replaced; row 2: shifted by one.
    a = graph_of([[1, 2, 3], [0, 2, 3], [3, 0, 1], [0, 1, 2]])
    b = graph_of([[3, 2, 1], [0, 2, 4], [0, 1, 3], [0, 1, 2]])
    ks = (1, 2, 3)
    # LCS of the k-prefixes per row: k=1: 0, 1, 0, 1; k=2: 1, 2, 1, 2; k=3: 1, 2, 2, 3.
    np.testing.assert_allclose(lcs_knn_values(a, b, ks), [2 / 4, 6 / 8, 8 / 12])
    # Edit distances: k=1: 1, 0, 1, 0; k=2: 1, 0, 2, 0; k=3: 2, 1, 2, 0.
    np.testing.assert_allclose(edit_distance_knn_values(a, b, ks), [1 - 2 / 4, 1 - 3 / 8, 1 - 5 / 12])


def test_cycle_follows_feat_b_then_feat_a():
    # In B, 0 points at 1; in A, 1 points back at 0 only from its second place.
    a = graph_of([[2, 1], [2, 0], [0, 1]])
    b = graph_of([[1, 2], [2, 0], [1, 0]])
    # k=1: 0->1 (B) then A(1)={2}: no; 1->2 then A(2)={0}: no; 2->1 then A(1)={2}: yes.
    # k=2: every cycle closes.
    np.testing.assert_allclose(cycle_knn_values(a, b, (1, 2)), [1 / 3, 1.0])


@pytest.mark.parametrize("seed", range(3))
def test_one_pass_over_the_longest_lists_equals_each_k_alone_and_the_textbook_programmes(seed):
    gen = torch.Generator().manual_seed(seed)
    n, k_max = 40, 12
    a = graph_of([torch.randperm(n, generator=gen)[:k_max].tolist() for _ in range(n)])
    # Feat B shares part of each list, in a perturbed order, so both metrics take many values.
    lists_b = []
    for row in a.indices.tolist():
        mixed = row[: k_max // 2] + torch.randperm(n, generator=gen)[:k_max].tolist()
        lists_b.append(
            list(dict.fromkeys(mixed[i] for i in torch.randperm(len(mixed), generator=gen)))[:k_max]
        )
    b = graph_of(lists_b)
    ks = (2, 5, 7, 12)
    for metric, textbook in (
        (lcs_knn_values, dense_reference.longest_common_subsequence),
        (edit_distance_knn_values, dense_reference.levenshtein),
    ):
        swept = metric(a, b, ks)
        for col, k in enumerate(ks):
            assert swept[col] == metric(a, b, (k,))[0]
            per_row = [textbook(x[:k], y[:k]) for x, y in zip(a.indices.tolist(), lists_b, strict=True)]
            expected = np.mean(per_row) / k
            assert swept[col] == pytest.approx(
                expected if metric is lcs_knn_values else 1 - expected, abs=1e-15
            )
