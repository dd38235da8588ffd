"""Each run's success rate (simulation's own, or --success CSV), its origin, and the correlation with CKNNA."""

from pathlib import Path

import pytest

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.correlation import bootstrap_correlations
from lerobot_cknna.results.scoring import score_features
from lerobot_cknna.results.success import compare_success, read_success_csv, simulation_success
from tests.utils import episodic_features, labelled_features

QUICK = {"n_permutations": 0, "interval_level": None}


def run_record(mode: str, seed: int = 0, pc_success: float | None = None, category="VLA", **options) -> dict:
    """A record of 4 short episodes gathered in ``mode``, scored without null or interval (cheap)."""
    data = {"suites": ["libero_spatial"], "n_episodes": 8, "pc_success": pc_success}
    source = {"policy": "tiny", "category": category, "mode": mode, "data": data}
    features = episodic_features(n_episodes=4, length=10, seed=seed)
    return score_features(features, CKNNAConfig(**QUICK, **options), source)


def test_a_simulation_brings_lerobots_count_else_its_scored_episodes_and_a_replay_nothing():
    rate, origin = simulation_success(run_record("simulation", pc_success=62.5))
    assert rate == 0.625 and origin == "simulation: LeRobot's evaluation of 8 episodes (pc_success)"

    # An evaluation that stopped early records no overall rate: the scored episodes' outcomes count.
    labelled = labelled_features(n_episodes=6, length=10)  # episodes 0, 2, 4 succeed
    source = {"mode": "simulation", "data": {"n_episodes": 6, "pc_success": None}}
    rate, origin = simulation_success(score_features(labelled, CKNNAConfig(**QUICK), source))
    assert rate == 0.5 and origin.startswith("simulation: 3 of the 6 scored episodes succeeded")

    # A dataset's success labels are the demonstrations', not the policy's.
    replayed = score_features(labelled, CKNNAConfig(**QUICK), {"mode": "replay"})
    assert replayed["groups"]["outcome"] and simulation_success(replayed) is None


def test_csv_names_runs_by_path_or_directory_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_dirs = [Path("runs/act"), Path("runs/smolvla"), tmp_path / "elsewhere/pi0", Path("runs/diffusion")]
    csv = tmp_path / "success.csv"
    csv.write_text(
        f"\ufeffrun, success_rate ,note\nruns/act,0.5,first\nsmolvla, 0.25,\n{tmp_path / 'elsewhere/pi0'},1,\n",
        encoding="utf-8",
    )
    assert read_success_csv(csv, run_dirs) == {0: 0.5, 1: 0.25, 2: 1.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no column run, success_rate in the header (empty)"),
        ("name,rate\nact,0.5\n", "no column run, success_rate in the header (name, rate)"),
        ("run,rate\nact,0.5\n", "no column success_rate"),
        ("run,success_rate\n", "has a header but no rows"),
        (
            "run,success_rate\nppo,0.5\n",
            "line 2: run 'ppo' is none of the runs compared (runs/act, b/act, runs/pi0)",
        ),
        (
            "run,success_rate\nact,0.5\n",
            "line 2: run 'act' names 2 runs (runs/act, b/act); give its path instead",
        ),
        (
            "run,success_rate\nruns/pi0,0.5\npi0,0.6\n",
            "line 3: run 'pi0' already has a success rate (line 2)",
        ),
        (
            "run,success_rate\npi0,62\n",
            "success_rate 62 is outside [0, 1] (a percentage? write 0.62 for 62%)",
        ),
        ("run,success_rate\npi0,-0.1\n", "success_rate -0.1 is outside [0, 1]."),
        ("run,success_rate\npi0,nan\n", "success_rate nan is outside [0, 1]"),
        ("run,success_rate\npi0,high\n", "success_rate 'high' is not a number"),
        ("run,success_rate\npi0\n", "success_rate '' is not a number"),
        ("run,success_rate\n,0.5\n", "line 2: the run is empty"),
    ],
)
def test_a_bad_csv_says_which_line_and_what_to_change(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    csv = tmp_path / "success.csv"
    csv.write_text(text)
    with pytest.raises(ValueError, match="^--success ") as error:
        read_success_csv(csv, [Path("runs/act"), Path("b/act"), Path("runs/pi0")])
    assert message in str(error.value)


def test_a_missing_csv_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="--success .*nothing.csv: no such file"):
        read_success_csv(tmp_path / "nothing.csv", [tmp_path])


def test_the_csv_joins_and_replaces_and_the_correlation_is_of_headline_cknna(tmp_path):
    records = [
        run_record("simulation", seed=0, pc_success=62.5),
        run_record("replay", seed=1),
        run_record("replay", seed=2, category="IL", k=5),
        run_record("replay", seed=3),
        run_record("replay", seed=4),
    ]
    labels = ["sim", "a", "b", "c", "unrated"]
    run_dirs = [tmp_path / label for label in labels]
    csv = tmp_path / "success.csv"
    csv.write_text("run,success_rate\nsim,0.9\na,0.1\nb,0.4\nc,0.7\n")

    success = compare_success(labels, run_dirs, records, csv)

    assert [run.success_rate for run in success.runs] == [0.9, 0.1, 0.4, 0.7, None]
    assert success.runs[0].origin == f"--success {csv} (replaces the simulation's 62.5%)"
    assert success.runs[1].origin == f"--success {csv}"
    assert success.runs[4].origin.startswith("none: a replay run has no rollouts of its own")
    assert [run.k for run in success.runs[:3]] == [10, 10, 5]
    cknna = [record["headline"]["cknna"]["value"] for record in records[:4]]
    expected = bootstrap_correlations(cknna, [0.9, 0.1, 0.4, 0.7])
    assert success.correlations == expected and success.no_correlation is None
    assert "span categories (IL, VLA)" in success.notes[0] and "different k (5, 10)" in success.notes[1]


def test_fewer_than_four_rates_or_one_rate_for_all_give_no_correlation(tmp_path):
    records = [run_record("simulation", seed=seed, pc_success=50.0) for seed in range(3)]
    labels = ["a", "b", "c"]
    three = compare_success(labels, [tmp_path / label for label in labels], records)
    assert three.correlations is None
    assert three.no_correlation.startswith(
        "Only 3 runs with a success rate: a correlation across runs needs at least 4"
    )
    assert "Task success: no correlation. Only 3 runs" in three.summary()

    records.append(run_record("simulation", seed=3, pc_success=50.0))
    labels.append("d")
    same = compare_success(labels, [tmp_path / label for label in labels], records)
    assert same.correlations is None and same.no_correlation.startswith(
        "Every run has the same success rate (0.500)"
    )

    replays = [run_record("replay", seed=seed) for seed in range(2)]
    assert compare_success(["a", "b"], [tmp_path / "a", tmp_path / "b"], replays) is None
