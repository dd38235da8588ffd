import copy

import pytest

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.horizons import score_horizons
from lerobot_cknna.results.layer_scoring import score_layers
from lerobot_cknna.results.report import HEADLINE_COLUMNS, write_report
from lerobot_cknna.results.sample_size import score_n_curve
from lerobot_cknna.results.scoring import score_features
from tests.utils import deepening_layers, episodic_features, labelled_features, table_rows

SOURCE = {
    "policy": "lerobot/act_aloha_sim_transfer_cube_human",
    "policy_type": "act",
    "category": "IL",
    "hook_path": "model.backbone",
    "weights": "other domain",
    "weights_note": "aloha",
    "mode": "replay",
    "data": "HuggingFaceVLA/libero",
}


@pytest.fixture(scope="module")
def record():
    features = labelled_features(n_episodes=7)
    features.task_index[-8:] = 3
    features.tasks.append("tiny task")
    return score_features(features, CKNNAConfig(n_permutations=20), SOURCE)


def test_headline_row_holds_the_record_numbers(tmp_path, record):
    path = write_report(tmp_path, record)
    assert path == tmp_path / "report.md"
    text = path.read_text()
    (header,) = table_rows(text, "Policy")
    assert header == list(HEADLINE_COLUMNS)
    (row,) = table_rows(text, SOURCE["policy"])
    cells = dict(zip(header, row, strict=True))
    head, null = record["headline"]["cknna"], record["headline"]["cknna"]["null"]
    interval = head["interval"]
    assert cells["CKNNA [interval]"] == f"{head['value']:.3f} [{interval['low']:.3f}, {interval['high']:.3f}]"
    assert cells["Null mean ± std"] == f"{null['mean']:.3f} ± {null['std']:.3f}"
    assert cells["p"] == f"{null['p_value']:.3g}" and cells["Calibrated"] == f"{null['calibrated']:.3f}"
    assert cells["Null threshold"] == f"{null['threshold']:.3f}"
    # The report leads with the calibrated score: first among the scores, and in the first sentence.
    assert header.index("Calibrated") < header.index("CKNNA [interval]")
    assert text.split("\n\n")[1].startswith(
        f"At k=10 over N=140 samples (7 episodes), the calibrated CKNNA is {null['calibrated']:.3f} (p = "
    )
    assert cells["Mutual kNN [interval]"].startswith(f"{record['headline']['mutual_knn']['value']:.3f} [")
    assert cells["N (episodes)"] == "140 (7)" and cells["k"] == "10" and cells["feat A dim"] == "32"
    assert (cells["Type"], cells["Category"]) == ("act", "IL")
    assert cells["Hook path"] == "`model.backbone`" and cells["Weights"] == "other domain (aloha)"
    assert f"CKNNA is {head['value']:.3f}" in text and "- data: HuggingFaceVLA/libero" in text


def test_sweep_and_group_tables(tmp_path, record):
    text = write_report(tmp_path, record).read_text()
    for result in record["k_sweep"]["cknna"]:
        (row,) = table_rows(text, str(result["k"]))
        assert row[1] == f"{result['null']['calibrated']:.3f}" and row[3].startswith(f"{result['value']:.3f}")
    assert "## By task (k=10)" in text and "## Successful vs failed episodes (k=10)" in text
    for group in record["groups"]["task"] + record["groups"]["outcome"]:
        (row,) = table_rows(text, group["name"])
        assert row[1:3] == [str(group["n"]), str(group["n_episodes"])]
        if group["skipped"]:
            assert row[3] == f"skipped: {group['skipped']}" and row[3].startswith(
                "skipped: N=8 too small for k=10"
            )
        else:
            assert row[3] == f"{group['cknna']['null']['calibrated']:.3f}"
            assert row[5].startswith(f"{group['cknna']['value']:.3f}")


