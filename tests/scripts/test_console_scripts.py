import json
from pathlib import Path

import torch

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.compare import ranking_obstacles
from lerobot_cknna.results.features_io import SavedFeatures, load_features, save_features
from lerobot_cknna.results.scoring import score_features, write_results
from tests.utils import REPO, assert_is_a_real_figure, console_script, episodic_features, table_rows


def test_score_positional_dir_and_overrides(tmp_path):
    save_features(tmp_path, episodic_features())
    done = console_script(
        "lerobot-cknna-score", str(tmp_path), "--cknna.k=5", "--cknna.n_permutations=20", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "cknna.json").read_text())
    assert record["k"] == 5 and len(record["headline"]["cknna"]["null"]["samples"]) == 20
    report = (tmp_path / "report.md").read_text()
    assert f"CKNNA is {record['headline']['cknna']['value']:.3f}" in report
    for name in ("cknna_k_sweep.png", "feat_a_projection.png"):
        assert_is_a_real_figure(tmp_path / name)
        assert f"({name})" in report


def test_score_over_horizons_and_sample_size(tmp_path):
    features = episodic_features(n_episodes=6, length=12)
    save_features(tmp_path, features)
    done = console_script(
        "lerobot-cknna-score",
        str(tmp_path),
        "--cknna.horizons=[0,2]",
        "--cknna.n_curve=[36,72]",
        "--cknna.n_permutations=5",
        "--cknna.k_sweep=[]",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "cknna.json").read_text())
    now, later = record["horizons"]
    assert now["cknna"]["value"] == record["headline"]["cknna"]["value"] and now["n_dropped"] == 0
    assert (later["horizon"], later["n"], later["n_dropped"]) == (2, 60, 12)
    assert [point["n"] for point in record["n_curve"]] == [36, 72]
    assert record["n_curve"][-1]["cknna"]["value"] == record["headline"]["cknna"]["value"]
    report = (tmp_path / "report.md").read_text()
    assert "## Over horizons" in report and "## Over sample size" in report
    assert table_rows(report, "h=2: state at t+2 (12 dropped)")[0][1:3] == ["60", "6"]
    for name in ("cknna_horizons.png", "cknna_n_curve.png"):
        assert_is_a_real_figure(tmp_path / name)
        assert f"({name})" in report
    done = console_script("lerobot-cknna-score", str(tmp_path), "--cknna.n_curve=[500]", cwd=tmp_path)
    assert done.returncode == 2 and "asks for N=[500] but only 72 samples" in done.stderr
    assert json.loads((tmp_path / "cknna.json").read_text()) == record


def test_score_with_a_ready_config(tmp_path):
    save_features(tmp_path, episodic_features())
    done = console_script(
        "lerobot-cknna-score",
        str(tmp_path),
        f"--config_path={REPO / 'configs/score_trajectories.yaml'}",
        "--cknna.n_permutations=10",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "cknna.json").read_text())
    assert record["exclusion"] == "same episode within 5 frames"
    assert record["feature_prep"]["feat_b"] == "standardize_l2"


def test_score_bad_input_exits_non_zero_with_a_message(tmp_path):
    done = console_script("lerobot-cknna-score", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2 and "No features.safetensors" in done.stderr
    assert not (tmp_path / "cknna.json").exists()
    save_features(tmp_path, episodic_features())
    done = console_script("lerobot-cknna-score", str(tmp_path), "--cknna.prep_b=zscore", cwd=tmp_path)
    assert done.returncode == 2 and "choose one of" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "cknna.json").exists()
    done = console_script("lerobot-cknna-score", cwd=tmp_path)
    assert done.returncode == 2 and "Give the run directory" in done.stderr and "Traceback" not in done.stderr


