import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from lerobot_cknna.configs.cknna import CKNNAConfig, resolve_metrics_device
from lerobot_cknna.metrics import alignment
from lerobot_cknna.metrics.alignment import cknna
from lerobot_cknna.metrics.calibration import calibrate
from lerobot_cknna.results.features_io import SavedFeatures
from lerobot_cknna.results.plots import write_plots
from lerobot_cknna.results.report import write_report
from lerobot_cknna.results.scoring import samples_digest, score_features, summary_lines, write_results
from tests.utils import episodic_features, labelled_features, table_rows


def test_record_has_every_field_and_matches_the_metric(tmp_path):
    features = episodic_features()
    cfg = CKNNAConfig(n_permutations=30, prep_b="center_l2")
    record = score_features(features, cfg, {"kind": "test"})
    assert record["n"] == 120 and record["n_episodes"] == 6 and record["k"] == 10
    assert record["feature_prep"] == {"feat_a": "l2", "feat_b": "center_l2"}
    head = record["headline"]["cknna"]
    expected = cknna(
        cfg.feature_prep_a(features.feat_a.double()), cfg.feature_prep_b(features.feat_b.double())
    )
    assert head["value"] == pytest.approx(expected.value, rel=1e-12)
    assert len(head["null"]["samples"]) == 30 and head["interval"]["groups"] == 6
    assert record["alpha"] == head["null"]["alpha"] == 0.05
    calibration = calibrate(head["value"], np.array(head["null"]["samples"]), 0.05)
    assert {key: head["null"][key] for key in ("threshold", "calibrated", "p_value")} == calibration.to_dict()
    assert head["null"]["chance_corrected"] == pytest.approx(
        (head["value"] - head["null"]["mean"]) / (1 - head["null"]["mean"])
    )
    assert [r["k"] for r in record["k_sweep"]["cknna"]] == [5, 10, 20, 50]
    path = write_results(tmp_path, record)
    assert json.loads(path.read_text())["source"] == {"kind": "test"}


def test_extra_metrics_are_in_the_record_with_nulls_and_intervals(tmp_path):
    features = episodic_features()
    metrics = ["cknna", "mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn", "svcca"]
    cfg = CKNNAConfig(n_permutations=10, k_sweep=[5, 10], metrics=metrics)
    record = score_features(features, cfg)
    prepared = cfg.feature_prep_a(features.feat_a.double()), cfg.feature_prep_b(features.feat_b.double())
    assert list(record["headline"]) == metrics
    for metric in ("cycle_knn", "lcs_knn", "edit_distance_knn"):
        assert [r["k"] for r in record["k_sweep"][metric]] == [5, 10]
        head = record["headline"][metric]
        assert head["value"] == getattr(alignment, metric)(*prepared, 10).value
        assert len(head["null"]["samples"]) == 10 and head["interval"]["groups"] == 6
    # SVCCA has no k: headline only.
    assert "svcca" not in record["k_sweep"]
    head = record["headline"]["svcca"]
    assert head["k"] is None and head["components"] == 8
    assert head["value"] == pytest.approx(alignment.svcca(*prepared).value, abs=1e-12)
    assert len(head["null"]["samples"]) == 10 and head["interval"] is not None
    assert any(line.strip().startswith("svcca") for line in summary_lines(record))
    json.dumps(record, allow_nan=False)
    # The report has a row for each (the plots show CKNNA and mutual kNN as without them).
    report = write_report(tmp_path, record).read_text()
    assert "## Other metrics (k=10)" in report and "SVCCA kept 8 directions per side" in report
    for metric in metrics[2:]:
        (row,) = table_rows(report, metric)
        head = record["headline"][metric]
        assert row[1] == ("n/a" if metric == "svcca" else "10")
        assert row[2] == f"{head['null']['calibrated']:.3f}" and row[4].startswith(f"{head['value']:.3f} [")
    assert [path.name for path in write_plots(tmp_path, features, record)][0] == "cknna_k_sweep.png"


def test_sweep_values_that_do_not_fit_are_dropped_with_a_warning():
    record = score_features(episodic_features(3, 10), CKNNAConfig(n_permutations=0, interval_level=None))
    assert [r["k"] for r in record["k_sweep"]["cknna"]] == [5, 10, 20]
    assert any("[50] dropped" in note for note in record["warnings"])


def test_headline_k_too_large_is_refused():
    with pytest.raises(ValueError, match="Gather more"):
        score_features(episodic_features(1, 8), CKNNAConfig(n_permutations=0, interval_level=None))


