import numpy as np
import pytest
import torch

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.horizons import score_horizons
from lerobot_cknna.results.layer_scoring import score_layers
from lerobot_cknna.results.plots import (
    null_band,
    plot_comparison,
    plot_groups,
    plot_horizons,
    plot_layer_curves,
    plot_layers,
    plot_n_curve,
    plot_success,
    principal_components,
    widest_state_dimension,
    write_plots,
)
from lerobot_cknna.results.sample_size import score_n_curve
from lerobot_cknna.results.scoring import score_features
from tests.utils import assert_is_a_real_figure, deepening_layers, episodic_features, labelled_features


@pytest.fixture(scope="module")
def scored():
    features = labelled_features()
    return features, score_features(
        features, CKNNAConfig(n_permutations=20), {"policy": "lerobot/pi05_libero"}
    )


def test_write_plots_writes_three_real_pngs(tmp_path, scored):
    features, record = scored
    paths = write_plots(tmp_path, features, record)
    assert [path.name for path in paths] == ["cknna_k_sweep.png", "cknna_groups.png", "feat_a_projection.png"]
    for path in paths:
        assert path.parent == tmp_path
        assert_is_a_real_figure(path)
    assert not list(tmp_path.glob(".*.tmp"))


def test_no_group_figure_without_groups(tmp_path):
    features = episodic_features()
    record = score_features(features, CKNNAConfig(n_permutations=0, interval_level=None))
    assert plot_groups(record, tmp_path / "groups.png") is None
    paths = write_plots(tmp_path, features, record)
    assert [path.name for path in paths] == ["cknna_k_sweep.png", "feat_a_projection.png"]
    for path in paths:
        assert_is_a_real_figure(path)


def test_skipped_groups_and_comparison_figure(tmp_path, scored):
    _, record = scored
    record = {
        **record,
        "groups": {
            "task": [
                *record["groups"]["task"],
                {
                    **record["groups"]["task"][0],
                    "skipped": "N=3 too small for k=10",
                    "cknna": None,
                    "mutual_knn": None,
                },
            ]
        },
    }
    assert_is_a_real_figure(plot_groups(record, tmp_path / "groups.png"))
    path = plot_comparison(["a", "b"], [record, record], tmp_path / "comparison.png", "two runs")
    assert_is_a_real_figure(path, min_size=(800, 250))


def test_principal_components_match_an_svd():
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(300, 6, generator=gen) * torch.tensor([5.0, 3.0, 1.0, 0.5, 0.2, 0.1])
    projection, share = principal_components(feats)
    centered = (feats - feats.mean(dim=0)).double().numpy()
    _, singular, vt = np.linalg.svd(centered, full_matrices=False)
    expected = centered @ vt[:2].T
    assert np.allclose(np.abs(projection), np.abs(expected), rtol=1e-4, atol=1e-4)
    assert share == pytest.approx(singular[:2] ** 2 / (singular**2).sum(), rel=1e-4)
    again, _ = principal_components(feats)
    assert np.array_equal(projection, again)


def test_widest_state_dimension_and_null_band():
    state = torch.randn(100, 8, generator=torch.Generator().manual_seed(0))
    state[:, 5] *= 10
    assert widest_state_dimension(state) == 5
    many = {"samples": list(np.linspace(0, 1, 101)), "mean": 0.5, "std": 0.3}
    assert null_band(many) == pytest.approx((0.025, 0.975))
    few = {"samples": [0.4, 0.6], "mean": 0.5, "std": 0.1}
    assert null_band(few) == pytest.approx((0.3, 0.7))


def test_layer_sweep_figures_one_policy_and_several(tmp_path):
    with_null = score_layers(
        deepening_layers(3), CKNNAConfig(k=5, n_permutations=10), {"policy": "tiny/smolvla"}
    )
    bare = score_layers(deepening_layers(2), CKNNAConfig(k=5, n_permutations=0, interval_level=None))
    assert plot_layers(with_null, tmp_path / "layers.png") == tmp_path / "layers.png"
    assert_is_a_real_figure(tmp_path / "layers.png")
    plot_layers(bare, tmp_path / "bare.png")
    assert_is_a_real_figure(tmp_path / "bare.png")
    path = plot_layer_curves({"smolvla": with_null, "act": bare}, tmp_path / "curves.png")
    assert path == tmp_path / "curves.png"
    assert_is_a_real_figure(path)
    assert not list(tmp_path.glob(".*.tmp"))


def record_over_horizons_and_n(n_permutations: int) -> tuple:
    features = episodic_features(n_episodes=5, length=12)
    cfg = CKNNAConfig(k=5, k_sweep=[5], horizons=[0, 3, 20], n_curve=[24, 60], n_permutations=n_permutations)
    record = score_features(features, cfg)
    record["horizons"] = score_horizons(features, cfg)
    record["n_curve"] = score_n_curve(features, cfg)
    return features, record


def test_horizon_and_n_curve_figures_skip_what_was_not_scored(tmp_path):
    features, record = record_over_horizons_and_n(n_permutations=5)
    assert record["horizons"][2]["skipped"] and record["n_curve"][0]["skipped"] is None
    paths = write_plots(tmp_path, features, record)
    assert [path.name for path in paths] == [
        "cknna_k_sweep.png",
        "cknna_horizons.png",
        "cknna_n_curve.png",
        "feat_a_projection.png",
    ]
    for path in paths:
        assert_is_a_real_figure(path)
    _, without_null = record_over_horizons_and_n(n_permutations=0)
    assert_is_a_real_figure(plot_n_curve(without_null, tmp_path / "no_null.png"))
    for item in record["horizons"]:
        item["skipped"] = "skipped for this test"
    assert plot_horizons(record, tmp_path / "none.png") is None
    assert (
        plot_n_curve({"n_curve": []}, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()
    )


def test_success_scatter_with_and_without_intervals(tmp_path, scored):
    _, record = scored
    result = record["headline"]["cknna"]

    def shifted(by: float) -> dict:
        interval = {
            **result["interval"],
            "low": result["interval"]["low"] + by,
            "high": result["interval"]["high"] + by,
        }
        return {**result, "value": result["value"] + by, "interval": interval}

    results = [
        result,
        shifted(-0.2),
        shifted(-0.1),
        {**result, "value": result["value"] - 0.3, "interval": None},
    ]
    path = plot_success(
        ["pi05", "act", "smolvla", "diffusion"], results, [0.9, 0.3, 0.6, 0.4], tmp_path / "s.png", "r"
    )
    assert path == tmp_path / "s.png"
    assert_is_a_real_figure(path, min_size=(1000, 700))
