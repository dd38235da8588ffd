"""Runs side by side: simulation runs with their success rates and never ranked; best layers; token groups; other metrics."""

import copy
import json
from pathlib import Path

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.compare import SUCCESS_COLUMN, compare_runs, ranking_basis, ranking_obstacles
from lerobot_cknna.results.correlation import bootstrap_correlations
from lerobot_cknna.results.layer_scoring import LAYERS_FILE, score_layers
from lerobot_cknna.results.plots import SUCCESS_FILE, TOKEN_GROUPS_PLOT_FILE
from lerobot_cknna.results.scoring import score_features, write_results
from lerobot_cknna.results.success import correlation_text
from lerobot_cknna.results.token_groups import TOKEN_GROUPS_FILE, score_token_groups
from tests.utils import (
    assert_is_a_real_figure,
    deepening_layers,
    episodic_features,
    gathered_token_groups,
    labelled_features,
    table_rows,
)


def scored_record(mode: str, pc_success: float | None = None) -> dict:
    """The record of a run on the same episodic features, gathered in ``mode``."""
    data = {"suites": ["libero_spatial"], "n_episodes": 6, "pc_success": pc_success} if pc_success else {}
    source = {"policy": "tiny", "policy_type": "act", "category": "IL", "mode": mode, "data": data}
    return score_features(episodic_features(), CKNNAConfig(n_permutations=10), source)


def test_simulation_runs_are_side_by_side_with_success_rates_and_not_ranked(tmp_path):
    runs = {"act_sim": 50.0, "act_sim_again": 100 / 3}
    for name, pc_success in runs.items():
        (tmp_path / name).mkdir()
        write_results(tmp_path / name, scored_record("simulation", pc_success))
    report_path, _, obstacles = compare_runs([tmp_path / name for name in runs], tmp_path / "out")
    assert len(obstacles) == 1 and "simulation runs cannot be ranked" in obstacles[0]
    report = report_path.read_text()
    assert "**Not ranked.**" in report and f"| {SUCCESS_COLUMN} |" in report
    assert table_rows(report, "act_sim")[0][-1] == "50.0% of 6 episodes"
    assert table_rows(report, "act_sim_again")[0][-1] == "33.3% of 6 episodes"


def test_the_same_replayed_samples_are_ranked_and_a_simulation_among_them_stops_it():
    replayed = [scored_record("replay"), scored_record("replay")]
    assert ranking_obstacles(["a", "b"], replayed) == []
    (reason,) = ranking_obstacles(["a", "b", "c"], [*replayed, scored_record("simulation", 10.0)])
    assert reason.startswith("c: simulation runs cannot be ranked")


def test_runs_scored_before_schema_3_are_ranked_by_cknna_not_by_their_old_calibrated():
    run = scored_record("replay")
    assert ranking_basis([run, run]) == "calibrated score"
    old = copy.deepcopy(run)
    del old["headline"]["cknna"]["null"]["threshold"]
    assert ranking_basis([old, run]) == "CKNNA"


def test_a_layer_is_called_best_in_the_comparison_only_above_the_null_of_the_maximum(tmp_path):
    run = scored_record("replay")
    layers = score_layers(deepening_layers(2), CKNNAConfig(k=5, n_permutations=10, interval_level=None))
    for name, calibrated in (("above", 0.3), ("chance", 0.0)):
        (tmp_path / name).mkdir()
        write_results(tmp_path / name, run)
        layers["max_over_layers"]["cknna"]["null"]["calibrated"] = calibrated
        (tmp_path / name / LAYERS_FILE).write_text(json.dumps(layers))
    report = compare_runs([tmp_path / "above", tmp_path / "chance"], tmp_path / "out")[0].read_text()
    section = report.split("## Per-layer scores")[1]
    assert "| Best layer (max over layers) |" in section
    (above,) = table_rows(section, "above")
    (chance,) = table_rows(section, "chance")
    assert above[2].startswith("`model.layers.") and "calibrated 0.300" in above[2]
    assert chance[2].startswith("none above chance (highest `model.layers.")