def test_exclusion_options():
    features = episodic_features()
    record = score_features(features, CKNNAConfig(n_permutations=0, interval_level=None, exclude_window=2))
    assert record["exclusion"] == "same episode within 2 frames"
    with pytest.raises(ValueError, match="not both"):
        CKNNAConfig(exclude_same_episode=True, exclude_window=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prep_a": "zscore"}, "choose one of"),
        ({"n_permutations": -1}, "n_permutations must be >= 0"),
        ({"interval_level": 1.5}, r"interval_level must be in \(0, 1\)"),
        ({"metrics": ["cknna", "mutual_knn", "lcs"]}, "--cknna.metrics has unknown metric"),
        ({"metrics": ["cknna", "svcca"]}, "--cknna.metrics must keep cknna and mutual_knn"),
        ({"alpha": 1.0}, r"--cknna.alpha must be in \(0, 1\), got 1.0"),
        ({"alpha": 0}, r"--cknna.alpha must be in \(0, 1\)"),
    ],
)
def test_bad_options_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CKNNAConfig(**kwargs)


@pytest.mark.parametrize(
    ("name", "n_gpus", "expected"),
    [
        ("auto", 0, "cpu"),
        ("auto", 1, "cuda"),
        ("cpu", 1, "cpu"),
        ("cuda", 1, "cuda"),
        ("cuda:1", 2, "cuda:1"),
    ],
)
def test_metrics_device_is_cuda_when_there_is_one_unless_told(name, n_gpus, expected):
    assert resolve_metrics_device(name, n_gpus) == torch.device(expected)


@pytest.mark.parametrize(
    ("name", "n_gpus", "message"),
    [
        ("cuda", 0, "torch sees 0 CUDA device"),
        ("cuda:1", 1, "torch sees 1 CUDA device"),
        ("mps", 0, "must be auto, cpu, cuda or cuda:N"),
        ("gpu", 1, "must be auto, cpu, cuda or cuda:N"),
    ],
)
def test_metrics_device_that_is_not_here_is_explained(name, n_gpus, message):
    with pytest.raises(ValueError, match=message):
        resolve_metrics_device(name, n_gpus)


def test_record_says_where_the_metrics_ran():
    record = score_features(episodic_features(3, 10), CKNNAConfig(device="cpu", n_permutations=0))
    assert record["metrics_device"] == "cpu"


def test_record_is_strict_json():
    record = score_features(episodic_features(), CKNNAConfig(n_permutations=10))
    text = json.dumps(record, allow_nan=False)
    assert all(math.isfinite(x) for x in json.loads(text)["headline"]["cknna"]["null"]["samples"])


def test_each_group_is_scored_as_its_own_run():
    features = labelled_features()
    cfg = CKNNAConfig(n_permutations=10, prep_b="center_l2")
    record = score_features(features, cfg)
    assert record["schema_version"] == 3 and set(record["groups"]) == {"task", "outcome"}
    tasks = record["groups"]["task"]
    assert [g["name"] for g in tasks] == features.tasks and [g["task_index"] for g in tasks] == [0, 1, 2]
    for group in tasks:
        assert group["skipped"] is None and group["n"] == 60 and group["n_episodes"] == 3
        alone = score_features(features.select(features.task_index == group["task_index"]), cfg)["headline"]
        for metric in ("cknna", "mutual_knn"):
            assert group[metric]["value"] == pytest.approx(alone[metric]["value"], rel=1e-12)
            assert group[metric]["null"]["samples"] == pytest.approx(alone[metric]["null"]["samples"])
            assert group[metric]["interval"]["low"] == pytest.approx(alone[metric]["interval"]["low"])
    # Success is marked at one frame, but the whole episode counts: episodes 0, 2, 4, 6, 8.
    outcome = {g["name"]: g for g in record["groups"]["outcome"]}
    assert list(outcome) == ["success", "failure"]
    assert (outcome["success"]["n"], outcome["success"]["n_episodes"]) == (100, 5)
    assert (outcome["failure"]["n"], outcome["failure"]["n_episodes"]) == (80, 4)
    failed = torch.isin(features.episode_index, torch.tensor([1, 3, 5, 7]))
    alone = score_features(features.select(failed), cfg)["headline"]["cknna"]
    assert outcome["failure"]["cknna"]["value"] == pytest.approx(alone["value"], rel=1e-12)


