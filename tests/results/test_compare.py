"""Runs side by side: simulation runs are shown with their success rates and never ranked; best layers."""

import copy
import json

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.compare import SUCCESS_COLUMN, compare_runs, ranking_basis, ranking_obstacles
from lerobot_cknna.results.layer_scoring import LAYERS_FILE, score_layers
from lerobot_cknna.results.scoring import score_features, write_results
from tests.utils import deepening_layers, episodic_features, table_rows


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
