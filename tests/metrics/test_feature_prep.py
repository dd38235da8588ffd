import pytest
import torch

from lerobot_cknna.metrics.feature_prep import PREP_METHODS, FeaturePrep


def state_like(n: int = 64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    state = torch.randn(n, 8, generator=gen, dtype=torch.float64) * torch.tensor(
        [0.1] * 3 + [1.0] * 3 + [0.01] * 2
    )
    state[:, 6] = 0.04  # a gripper finger that never moves
    return state + torch.tensor([0.5, 0.0, 1.1, 3.1, 0.0, 0.0, 0.04, -0.04])


def test_l2_is_the_reference_default():
    feats = state_like()
    prepared = FeaturePrep()(feats)
    assert FeaturePrep().describe() == "l2"
    torch.testing.assert_close(prepared.norm(dim=1), torch.ones(64, dtype=torch.float64))
    torch.testing.assert_close(prepared, feats / feats.norm(dim=1, keepdim=True))


def test_center_l2_removes_the_mean_first():
    feats = state_like()
    centred = feats - feats.mean(dim=0)
    torch.testing.assert_close(FeaturePrep("center_l2")(feats), centred / centred.norm(dim=1, keepdim=True))


def test_standardize_gives_unit_variance_and_zeros_constant_dims():
    prepared = FeaturePrep("standardize")(state_like())
    torch.testing.assert_close(prepared.mean(dim=0), torch.zeros(8, dtype=torch.float64))
    std = prepared.std(dim=0)
    assert torch.all(prepared[:, 6] == 0)
    torch.testing.assert_close(std[[0, 1, 2, 3, 4, 5, 7]], torch.ones(7, dtype=torch.float64))
    both = FeaturePrep("standardize_l2")(state_like())
    torch.testing.assert_close(both, torch.nn.functional.normalize(prepared, dim=-1))
    torch.testing.assert_close(both.norm(dim=1), torch.ones(len(both), dtype=torch.float64))


def test_clamp_follows_the_reference_rule():
    feats = torch.tensor([[1.0, 2.0, 3.0, 100.0], [1.0, 1.0, 1.0, 1.0]])
    limit = torch.quantile(feats.abs(), 0.95, dim=1).mean()
    prepared = FeaturePrep("none", clamp_quantile=0.95)(feats)
    assert prepared.max() == pytest.approx(float(limit))
    assert FeaturePrep("l2", clamp_quantile=0.95).describe() == "clamp0.95+l2"


def test_none_is_identity_and_input_is_not_modified():
    feats = state_like()
    before = feats.clone()
    for method in PREP_METHODS:
        FeaturePrep(method)(feats)
    assert torch.equal(feats, before)
    assert torch.equal(FeaturePrep("none")(feats), feats)


def test_bad_options_say_what_to_choose():
    with pytest.raises(ValueError, match="choose one of none, l2"):
        FeaturePrep("zscore")
    with pytest.raises(ValueError, match=r"clamp_quantile must be in \(0, 1\]"):
        FeaturePrep(clamp_quantile=1.5)
