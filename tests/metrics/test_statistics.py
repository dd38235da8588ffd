import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from lerobot_cknna.metrics.alignment import cknna, mutual_knn
from lerobot_cknna.metrics.knn import NeighborExclusion
from lerobot_cknna.metrics.permutation import null_samples_of_sets
from lerobot_cknna.metrics.statistics import FAST_ESTIMATORS, _episode_rows, assess, episode_pairing


def random_walks(n_episodes: int, length: int, dim: int, gen: torch.Generator) -> torch.Tensor:
    steps = torch.randn(n_episodes, length, dim, generator=gen, dtype=torch.float64)
    return steps.cumsum(dim=1).reshape(n_episodes * length, dim)


def episodes_of(n_episodes: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.arange(n_episodes).repeat_interleave(length), torch.arange(length).repeat(n_episodes)


def test_k_sweep_equals_separate_calls():
    gen = torch.Generator().manual_seed(0)
    a = F.normalize(torch.randn(300, 16, generator=gen, dtype=torch.float64), dim=-1)
    b = F.normalize(a[:, :4] + 0.3 * torch.randn(300, 4, generator=gen, dtype=torch.float64), dim=-1)
    out = assess(a, b, ks=(20, 5, 50, 10))
    assert [x.result.k for x in out["cknna"]] == [5, 10, 20, 50]
    for item in out["cknna"]:
        assert item.value == cknna(a, b, item.result.k).value
    for item in out["mutual_knn"]:
        assert item.value == mutual_knn(a, b, item.result.k).value


def test_independent_random_walks_are_not_significant_under_the_episode_null():
    episode, frame = episodes_of(12, 30)
    episode_rejections, row_rejections, tests = 0, 0, 0
    for seed in range(8):
        gen = torch.Generator().manual_seed(seed)
        a = F.normalize(random_walks(12, 30, 16, gen), dim=-1)
        b = F.normalize(random_walks(12, 30, 8, gen), dim=-1)
        by_episode = assess(a, b, episode_index=episode, frame_index=frame, n_permutations=49, seed=seed)
        by_row = assess(a, b, n_permutations=49, null_unit="row", seed=seed)
        for metric in ("cknna", "mutual_knn"):
            tests += 1
            episode_rejections += by_episode[metric][0].null.p_value <= 0.05
            row_rejections += by_row[metric][0].null.p_value <= 0.05
    # A valid test rejects about 5% of the time; the row null rejects every time.
    assert episode_rejections <= 3, episode_rejections
    assert row_rejections == tests
    assert any("overstates significance" in note for note in by_row["cknna"][0].warnings)


def test_planted_shared_latent_is_significant_under_the_episode_null():
    gen = torch.Generator().manual_seed(2)
    episode, frame = episodes_of(12, 40)
    latent = random_walks(12, 40, 3, gen)
    a = latent @ torch.randn(3, 32, generator=gen, dtype=torch.float64)
    a = a + 0.5 * torch.randn(a.shape, generator=gen, dtype=torch.float64)
    b = latent @ torch.randn(3, 8, generator=gen, dtype=torch.float64)
    b = b + 0.5 * torch.randn(b.shape, generator=gen, dtype=torch.float64)
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    out = assess(
        a,
        b,
        episode_index=episode,
        frame_index=frame,
        n_permutations=199,
        exclusion=NeighborExclusion(episode),
        interval_level=0.95,
    )
    item = out["cknna"][0]
    assert item.null.p_value == pytest.approx(1 / 200)
    assert item.null.calibrated > 0.2
    assert item.interval.low > item.null.mean
    assert item.interval.low < item.value < item.interval.high
    assert item.result.exclusion == "same episode"


def test_independent_features_land_inside_their_null():
    observed, null_means, p_values = [], [], []
    for seed in range(20):
        gen = torch.Generator().manual_seed(100 + seed)
        episode, frame = episodes_of(30, 4)
        a = F.normalize(torch.randn(120, 16, generator=gen, dtype=torch.float64), dim=-1)
        b = F.normalize(torch.randn(120, 8, generator=gen, dtype=torch.float64), dim=-1)
        item = assess(a, b, ks=(10,), episode_index=episode, frame_index=frame, n_permutations=50, seed=seed)
        observed.append(item["cknna"][0].value)
        null_means.append(item["cknna"][0].null.mean)
        p_values.append(item["cknna"][0].null.p_value)
    spread = np.std(observed)
    assert abs(np.mean(observed) - np.mean(null_means)) < spread
    assert np.mean(null_means) > 0.05  # k/N = 1/12: chance level is well above 0
    assert 0.2 < np.mean(p_values) < 0.8
    assert min(p_values) > 0.01 or sorted(p_values)[1] > 0.05


def test_few_episodes_enumerate_every_ordering():
    gen = torch.Generator().manual_seed(3)
    episode, frame = episodes_of(3, 30)
    a = torch.randn(90, 6, generator=gen, dtype=torch.float64)
    b = torch.randn(90, 4, generator=gen, dtype=torch.float64)
    item = assess(a, b, episode_index=episode, frame_index=frame, n_permutations=1000)["cknna"][0]
    # The 5 orderings other than the observed one; the observed is the 6th of the exact p-value.
    assert item.null.exact and len(item.null.samples) == 5
    assert item.value not in item.null.samples
    assert item.null.p_value in [i / 6 for i in range(1, 7)]
    assert item.null.p_value == (1 + sum(sample >= item.value for sample in item.null.samples)) / 6
    assert any("smallest attainable p-value is 0.17" in note for note in item.warnings)


def test_null_fields_follow_their_definitions():
    gen = torch.Generator().manual_seed(6)
    episode, frame = episodes_of(8, 15)
    a = random_walks(8, 15, 6, gen)
    b = a[:, :3] + random_walks(8, 15, 3, gen)
    null = assess(a, b, episode_index=episode, frame_index=frame, n_permutations=30, alpha=0.2)["cknna"][0]
    samples, value = np.array(null.null.samples), null.value
    null = null.null
    tau = np.sort(np.append(samples, value))[math.ceil(0.8 * 31) - 1]
    assert (null.alpha, null.threshold, null.left_out) == (0.2, tau, [])
    assert null.calibrated == pytest.approx(min(max((value - tau) / (1 - tau), 0), 1), rel=1e-12)
    assert null.p_value == (1 + (samples >= value).sum()) / 31
    assert null.chance_corrected == pytest.approx((value - samples.mean()) / (1 - samples.mean()), rel=1e-12)


def test_the_same_seed_and_episodes_draw_the_same_pairings_whatever_the_features():
    drawn = []

    def recording_null_samples(sets, pairings):
        drawn.append([sigma.tolist() for sigma in pairings])
        return null_samples_of_sets(sets, pairings)

    estimators = dataclasses.replace(FAST_ESTIMATORS, null_samples_of_sets=recording_null_samples)
    gen = torch.Generator().manual_seed(7)
    episode, frame = episodes_of(6, 12)
    b = random_walks(6, 12, 3, gen)
    for a, seed in ((random_walks(6, 12, 5, gen), 0), (random_walks(6, 12, 9, gen), 0), (b, 1)):
        assess(
            a,
            b,
            episode_index=episode,
            frame_index=frame,
            n_permutations=15,
            seed=seed,
            estimators=estimators,
        )
    assert drawn[0] == drawn[1] and drawn[0] != drawn[2] and len(drawn[0]) == 15


def test_episode_pairing_keeps_relative_time():
    episode = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1])
    frame = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    episodes = _episode_rows(episode, frame)
    sigma = episode_pairing(episodes, 8, (1, 0))
    # 5 frames take the 3-frame episode at times 0, .25, .5, .75, 1, i.e. frames 0, 0.5, 1, 1.5, 2,
    # rounded half to even (torch.round): 0, 0, 1, 2, 2.
    assert sigma[:5].tolist() == [5, 5, 6, 7, 7]
    # 3 frames take the 5-frame episode at times 0, .5, 1: frames 0, 2, 4.
    assert sigma[5:].tolist() == [0, 2, 4]
    assert sigma[5:].tolist() == [0, 2, 4]
    assert episode_pairing(episodes, 8, (0, 1)).tolist() == list(range(8))