def test_caveats_follow_the_record(tmp_path, record):
    text = write_report(tmp_path, record).read_text()
    caveats = text.split("## Caveats")[1]
    assert "No CKNNA value in this report exceeds 1" in caveats
    assert f"the null mean is {record['headline']['cknna']['null']['mean']:.3f} at k/N = 10/140" in caveats
    assert "another domain" in caveats and "random" not in caveats and "category: IL" in caveats
    assert all(f"- {warning}" in text.split("## Warnings")[1] for warning in record["warnings"])

    changed = copy.deepcopy(record)
    changed["k_sweep"]["cknna"][0]["value"] = 1.0731
    changed["source"]["weights"] = "random"
    caveats = write_report(tmp_path, changed).read_text().split("## Caveats")[1]
    assert "1 CKNNA value(s) in this report exceed 1 (up to 1.073)" in caveats
    assert "The weights are random: this number describes an untrained architecture" in caveats


def test_report_without_null_interval_or_source(tmp_path):
    record = score_features(labelled_features(), CKNNAConfig(n_permutations=0, interval_level=None))
    text = write_report(tmp_path, record, figures=[tmp_path / "cknna_k_sweep.png"]).read_text()
    (row,) = table_rows(text, "n/a")
    assert row[6:8] == ["n/a"] * 2 and row[8] == f"{record['headline']['cknna']['value']:.3f}"
    assert row[9:11] == ["n/a"] * 2
    assert "No permutation null was computed" in text and "weights' provenance was not recorded" in text
    assert "![cknna_k_sweep](cknna_k_sweep.png)" in text


def test_layer_sweep_section_lists_every_layer_and_the_best(tmp_path, record):
    layers = score_layers(deepening_layers(3), CKNNAConfig(k=5, n_permutations=10))
    text = write_report(tmp_path, record, layer_record=layers).read_text()
    section = text.split("## Per-layer scores")[1].split("\n## ")[0]
    rows = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in section.splitlines()[-3:]]
    assert [row[0] for row in rows] == ["0", "1", "2 (feat A)"]
    assert rows[1][1] == "`model.layers.1.input_layernorm`" and rows[1][2] == "input" and rows[1][3] == "24"
    best = layers["max_over_layers"]["cknna"]
    called = "The best layer by CKNNA is" if best["null"]["calibrated"] > 0 else "The highest CKNNA is at"
    assert f"{called} depth {best['layer']} (`{best['path']}`): {best['value']:.3f}" in section
    assert "against the null of the maximum over layers" in section and "10 permutations" in section
    assert "## Per-layer scores" not in write_report(tmp_path, record).read_text()


def test_horizon_and_sample_size_sections(tmp_path):
    features = episodic_features(n_episodes=5, length=12)
    cfg = CKNNAConfig(k=5, k_sweep=[5], horizons=[0, 4], n_curve=[30], n_permutations=5, interval_level=None)
    record = score_features(features, cfg)
    record["horizons"] = score_horizons(features, cfg)
    record["n_curve"] = score_n_curve(features, cfg)
    text = write_report(tmp_path, record).read_text()
    assert "- Feat B: state at t; 0 samples dropped for lacking it" in text and "- Sampling: all" in text
    (later,) = table_rows(text, "h=4: state at t+4 (20 dropped)")
    cknna = record["horizons"][1]["cknna"]
    assert later[1:3] == ["40", "5"] and later[3] == f"{cknna['null']['calibrated']:.3f}"
    assert later[5].startswith(f"{cknna['value']:.3f}")
    (point,) = table_rows(text, "30")
    assert point[1:3] == ["36", "3"]
    assert text.index("## Over horizons") < text.index("## Over sample size") < text.index("## Caveats")


def test_a_layer_is_called_best_only_above_the_null_of_the_maximum(tmp_path, record):
    layers = score_layers(deepening_layers(2), CKNNAConfig(k=5, n_permutations=10, interval_level=None))
    for calibrated, called in ((0.4, "The best layer by CKNNA is"), (0.0, "no layer is called best")):
        layers["max_over_layers"]["cknna"]["null"]["calibrated"] = calibrated
        section = (
            write_report(tmp_path, record, layer_record=layers).read_text().split("## Per-layer scores")[1]
        )
        assert called in section and f"calibrated {calibrated:.3f}" in section
    without_null = score_layers(deepening_layers(2), CKNNAConfig(k=5, n_permutations=0, interval_level=None))
    section = write_report(tmp_path, record, layer_record=without_null).read_text()
    assert "without a null no layer is called best" in section and "best layer" not in section