def test_demo_writes_both_runs_and_separates_them(tmp_path):
    done = console_script("lerobot-cknna-synthetic-demo", "--episodes=8", "--length=30", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    results = {
        path.parent.name.rsplit("_", 1)[1]: json.loads(path.read_text())
        for path in (tmp_path / "outputs/cknna").glob("*/*_demo_*/cknna.json")
    }
    assert set(results) == {"aligned", "independent"}
    assert results["aligned"]["headline"]["cknna"]["null"]["p_value"] < 0.05
    assert results["independent"]["headline"]["cknna"]["null"]["p_value"] > 0.05
    assert "synthetic" in done.stderr
    features = load_features(next((tmp_path / "outputs/cknna").glob("*/*_demo_aligned")))
    assert features.feat_a.shape == (240, 256) and features.feat_b.shape == (240, 8)


def test_lerobot_cknna_help_lists_the_eval_and_cknna_options(tmp_path):
    done = console_script("lerobot-cknna", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for option in (
        "--cknna.k",
        "--cknna.hook_path",
        "--cknna.max_samples",
        "--dataset.repo_id",
        "--eval.n_episodes",
    ):
        assert option in done.stdout, option


def scored_run(directory: Path, features: SavedFeatures, source: dict, **options) -> dict:
    save_features(directory, features)
    record = score_features(features, CKNNAConfig(n_permutations=20, **options), source)
    write_results(directory, record)
    return record


def test_compare_ranks_runs_on_the_same_samples_and_refuses_otherwise(tmp_path):
    same = episodic_features()
    noise_a = torch.randn(same.feat_a.shape, generator=torch.Generator().manual_seed(5))
    noise = SavedFeatures(noise_a, same.feat_b, same.episode_index, same.frame_index)
    aligned = scored_run(tmp_path / "aligned", same, {"policy": "lerobot/smolvla_libero", "category": "VLA"})
    unrelated = scored_run(
        tmp_path / "unrelated", noise, {"policy": "sac", "category": "VLA", "weights": "random"}
    )
    scored_run(tmp_path / "elsewhere", episodic_features(seed=3), {"policy": "act", "category": "IL"})

    done = console_script(
        "lerobot-cknna-compare", "unrelated", "aligned", "--output_dir=ranked", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "ranked/comparison.md").read_text()
    assert "Ranked by calibrated score" in text and "Not ranked" not in text
    (first,) = table_rows(text, "1")
    (second,) = table_rows(text, "2")
    assert first[1:3] == ["aligned", "lerobot/smolvla_libero"] and second[1] == "unrelated"
    assert f"| {aligned['headline']['cknna']['null']['calibrated']:.3f} |" in text
    assert f"| {unrelated['headline']['cknna']['value']:.3f} [" in text
    assert "random weights" in text.lower()
    assert_is_a_real_figure(tmp_path / "ranked/comparison.png", min_size=(800, 250))

    done = console_script(
        "lerobot-cknna-compare", "aligned", "unrelated", "elsewhere", "--output_dir=mixed", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "mixed/comparison.md").read_text()
    assert "**Not ranked.**" in text and "scored different samples" in text and "| Rank |" not in text
    assert [row[0] for row in table_rows(text, "elsewhere")] == ["elsewhere"]
    assert "Not ranked: The runs scored different samples" in done.stderr
    assert "span categories (IL, VLA)" in text


def test_compare_ranks_each_category_on_its_own(tmp_path):
    same = episodic_features()
    noise = torch.randn(same.feat_a.shape, generator=torch.Generator().manual_seed(5))
    scored_run(tmp_path / "vla_aligned", same, {"category": "VLA"})
    scored_run(tmp_path / "vla_noise", SavedFeatures(noise, same.feat_b, same.episode_index, same.frame_index),
               {"category": "VLA"})  # fmt: skip
    scored_run(tmp_path / "il_noise", SavedFeatures(-noise, same.feat_b, same.episode_index, same.frame_index),
               {"category": "IL"})  # fmt: skip

    done = console_script(
        "lerobot-cknna-compare", "vla_noise", "il_noise", "vla_aligned", "--output_dir=out", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "out/comparison.md").read_text()
    assert "Ranked by calibrated score within each category (IL, VLA)" in text
    assert [row[1] for row in table_rows(text, "1")] == ["il_noise", "vla_aligned"]
    assert [row[1] for row in table_rows(text, "2")] == ["vla_noise"]


def test_ranking_needs_the_same_samples_and_options():
    features = episodic_features(n_episodes=4, length=10)
    base = score_features(features, CKNNAConfig(n_permutations=0, interval_level=None))
    assert ranking_obstacles(["a", "b"], [base, base]) == []
    other_k = score_features(features, CKNNAConfig(k=5, n_permutations=0, interval_level=None))
    (reason,) = ranking_obstacles(["a", "b"], [base, other_k])
    assert reason.startswith("The runs used different k (a 10, b 5)")
    fewer = score_features(
        episodic_features(n_episodes=3, length=10), CKNNAConfig(n_permutations=0, interval_level=None)
    )
    (reason,) = ranking_obstacles(["a", "b"], [base, fewer])
    assert reason.startswith(
        "The runs scored different numbers of samples (a N=40, b N=30). CKNNA moves with N"
    )
    old = {key: value for key, value in base.items() if key != "samples_digest"}
    (reason,) = ranking_obstacles(["a", "old"], [base, old])
    assert reason.startswith("old: no samples digest")


def test_compare_bad_input_exits_2_with_a_message(tmp_path):
    scored_run(tmp_path / "a", episodic_features(n_episodes=4, length=10), {}, interval_level=None)
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken/cknna.json").write_text("{not json")
    for args, message in (
        (("a", "empty"), "No cknna.json in empty. Score the run first"),
        (("a",), "Give at least two run directories"),
        (("a", "broken"), "is not valid JSON"),
    ):
        done = console_script("lerobot-cknna-compare", *args, "--output_dir=out", cwd=tmp_path)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
        assert not (tmp_path / "out").exists()


def test_compare_with_success_rates_says_why_there_is_no_correlation_or_what_is_wrong(tmp_path):
    for name, seed in (("a", 0), ("b", 1)):
        scored_run(
            tmp_path / name, episodic_features(n_episodes=4, length=10, seed=seed), {}, interval_level=None
        )
    (tmp_path / "percent.csv").write_text("run,success_rate\na,40\n")
    done = console_script(
        "lerobot-cknna-compare", "a", "b", "--success=percent.csv", "--output_dir=out", cwd=tmp_path
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert (
        "--success percent.csv, line 2: success_rate 40 is outside [0, 1] (a percentage? write 0.4"
        in done.stderr
    )
    assert not (tmp_path / "out").exists()

    (tmp_path / "success.csv").write_text("run,success_rate\na,0.4\nb,0.9\n")
    done = console_script(
        "lerobot-cknna-compare", "a", "b", "--success=success.csv", "--output_dir=out", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "Task success: no correlation. Only 2 runs with a success rate" in done.stderr
    assert "**No correlation.** Only 2 runs" in (tmp_path / "out/comparison.md").read_text()