def test_frames_out_of_order_are_sorted_within_episodes():
    episode = torch.tensor([0, 0, 0, 1, 1, 1])
    frame = torch.tensor([2, 0, 1, 1, 2, 0])
    episodes = _episode_rows(episode, frame)
    assert [rows.tolist() for rows in episodes] == [[1, 2, 0], [5, 3, 4]]
    assert episode_pairing(episodes, 6, (1, 0)).tolist() == [4, 5, 3, 2, 0, 1]


def test_statistics_need_episodes():
    a, b = torch.randn(50, 4), torch.randn(50, 3)
    with pytest.raises(ValueError, match="at least 2 episodes"):
        assess(a, b, n_permutations=10)
    with pytest.raises(ValueError, match="at least 2 episodes"):
        assess(a, b, interval_level=0.9, episode_index=torch.zeros(50))
    with pytest.raises(ValueError, match="at least 3 episodes"):
        assess(a, b, interval_level=0.9, episode_index=torch.arange(50) // 25)
    with pytest.raises(ValueError, match="one entry per sample"):
        assess(a, b, n_permutations=10, episode_index=torch.zeros(49))
    with pytest.raises(ValueError, match="null_unit"):
        assess(a, b, n_permutations=10, null_unit="frame", episode_index=torch.arange(50) // 10)


def test_row_null_needs_no_episodes_and_record_is_json_ready():
    import json

    gen = torch.Generator().manual_seed(4)
    a = torch.randn(80, 6, generator=gen, dtype=torch.float64)
    out = assess(
        a,
        a + 0.1 * torch.randn(80, 6, generator=gen, dtype=torch.float64),
        n_permutations=20,
        null_unit="row",
    )
    record = json.loads(json.dumps(out["cknna"][0].to_dict()))
    assert record["null"]["unit"] == "row" and record["interval"] is None
    assert record["null"]["p_value"] == pytest.approx(1 / 21)


def test_uncentred_features_are_flagged():
    gen = torch.Generator().manual_seed(5)
    state = torch.randn(200, 8, generator=gen, dtype=torch.float64) * 0.05 + 1.0
    item = assess(F.normalize(state, dim=-1), torch.randn(200, 4, generator=gen, dtype=torch.float64))
    assert any("far from centred" in note for note in item["cknna"][0].warnings)
