"""The null and the jackknife read off the observed graphs equal the direct loops they replace."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

import lerobot_cknna.metrics.jackknife as jackknife_module
import lerobot_cknna.metrics.permutation as permutation_module
from lerobot_cknna.metrics.alignment import ALIGNMENT_METRICS, hsic_terms, mutual_knn_from_graphs
from lerobot_cknna.metrics.knn import NeighborExclusion, knn_graph, knn_rows
from lerobot_cknna.metrics.observed import Observed
from lerobot_cknna.metrics.rank_terms import RankedGraph, cross_terms, self_terms
from lerobot_cknna.metrics.statistics import (
    _episode_rows,
    _graph,
    _pairings,
    assess,
    assess_sets,
    jackknife_groups,
)
from lerobot_cknna.testing import dense_reference, reference_statistics
from lerobot_cknna.testing.reference_statistics import REFERENCE_ESTIMATORS

# Sums taken in another order: the CKNNA values agree to float64 rounding, never more loosely.
ROUNDING = 1e-12


def walks(lengths: list[int], dim: int, gen: torch.Generator) -> torch.Tensor:
    return torch.cat([torch.randn(n, dim, generator=gen, dtype=torch.float64).cumsum(dim=0) for n in lengths])


def episodes(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    episode = torch.cat([torch.full((n,), e) for e, n in enumerate(lengths)])
    return episode, torch.cat([torch.arange(n) for n in lengths])


def make_case(name: str):
    """(a, b, assess keyword arguments) for each kind of data the fast routes must get right."""
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    equal, unequal = [30] * 12, [20, 25, 30, 35, 22, 28, 40, 31]
    lengths = unequal if "unequal" in name else equal
    episode, frame = episodes(lengths)
    a, b = F.normalize(walks(lengths, 16, gen), dim=-1), F.normalize(walks(lengths, 8, gen), dim=-1)
    if "quantized" in name:  # exact ties everywhere, tie groups longer than any list
        a, b = torch.round(walks(lengths, 4, gen)), torch.round(walks(lengths, 3, gen) / 2)
    if "duplicated" in name:  # tie groups of two, across every k
        b[1::2] = b[0::2][: len(b[1::2])]
        a[3::4] = a[2::4][: len(a[3::4])]
    if "float32" in name:
        a, b = a.float(), b.float()
    options = {"ks": (3, 5, 10), "n_permutations": 30, "interval_level": 0.9, "seed": 7}
    if "row null" in name:
        options["null_unit"] = "row"
    if "episode exclusion" in name:
        options["exclusion"] = NeighborExclusion(episode)
    if "window" in name:
        options["exclusion"] = NeighborExclusion(episode, frame, 3)
    if "few episodes" in name:
        lengths = [40, 35, 45]
        episode, frame = episodes(lengths)
        a, b = walks(lengths, 6, gen), walks(lengths, 4, gen)
    return a, b, {"episode_index": episode, "frame_index": frame, **options}


CASES = [
    "continuous",
    "continuous episode exclusion",
    "continuous window float32",
    "quantized",
    "quantized episode exclusion",
    "duplicated",
    "duplicated window",
    "unequal lengths",
    "unequal lengths duplicated episode exclusion",
    "unequal lengths window",
    "unequal lengths quantized float32",
    "row null",
    "row null quantized",
    "few episodes",
]


@pytest.mark.parametrize("case", CASES)
def test_assessment_equals_the_reference_loops(case):
    a, b, options = make_case(case)
    fast = assess(a, b, **options)
    reference = assess(a, b, estimators=REFERENCE_ESTIMATORS, **options)
    for metric in fast:
        for new, old in zip(fast[metric], reference[metric], strict=True):
            assert new.value == old.value
            assert new.warnings == old.warnings
            assert new.null.p_value == old.null.p_value
            assert new.null.exact == old.null.exact and new.null.left_out == old.null.left_out
            assert new.null.threshold == pytest.approx(old.null.threshold, rel=0, abs=ROUNDING)
            # calibrated divides by 1 - threshold; the data's thresholds stay well below 1.
            assert new.null.calibrated == pytest.approx(old.null.calibrated, rel=0, abs=100 * ROUNDING)
            samples = np.array(new.null.samples)
            if metric == "mutual_knn":  # shared-neighbour counts: exact
                assert samples.tolist() == old.null.samples
            np.testing.assert_allclose(samples, old.null.samples, rtol=0, atol=ROUNDING)
            for end in ("low", "high", "standard_error"):
                assert getattr(new.interval, end) == pytest.approx(
                    getattr(old.interval, end), rel=0, abs=ROUNDING
                )


@pytest.mark.parametrize("case", CASES)
def test_every_null_sample_and_jackknife_estimate_equals_the_reference(case):
    a, b, options = make_case(case)
    ks, exclusion = options["ks"], options.get("exclusion")
    graph_a, graph_b = (_graph(feats, max(ks), exclusion, max(ks)) for feats in (a, b))
    rows = _episode_rows(options["episode_index"], options["frame_index"])
    pairings, _ = _pairings(options.get("null_unit", "episode"), rows, len(a), 30, np.random.default_rng(0))
    groups = jackknife_groups(rows, 20)
    observed = Observed(a, b, graph_a, graph_b, ks, exclusion, 1e-6)
    fast_null, fast_undefined = permutation_module.null_samples(observed, pairings)
    old_null, old_undefined = reference_statistics.null_samples(observed, pairings)
    fast_jack = jackknife_module.jackknife_estimates(observed, groups)
    old_jack = reference_statistics.jackknife_estimates(observed, groups)
    assert fast_undefined == old_undefined
    for metric in ("cknna", "mutual_knn"):
        np.testing.assert_array_equal(np.isnan(fast_null[metric]), np.isnan(old_null[metric]))
        np.testing.assert_allclose(fast_null[metric], old_null[metric], rtol=0, atol=ROUNDING)
        np.testing.assert_allclose(fast_jack[metric], old_jack[metric], rtol=0, atol=ROUNDING)
    np.testing.assert_array_equal(fast_null["mutual_knn"], old_null["mutual_knn"])
    np.testing.assert_array_equal(fast_jack["mutual_knn"], old_jack["mutual_knn"])


@pytest.mark.parametrize(
    "case",
    ["continuous", "duplicated window", "unequal lengths quantized float32", "quantized episode exclusion"],
)
def test_extra_metrics_under_every_route_equal_the_reference(case):
    # Routes: relabelled without re-sorting, re-sorted ties, rebuilt (unequal lengths: SVCCA
    # recomputes feat B's directions), and a jackknife that searches rows again.
    a, b, options = make_case(case)
    ks, exclusion = options["ks"], options.get("exclusion")
    graph_a, graph_b = (_graph(feats, max(ks), exclusion, max(ks)) for feats in (a, b))
    rows = _episode_rows(options["episode_index"], options["frame_index"])
    pairings, _ = _pairings("episode", rows, len(a), 10, np.random.default_rng(0))
    groups = jackknife_groups(rows, 6)
    observed = Observed(a, b, graph_a, graph_b, ks, exclusion, 1e-6, ALIGNMENT_METRICS)
    fast_null, _ = permutation_module.null_samples(observed, pairings)
    old_null, _ = reference_statistics.null_samples(observed, pairings)
    fast_jack = jackknife_module.jackknife_estimates(observed, groups)
    old_jack = reference_statistics.jackknife_estimates(observed, groups)
    for metric in ("cycle_knn", "lcs_knn", "edit_distance_knn"):  # read off identical lists: exact
        np.testing.assert_array_equal(fast_null[metric], old_null[metric])
        np.testing.assert_array_equal(fast_jack[metric], old_jack[metric])
    assert fast_null["svcca"].shape == (10, 1) and fast_jack["svcca"].shape == (6, 1)
    np.testing.assert_allclose(fast_null["svcca"], old_null["svcca"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(fast_jack["svcca"], old_jack["svcca"], rtol=0, atol=1e-10)


def _route_counts(monkeypatch) -> dict[str, int]:
    counts = {
        "rebuilt pairings": 0,
        "re-sorted pairings": 0,
        "expanded pairings": 0,
        "jackknife rows searched": 0,
    }

    def counted(name, function, size=lambda *args: 1):
        def wrapper(*args, **kwargs):
            counts[name] += size(*args)
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        permutation_module, "knn_graph", counted("rebuilt pairings", permutation_module.knn_graph)
    )
    monkeypatch.setattr(
        permutation_module, "_relabelled", counted("re-sorted pairings", permutation_module._relabelled)
    )
    monkeypatch.setattr(
        permutation_module, "_expanded", counted("expanded pairings", permutation_module._expanded)
    )
    monkeypatch.setattr(
        jackknife_module,
        "knn_rows",
        counted(
            "jackknife rows searched", jackknife_module.knn_rows, size=lambda feats, rows, *rest: len(rows)
        ),
    )
    return counts


@pytest.mark.parametrize(
    ("case", "route"),
    [
        ("continuous", "relabelled"),
        ("continuous episode exclusion", "relabelled"),
        ("continuous window float32", "relabelled"),
        ("duplicated", "re-sorted pairings"),
        ("duplicated window", "re-sorted pairings"),
        ("quantized", "rebuilt pairings"),
        ("unequal lengths", "expanded pairings"),
        ("unequal lengths duplicated episode exclusion", "expanded pairings"),
        ("unequal lengths window", "rebuilt pairings"),
        ("unequal lengths quantized float32", "rebuilt pairings"),
        ("row null", "relabelled"),
        ("row null quantized", "rebuilt pairings"),
    ],
)
def test_each_null_route_is_taken_where_it_is_exact(monkeypatch, case, route):
    a, b, options = make_case(case)
    counts = _route_counts(monkeypatch)
    assess(a, b, **options)
    taken = {name for name in ("rebuilt pairings", "re-sorted pairings", "expanded pairings") if counts[name]}
    assert taken == (set() if route == "relabelled" else {route})
    if route != "relabelled":
        assert counts[route] == options["n_permutations"]


@pytest.mark.parametrize(
    "case", ["unequal lengths", "unequal lengths duplicated episode exclusion", "unequal lengths quantized"]
)
def test_a_pairing_of_unequal_episodes_reads_feat_bs_graph_as_a_search_would_build_it(case):
    a, b, options = make_case(case)
    k_max, exclusion = max(options["ks"]), options.get("exclusion")
    graph_b = _graph(b, k_max, exclusion, k_max)
    rows = _episode_rows(options["episode_index"], options["frame_index"])
    pairings, _ = _pairings("episode", rows, len(b), 30, np.random.default_rng(0))
    for sigma in pairings:
        assert len(sigma.unique()) < len(sigma)  # rows repeated, others dropped
        expanded, searched = (
            permutation_module._expanded(b, graph_b, sigma, k_max, exclusion),
            knn_graph(b[sigma], k_max, exclusion),
        )
        assert torch.equal(expanded.indices, searched.indices)
        assert torch.equal(expanded.similarities, searched.similarities)


def test_jackknife_searches_again_only_the_rows_that_lost_their_list(monkeypatch):
    a, b, options = make_case("quantized episode exclusion")
    counts = _route_counts(monkeypatch)
    assess(a, b, **options)
    n_groups = len(torch.unique(options["episode_index"]))  # at most 20: one episode per group
    kept_rows = len(a) * (n_groups - 1)  # over every left-out group
    assert 0 < counts["jackknife rows searched"] < kept_rows / 4


@pytest.mark.parametrize("exclude", [False, True])
def test_jackknife_standard_error_equals_dense_leave_group_out(exclude):
    gen = torch.Generator().manual_seed(11)
    lengths = [18, 25, 21, 30, 16, 27, 24]
    episode, frame = episodes(lengths)
    a, b = F.normalize(walks(lengths, 12, gen), dim=-1), F.normalize(walks(lengths, 6, gen), dim=-1)
    exclusion = NeighborExclusion(episode) if exclude else None
    ks = (4, 8)
    out = assess(
        a, b, ks=ks, episode_index=episode, frame_index=frame, exclusion=exclusion, interval_level=0.9
    )
    groups = jackknife_groups(_episode_rows(episode, frame), 20)
    for col, k in enumerate(ks):
        estimates = []
        for dropped in groups:
            kept = torch.ones(len(a), dtype=torch.bool)
            kept[dropped] = False
            sub = episode[kept]
            excluded = sub[:, None] == sub[None, :] if exclude else None
            estimates.append(dense_reference.cknna(a[kept], b[kept], k, excluded)["value"])
        estimates = np.array(estimates)
        g = len(estimates)
        dense_se = np.sqrt((g - 1) / g * ((estimates - estimates.mean()) ** 2).sum())
        assert out["cknna"][col].interval.standard_error == pytest.approx(dense_se, rel=1e-9, abs=1e-12)
        assert out["cknna"][col].interval.groups == g


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("exclude", [False, True])
def test_knn_rows_equal_rows_of_the_full_graph(dtype, exclude):
    gen = torch.Generator().manual_seed(5)
    feats = torch.randn(300, 24, generator=gen, dtype=torch.float64)
    feats[1::5] = feats[0::5]  # ties
    feats = feats.to(dtype)
    episode = torch.arange(300) // 20
    exclusion = NeighborExclusion(episode, torch.arange(300) % 20, 2) if exclude else None
    rows = torch.tensor([0, 1, 7, 150, 299])
    full = knn_graph(feats, 12, exclusion, block_size=64)
    some = knn_rows(feats, rows, 12, exclusion, block_size=64)
    assert torch.equal(some.indices, full.indices[rows])
    torch.testing.assert_close(some.similarities, full.similarities[rows], rtol=0, atol=ROUNDING)


def test_terms_by_rank_equal_the_terms_of_each_k():
    gen = torch.Generator().manual_seed(9)
    a = torch.round(3 * torch.randn(400, 5, generator=gen, dtype=torch.float64))
    b = torch.round(2 * torch.randn(400, 3, generator=gen, dtype=torch.float64))
    ks = (2, 6, 15)
    graph_a, graph_b = knn_graph(a, 15), knn_graph(b, 15)
    ranked_a, ranked_b = RankedGraph.build(graph_a), RankedGraph.build(graph_b)
    ks_tensor = torch.tensor(ks)
    kl, shared = cross_terms(ranked_a, ranked_b, ks_tensor)
    kk, ll = self_terms(ranked_a, ks_tensor), self_terms(ranked_b, ks_tensor)
    for col, k in enumerate(ks):
        terms = hsic_terms(graph_a.truncate(k), graph_b.truncate(k), 400)
        np.testing.assert_allclose([kl[col], kk[col], ll[col]], [terms.kl, terms.kk, terms.ll], rtol=1e-12)
        assert shared[col] / (400 * k) == mutual_knn_from_graphs(graph_a, graph_b, k).value


@pytest.mark.parametrize(
    "case",
    ["continuous episode exclusion", "duplicated window", "unequal lengths window", "row null quantized"],
)
def test_sets_against_one_feat_b_equal_separate_assessments_and_search_feat_b_once_per_pairing(
    monkeypatch, case
):
    a, b, options = make_case(case)
    gen = torch.Generator().manual_seed(11)
    sets = [a, a + 0.3 * torch.randn(a.shape, generator=gen, dtype=a.dtype), a[:, : a.shape[1] // 2]]
    alone = [assess(each, b, **options) for each in sets]
    counts = _route_counts(monkeypatch)
    together = assess_sets(sets, b, **options)
    for separate, shared in zip(alone, together, strict=True):
        assert {metric: [item.to_dict() for item in items] for metric, items in shared.items()} == {
            metric: [item.to_dict() for item in items] for metric, items in separate.items()
        }
    searched = counts["rebuilt pairings"] + counts["re-sorted pairings"]
    assert searched in (0, options["n_permutations"])  # once per pairing, not once per set
    if "unequal" in case or "quantized" in case:
        assert counts["rebuilt pairings"] == options["n_permutations"]