def test_groups_too_small_are_skipped_with_the_reason_and_no_numbers():
    features = labelled_features(n_episodes=7, length=20)
    features.task_index[-8:] = 3  # the last 8 frames of episode 6: one episode, N=8 < k+1
    features.tasks.append("tiny")
    record = score_features(features, CKNNAConfig(n_permutations=10))
    tasks = {g["name"]: g for g in record["groups"]["task"]}
    tiny = tasks["tiny"]
    assert tiny["skipped"].startswith("N=8 too small for k=10") and tiny["n"] == 8 and tiny["n_episodes"] == 1
    assert tiny["cknna"] is None and tiny["mutual_knn"] is None
    bowl = tasks["pick up the black bowl"]  # episodes 0, 3 and the first 12 frames of 6
    assert (bowl["n"], bowl["n_episodes"]) == (52, 3) and bowl["cknna"]["interval"] is not None
    single = score_features(
        features,
        CKNNAConfig(n_permutations=10, exclude_same_episode=True, metrics=["cknna", "mutual_knn", "lcs_knn"]),
    )
    excluded = {g["name"]: g for g in single["groups"]["task"]}["tiny"]
    assert "too small for k=10" in excluded["skipped"] and "under the exclusion" in excluded["skipped"]
    assert excluded["lcs_knn"] is None  # every selected metric has its key, empty when skipped
    assert all(g["lcs_knn"]["k"] == 10 for g in single["groups"]["task"] if g["skipped"] is None)


def test_groups_with_few_episodes_keep_the_value_and_say_what_is_missing():
    features = labelled_features(n_episodes=4, length=20)  # tasks 0, 1, 2, 0: tasks 1 and 2 have one episode
    record = score_features(features, CKNNAConfig(n_permutations=10))
    tasks = record["groups"]["task"]
    assert tasks[0]["n_episodes"] == 2 and tasks[0]["cknna"]["null"] is not None
    assert tasks[0]["cknna"]["interval"] is None
    assert any("needs 3 episodes and this group has 2" in w for w in tasks[0]["cknna"]["warnings"])
    assert tasks[1]["cknna"]["null"] is None and tasks[1]["cknna"]["value"] == pytest.approx(
        cknna(
            F.normalize(features.feat_a[20:40].double()), F.normalize(features.feat_b[20:40].double())
        ).value
    )
    assert any("single episode" in w for w in tasks[1]["cknna"]["warnings"])


def test_task_suites_and_single_group_breakdowns():
    features = labelled_features()
    suites = {"pick up the black bowl": "libero_spatial", "open the top drawer": "libero_goal"}
    with pytest.raises(ValueError, match=r"no suite for the tasks \['push the plate'\]"):
        score_features(features, CKNNAConfig(n_permutations=0, interval_level=None), task_suites=suites)
    suites["push the plate"] = "libero_goal"
    cfg = CKNNAConfig(n_permutations=0, interval_level=None)
    record = score_features(features, cfg, task_suites=suites)
    assert record["task_suites"] == suites
    by_suite = {g["name"]: g for g in record["groups"]["task_suite"]}
    assert list(by_suite) == ["libero_goal", "libero_spatial"]
    assert by_suite["libero_goal"]["n"] == 120 and by_suite["libero_spatial"]["n_episodes"] == 3
    goal = features.select(features.task_index > 0)
    assert by_suite["libero_goal"]["cknna"]["value"] == pytest.approx(
        score_features(goal, cfg)["headline"]["cknna"]["value"], rel=1e-12
    )
    features.success[:] = True
    (only,) = score_features(features, cfg)["groups"]["outcome"]
    assert only["name"] == "success" and only["n"] == 180 and only["cknna"] is None
    assert only["skipped"] == "the only group: the same samples as the headline"
    plain = episodic_features()
    assert score_features(plain, cfg)["groups"] == {}
    with pytest.raises(ValueError, match="needs task_index"):
        score_features(plain, cfg, task_suites=suites)


def test_samples_digest_names_the_samples_not_their_order_or_feat_a():
    features = episodic_features()
    digest = samples_digest(features)
    shuffled = torch.randperm(len(features.feat_a), generator=torch.Generator().manual_seed(1))
    moved = features.select(shuffled)
    assert samples_digest(moved) == digest
    other_a = SavedFeatures(
        torch.randn(120, 5), features.feat_b, features.episode_index, features.frame_index
    )
    assert samples_digest(other_a) == digest
    state = features.feat_b.clone()
    state[7, 3] += 1e-3
    assert (
        samples_digest(SavedFeatures(features.feat_a, state, features.episode_index, features.frame_index))
        != digest
    )
    frames = features.frame_index.clone()
    frames[0] = 99
    assert (
        samples_digest(SavedFeatures(features.feat_a, features.feat_b, features.episode_index, frames))
        != digest
    )
    record = score_features(features, CKNNAConfig(n_permutations=0, interval_level=None))
    assert record["samples_digest"] == digest


def test_summary_lines_name_the_groups():
    record = score_features(labelled_features(), CKNNAConfig(n_permutations=0, interval_level=None))
    lines = summary_lines(record)
    values = sorted((g["cknna"]["value"], g["name"]) for g in record["groups"]["task"])
    task_line = next(line for line in lines if line.startswith("  by task:"))
    assert "3 groups, 0 skipped" in task_line
    assert f"from {values[0][0]:.4f} ('{values[0][1]}'" in task_line
    assert f"to {values[-1][0]:.4f} ('{values[-1][1]}'" in task_line
    assert any(line.startswith("  by outcome: 2 groups") for line in lines)