def test_success_rates_join_from_simulation_and_csv_with_a_correlation_and_a_scatter(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = CKNNAConfig(n_permutations=0)  # no null: this is about success, kept cheap
    simulation = {"category": "VLA", "mode": "simulation", "data": {"n_episodes": 4, "pc_success": 80.0}}
    stopped = {"category": "VLA", "mode": "simulation", "data": {"n_episodes": 6, "pc_success": None}}
    replay = {"category": "VLA", "mode": "replay"}
    runs = {
        "sim": score_features(episodic_features(n_episodes=4, length=10, seed=1), config, simulation),
        # An evaluation that stopped early: its 6 scored episodes, 3 of them successful, count.
        "sim_stopped": score_features(labelled_features(n_episodes=6, length=10), config, stopped),
        **{
            f"replay_{seed}": score_features(episodic_features(4, 10, seed), config, replay)
            for seed in (2, 3, 4)
        },
    }
    for name, record in runs.items():
        (tmp_path / name).mkdir()
        write_results(tmp_path / name, record)
    csv = tmp_path / "success.csv"
    csv.write_text(f"run,success_rate\nreplay_2,0.1\n{tmp_path / 'replay_3'},0.35\n")

    report_path, _, _ = compare_runs([Path(name) for name in runs], tmp_path / "out", success_csv=csv)

    report = report_path.read_text()
    section = report[report.index("## Task success") : report.index("## Caveats")]
    rates = [0.8, 0.5, 0.1, 0.35]
    expected = bootstrap_correlations(
        [runs[name]["headline"]["cknna"]["value"] for name in list(runs)[:4]], rates
    )
    assert (
        f"Across the 4 runs with a success rate, headline CKNNA (at each run's k) and task success correlate "
        f"with {correlation_text(expected)} (95% percentile bootstrap over runs: 10000 resamples, seed 0; "
        f"{expected['pearson'].dropped} dropped"
    ) in section
    assert table_rows(section, "sim")[0][2:] == [
        "0.800",
        "simulation: LeRobot's evaluation of 4 episodes (pc_success)",
    ]
    assert table_rows(section, "sim_stopped")[0][2].startswith("0.500")
    assert table_rows(section, "replay_2")[0][2:] == ["0.100", f"--success {csv}"]
    assert table_rows(section, "replay_4")[0][2] == "n/a"
    assert f"![success vs CKNNA]({SUCCESS_FILE})" in section
    assert_is_a_real_figure(tmp_path / "out" / SUCCESS_FILE)

    # Without the file only the two simulations have a rate: a message instead, and no figure (not
    # even the earlier one).
    report_path, _, _ = compare_runs([Path(name) for name in list(runs)[:3]], tmp_path / "out")
    report = report_path.read_text()
    assert "**No correlation.** Only 2 runs with a success rate" in report
    assert not (tmp_path / "out" / SUCCESS_FILE).exists() and SUCCESS_FILE not in report


def test_token_groups_and_other_metrics_are_shown_per_run_with_a_figure(tmp_path):
    features, buffers = gathered_token_groups(tmp_path / "pi05")
    cfg = CKNNAConfig(k=5, k_sweep=[5], n_permutations=10, metrics=["cknna", "mutual_knn", "cycle_knn"])
    source = {"policy": "tiny", "policy_type": "pi05", "category": "VLA", "mode": "replay"}
    groups = score_token_groups(features, buffers.features(), cfg, source)
    write_results(tmp_path / "pi05", score_features(features, cfg, source))
    write_results(tmp_path / "pi05", groups, TOKEN_GROUPS_FILE)
    (tmp_path / "act").mkdir()
    write_results(tmp_path / "act", scored_record("replay"))
    report = compare_runs([tmp_path / "pi05", tmp_path / "act"], tmp_path / "out")[0].read_text()
    section = report.split("## Token groups")[1].split("\n## ")[0]
    rows = table_rows(section, "pi05")
    assert [row[1] for row in rows] == ["both (feat A)", "image", "language"] and not table_rows(
        section, "act"
    )
    for row, group in zip(rows, groups["groups"], strict=True):
        counts = group["tokens_per_sample"]
        assert row[2] == f"{counts['mean']:.1f} ({counts['min']}-{counts['max']})"
        assert row[3] == f"{group['cknna']['null']['calibrated']:.3f}"
        assert row[5].startswith(f"{group['cknna']['value']:.3f} [")
    assert "discretized state as text" in section and "(token_groups.png)" in section
    assert_is_a_real_figure(tmp_path / "out" / TOKEN_GROUPS_PLOT_FILE)
    others = report.split("## Other metrics")[1].split("\n## ")[0]
    (cycle,) = table_rows(others, "pi05")
    cycle_knn = score_features(features, cfg, source)["headline"]["cycle_knn"]
    assert cycle[1:3] == ["cycle_knn", "5"] and cycle[5].startswith(f"{cycle_knn['value']:.3f}")
    assert cycle[3] == f"{cycle_knn['null']['calibrated']:.3f}" and not table_rows(others, "act")


def test_runs_without_token_groups_or_other_metrics_have_neither_section(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        write_results(tmp_path / name, scored_record("replay"))
    report = compare_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "out")[0].read_text()
    assert "## Token groups" not in report and "## Other metrics" not in report
    assert not (tmp_path / "out" / TOKEN_GROUPS_PLOT_FILE).exists()
