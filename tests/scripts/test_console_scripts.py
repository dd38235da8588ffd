import json
import subprocess
import sys
from pathlib import Path

from lerobot_cknna.features_io import load_features, save_features
from tests.test_scoring import episodic_features

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def run(*args, cwd):
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_score_positional_dir_and_overrides(tmp_path):
    save_features(tmp_path, episodic_features())
    done = run("lerobot-cknna-score", str(tmp_path), "--cknna.k=5", "--cknna.n_permutations=20", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "cknna.json").read_text())
    assert record["k"] == 5 and len(record["headline"]["cknna"]["null"]["samples"]) == 20


def test_score_with_a_ready_config(tmp_path):
    save_features(tmp_path, episodic_features())
    done = run(
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
    done = run("lerobot-cknna-score", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2 and "No features.safetensors" in done.stderr
    assert not (tmp_path / "cknna.json").exists()
    save_features(tmp_path, episodic_features())
    done = run("lerobot-cknna-score", str(tmp_path), "--cknna.prep_b=zscore", cwd=tmp_path)
    assert done.returncode == 2 and "choose one of" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "cknna.json").exists()
    done = run("lerobot-cknna-score", cwd=tmp_path)
    assert done.returncode == 2 and "Give the run directory" in done.stderr and "Traceback" not in done.stderr


def test_demo_writes_both_runs_and_separates_them(tmp_path):
    done = run("lerobot-cknna-demo", "--episodes=8", "--length=30", cwd=tmp_path)
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


def test_lerobot_cknna_says_what_is_available(tmp_path):
    done = run("lerobot-cknna", "--help", cwd=tmp_path)
    assert done.returncode == 0 and "lerobot-cknna-score" in done.stdout
    assert run("lerobot-cknna", "--policy.path=x", cwd=tmp_path).returncode != 0