def test_k_values_must_fit_every_jackknife_subset():
    features = episodic_features(n_episodes=6, length=5)  # N=30; leaving an episode out leaves 25
    features.task_index = (torch.arange(6) >= 3).long().repeat_interleave(5)  # two tasks of 3 short episodes
    record = score_features(features, CKNNAConfig(n_permutations=0))
    assert [r["k"] for r in record["k_sweep"]["cknna"]] == [5, 10, 20]
    assert all(r["interval"] is not None for r in record["k_sweep"]["cknna"])
    assert any("[50] dropped" in note and "only 24 usable" in note for note in record["warnings"])
    for group in record["groups"]["task"]:  # N=15: k=10 fits, but not with an episode left out
        assert group["cknna"]["interval"] is None
        assert any("leaving out an episode" in w for w in group["cknna"]["warnings"])
    short = score_features(episodic_features(n_episodes=3, length=5), CKNNAConfig(n_permutations=0))
    assert short["headline"]["cknna"]["interval"] is None
    assert any("leaving out an episode would leave samples fewer than k=10" in w for w in short["warnings"])


@pytest.mark.parametrize(("n_episodes", "null"), [(2, True), (1, False)])
def test_a_run_of_fewer_than_three_episodes_is_scored_and_says_what_is_missing(n_episodes, null, tmp_path):
    record = score_features(
        episodic_features(n_episodes=n_episodes, length=20), CKNNAConfig(n_permutations=10)
    )
    headline = record["headline"]["cknna"]
    assert headline["interval"] is None and (headline["null"] is not None) == null
    assert all(r["interval"] is None for r in record["k_sweep"]["cknna"])
    missing = f"No jackknife interval: it needs 3 episodes and this run has {n_episodes}."
    assert missing in record["warnings"]
    assert (not null) == ("No episode-permutation null: this run has a single episode." in record["warnings"])
    assert f"- {missing}" in write_report(tmp_path, record).read_text()


def test_trajectory_target_scores_stacked_states_and_records_what_it_dropped():
    features = episodic_features(n_episodes=5, length=12)
    cfg = CKNNAConfig(target="trajectory", window=2, n_permutations=0, interval_level=None)
    record = score_features(features, cfg)
    kept = features.frame_index < 10
    stacked = torch.cat([features.feat_b.roll(-shift, dims=0)[kept] for shift in range(3)], dim=1)
    expected = cknna(cfg.feature_prep_a(features.feat_a[kept].double()), cfg.feature_prep_b(stacked.double()))
    assert record["headline"]["cknna"]["value"] == pytest.approx(expected.value, rel=1e-12)
    assert record["n"] == 50 and record["feat_b_dim"] == 24 and record["sampling"] == "all"
    assert record["target"] == {
        "kind": "trajectory",
        "window": 2,
        "feat_b": "states t..t+2 stacked (trajectory, W=2)",
        "n_dropped": 10,
    }
    assert (
        record["warnings"][0]
        == "10 samples dropped: they have no states t..t+2 stacked (trajectory, W=2) in their episode."
    )
    with pytest.raises(ValueError, match="Lower --cknna.window"):
        score_features(features, CKNNAConfig(target="trajectory", window=12, n_permutations=0))


def test_one_frame_per_episode_scores_as_many_samples_as_episodes():
    features = episodic_features(n_episodes=16, length=6)
    record = score_features(features, CKNNAConfig(k=3, sampling="one_per_episode", n_permutations=5))
    assert (record["n"], record["n_episodes"], record["sampling"]) == (16, 16, "one_per_episode")
    assert record["target"]["feat_b"] == "state at t" and record["target"]["n_dropped"] == 0
    with pytest.raises(ValueError, match=r"asks for N=\[20\] but only 16 samples"):
        score_features(features, CKNNAConfig(k=3, sampling="one_per_episode", n_curve=[8, 20]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "dtw"}, "target must be one of state, trajectory"),
        ({"target": "trajectory"}, "needs --cknna.window=W >= 1"),
        ({"target": "trajectory", "window": 0}, "needs --cknna.window=W >= 1"),
        ({"window": 3}, "applies to --cknna.target=trajectory only"),
        ({"horizons": [0, -1]}, "horizons must be distinct steps >= 0"),
        ({"horizons": [5, 5]}, "horizons must be distinct steps >= 0"),
        ({"sampling": "first"}, "sampling must be one of all, one_per_episode"),
        ({"n_curve": [500, 10]}, "n_curve must be distinct sample sizes above k=10"),
    ],
)
def test_bad_target_and_sampling_options_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CKNNAConfig(**kwargs)
