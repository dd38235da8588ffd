import math

import torch

from lerobot_cknna.results.parity import REPLAY_PARITY_TOLERANCE, parity_summary, replay_parity_warning


def test_parity_is_the_worst_sample_by_its_definition():
    simulated_a = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    replayed_a = torch.tensor([[3.0, 4.0], [1.0, 1e-3], [0.0, -2.0]])
    simulated_b = torch.zeros(3, 8)
    replayed_b = simulated_b.clone()
    replayed_b[1, 5] = -0.25
    parity = parity_summary(simulated_a, replayed_a, simulated_b, replayed_b)
    # Row 2 is flipped: its difference is twice its norm; cosine -1.
    assert parity["n"] == 3
    assert math.isclose(parity["max_rel_diff_feat_a"], 2.0)
    assert math.isclose(parity["min_cosine_feat_a"], -1.0)
    assert parity["max_abs_diff_feat_b"] == 0.25
    assert parity["tolerance"] == REPLAY_PARITY_TOLERANCE and parity["agrees"] is False


def test_parity_agrees_within_the_tolerance_and_then_warns_of_nothing():
    simulated_a = torch.randn(5, 16, dtype=torch.float64)
    replayed_a = simulated_a * (1 + REPLAY_PARITY_TOLERANCE / 2)
    parity = parity_summary(simulated_a, replayed_a, torch.ones(5, 8), torch.ones(5, 8))
    assert parity["agrees"] and math.isclose(
        parity["max_rel_diff_feat_a"], REPLAY_PARITY_TOLERANCE / 2, rel_tol=1e-6
    )
    assert replay_parity_warning({**parity, "missing": 0}) is None


def test_a_disagreement_and_missing_frames_are_both_warned_of():
    parity = parity_summary(torch.eye(2), torch.eye(2).flip(0), torch.ones(2, 8), torch.ones(2, 8))
    warning = replay_parity_warning({**parity, "missing": 3})
    assert warning.startswith("Replay parity:")
    assert "differs from the simulation's by up to 1.41e+00 relative" in warning
    assert "3 samples had no recorded frame" in warning
