"""``lerobot-cknna`` end to end through its console script, offline: replay, simulation, bad input."""

import dataclasses
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.policies.factory import get_policy_class, make_pre_post_processors
from safetensors.torch import load_file

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.drivers.libero.record import IMAGE_KEYS, dataset_features
from lerobot_cknna.results.features_io import FEATURES_FILE, load_features
from lerobot_cknna.results.layer_features import load_layer_features
from lerobot_cknna.results.token_groups import load_token_groups
from lerobot_cknna.testing import dense_reference
from lerobot_cknna.testing.defects import write_sac_checkpoint_of_lerobot_0_4
from lerobot_cknna.testing.tiny_policies import build_tiny_policy, libero_stats, save_tiny_policy
from tests.utils import (
    OFFLINE,
    REPO,
    assert_is_a_real_figure,
    assert_replayed_every_frame,
    console_script,
    fresh_python,
)

# The tiny replay study runs every type through the same checks of its features (test_lerobot_cknna_sweep.py).
SAVED_TYPES = ("act", "smolvla")


@pytest.fixture(scope="module")
def policy_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("policies")
    return {policy_type: _saved(root, policy_type) for policy_type in SAVED_TYPES}


def _saved(root: Path, policy_type: str) -> Path:
    save_tiny_policy(policy_type, root / policy_type)
    return root / policy_type


def test_replay_on_a_recorded_libero_dataset(policy_dirs, libero_dataset, tmp_path):
    out = tmp_path / "run"
    done = console_script(
        "lerobot-cknna",
        f"--policy.path={policy_dirs['act']}",
        f"--dataset.repo_id={libero_dataset.repo_id}",
        f"--dataset.root={libero_dataset.root}",
        "--cknna.k=5",
        "--cknna.n_permutations=20",
        "--cknna.batch_size=7",
        f"--output_dir={out}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert_replayed_every_frame(out, libero_dataset, "act")
    assert json.loads((out / "cknna.json").read_text())["k"] == 5
    assert (out / "report.md").is_file() and len(list(out.glob("*.png"))) == 3


def test_saved_features_rescore_to_the_same_numbers(policy_dirs, libero_dataset, tmp_path):
    out = tmp_path / "run"
    options = ["--cknna.k=5", "--cknna.n_permutations=20"]
    done = console_script(
        "lerobot-cknna", f"--config_path={REPO / 'configs/libero_replay.yaml'}", f"--policy.path={policy_dirs['act']}",
        f"--dataset.repo_id={libero_dataset.repo_id}", f"--dataset.root={libero_dataset.root}",
        "--dataset.episodes=[0,1,2,3]", "--cknna.max_samples=30", f"--output_dir={out}", *options,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    first = json.loads((out / "cknna.json").read_text())
    assert first["n"] == 30 and first["source"]["data"]["sampling"]["method"] == "evenly spaced"
    rescored = console_script(
        "lerobot-cknna-score", str(out), f"--output_dir={tmp_path / 'again'}", *options, cwd=tmp_path
    )
    assert rescored.returncode == 0, rescored.stderr[-3000:]
    second = json.loads((tmp_path / "again" / "cknna.json").read_text())
    assert second["headline"] == first["headline"] and second["source"] == first["source"]


@pytest.mark.slow(42)
def test_layer_sweep_and_token_groups_in_replay_score_like_the_headline(
    policy_dirs, libero_dataset, tmp_path
):
    """Every layer like the dense reference; feat A's image and language tokens apart, in the same run."""
    out = tmp_path / "run"
    options = ["--cknna.k=5", "--cknna.k_sweep=[5]", "--cknna.n_permutations=20"]
    done = console_script(
        "lerobot-cknna", f"--policy.path={policy_dirs['smolvla']}", f"--dataset.repo_id={libero_dataset.repo_id}",
        f"--dataset.root={libero_dataset.root}", "--cknna.layers=true", "--cknna.token_groups=true",
        f"--output_dir={out}", *options, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((out / "cknna.json").read_text())
    sweep = json.loads((out / "layers.json").read_text())
    text_model = "model.vlm_with_expert.vlm.model.text_model"
    assert [(layer["path"], layer["read"]) for layer in sweep["layers"]] == [
        (f"{text_model}.layers.0.input_layernorm", "input"),
        (f"{text_model}.layers.1.input_layernorm", "input"),
        (record["source"]["hook_path"], "output"),
    ]
    assert sweep["main_hook_index"] == 2 and sweep["n"] == record["n"] == libero_dataset.num_frames
    saved = load_layer_features(out)
    features = load_features(out)
    assert torch.equal(saved[-1].features.feat_a, features.feat_a)
    cfg = CKNNAConfig(k=5)
    for layer, scored in zip(saved, sweep["layers"], strict=True):
        assert torch.equal(layer.features.frame_index, features.frame_index)
        assert scored["feat_dim"] == layer.features.feat_a.shape[1]
        a, b = (
            cfg.feature_prep_a(layer.features.feat_a.double()),
            cfg.feature_prep_b(layer.features.feat_b.double()),
        )
        assert scored["cknna"]["value"] == pytest.approx(dense_reference.cknna(a, b, 5)["value"], abs=1e-9)
        assert scored["mutual_knn"]["value"] == pytest.approx(dense_reference.mutual_knn(a, b, 5), abs=1e-9)
        assert len(scored["cknna"]["null"]["samples"]) == 20 and scored["cknna"]["interval"] is not None
    assert sweep["layers"][-1]["cknna"] == record["headline"]["cknna"]
    groups = json.loads((out / "token_groups.json").read_text())
    assert record["token_groups"] == "token_groups.json" and groups["schema_version"] == 2
    shared = ("source", "n", "n_episodes", "k", "feature_prep", "alpha")
    assert all(groups[key] == sweep[key] for key in shared)
    both, *_ = groups["groups"]
    assert [group["group"] for group in groups["groups"]] == ["both", "image", "language"]
    assert both["cknna"] == record["headline"]["cknna"]
    assert both["mutual_knn"] == record["headline"]["mutual_knn"]
    saved_groups = load_token_groups(out).groups
    for group in saved_groups.values():
        assert torch.equal(group.frame_index, features.frame_index)
        assert group.feat_a.shape == features.feat_a.shape
        assert not torch.allclose(group.feat_a, features.feat_a)
    # Two cameras of 64 SmolVLM image tokens each (tiny build: 512 px images, 16 px patches, scale factor 4);
    # the language tokens are the task's, the template's and the special tokens, padding left out.
    image_tokens, language_tokens = saved_groups["image"].n_tokens, saved_groups["language"].n_tokens
    assert image_tokens.unique().tolist() == [2 * 64] and language_tokens.min() > 0
    counts = [group["tokens_per_sample"] for group in groups["groups"]]
    assert counts[1] == {"min": 128, "mean": 128.0, "max": 128}
    assert counts[0]["mean"] == pytest.approx(128 + language_tokens.double().mean().item())
    assert all(group["cknna"]["null"]["calibrated"] is not None for group in groups["groups"])
    report = (out / "report.md").read_text()
    assert "## Per-layer scores" in report and "(layers.png)" in report and "## Token groups" in report
    assert "(token_groups.png)" in report
    assert_is_a_real_figure(out / "layers.png")
    assert_is_a_real_figure(out / "token_groups.png")
    rescored = console_script(
        "lerobot-cknna-score", str(out), f"--output_dir={tmp_path / 'again'}", *options, cwd=tmp_path
    )
    assert rescored.returncode == 0, rescored.stderr[-3000:]
    assert json.loads((tmp_path / "again" / "layers.json").read_text())["layers"] == sweep["layers"]
    assert json.loads((tmp_path / "again" / "token_groups.json").read_text())["groups"] == groups["groups"]


@pytest.mark.slow(63)
def test_simulation_pairs_every_model_call_and_replays_its_recording_to_the_same_features(
    policy_dirs, tmp_path
):
    """One simulation gathers feat A, its layers and its token groups at the same model calls."""
    out = tmp_path / "sim"
    done = console_script(
        "lerobot-cknna", f"--policy.path={policy_dirs['smolvla']}", "--env.type=libero", "--env.task=libero_spatial",
        "--env.task_ids=[0]", "--env.episode_length=9", "--eval.n_episodes=3", "--eval.batch_size=2",
        "--cknna.k=3", "--cknna.n_permutations=10", "--cknna.check_replay=true", "--cknna.layers=true",
        "--cknna.token_groups=true", f"--output_dir={out}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    # LeRobot's recording of the rollouts (asked for by --cknna.check_replay): one dataset per env of
    # each batch (2 batches x 2 envs), each holding its episode, run to the step limit, as PNG frames.
    infos = [json.loads(path.read_text()) for path in (out / "recordings").rglob("meta/info.json")]
    assert [(info["total_episodes"], info["total_frames"]) for info in infos] == [(1, 9)] * 4
    assert {feature["dtype"] for info in infos for feature in info["features"].values()} >= {"image"}
    eval_info = json.loads((out / "eval_info.json").read_text())
    features = load_features(out)
    record = json.loads((out / "cknna.json").read_text())
    # n_action_steps=4 over 9 steps: the model runs at steps 0, 4, 8. Two rollouts of 2 envs; the
    # fourth episode is beyond --eval.n_episodes=3 and is dropped, as lerobot-eval drops it.
    assert record["source"]["data"]["model_calls"] == 6
    assert sorted(features.frame_index.unique().tolist()) == [0, 4, 8]
    assert features.episode_index.unique().tolist() == [0, 1, 2] and len(features.frame_index) == 9
    successes = [bool(s) for task in eval_info["per_task"] for s in task["metrics"]["successes"]]
    per_episode = [bool(features.success[features.episode_index == e].all()) for e in range(3)]
    assert per_episode == successes
    assert record["source"]["mode"] == "simulation" and record["source"]["data"]["suites"] == [
        "libero_spatial"
    ]
    assert record["n"] == 9 and features.feat_b.shape == (9, 8)
    assert {"schema_version", "source", "n", "n_episodes", "feat_a_dim", "feat_b_dim", "samples_digest",
            "feature_prep", "exclusion", "eps", "k", "metrics_device", "alpha", "target", "sampling",
            "headline", "k_sweep", "task_suites", "groups", "warnings", "replay_parity",
            "token_groups"} == set(record)  # fmt: skip
    parity = record["replay_parity"]
    assert parity["n"] == 9 and parity["missing"] == 0 and parity["recording"] == "recordings"
    assert (
        parity["agrees"] and parity["max_rel_diff_feat_a"] <= 1e-4 and parity["max_abs_diff_feat_b"] <= 1e-6
    )
    assert not any("Replay parity" in warning for warning in record["warnings"])
    assert "## Replay parity" in (out / "report.md").read_text()
    assert (
        record["headline"]["cknna"]["null"] is not None
        and record["headline"]["cknna"]["interval"] is not None
    )
    assert features.tasks and record["groups"]["task_suite"][0]["name"] == "libero_spatial"
    # The layers and token groups of the same model calls, the dropped fourth episode dropped with them.
    layers, groups = load_layer_features(out), load_token_groups(out).groups
    for each in [*(layer.features for layer in layers), *groups.values()]:
        assert torch.equal(each.episode_index, features.episode_index)
        assert torch.equal(each.frame_index, features.frame_index)
    assert torch.equal(layers[-1].features.feat_a, features.feat_a) and len(layers) == 3
    assert (groups["image"].n_tokens == 2 * 64).all() and (groups["language"].n_tokens > 0).all()
    sweep, scored_groups = (
        json.loads((out / name).read_text()) for name in ("layers.json", "token_groups.json")
    )
    # Feat A scored again: the same value and null; the interval to float64 rounding, since the
    # headline's jackknife sums over neighbour lists as long as the k sweep's largest usable k.
    headline = record["headline"]["cknna"]
    for again in (sweep["layers"][-1]["cknna"], scored_groups["groups"][0]["cknna"]):
        assert (again["value"], again["null"]) == (headline["value"], headline["null"])
        assert again["interval"].keys() == headline["interval"].keys()
        for key, value in headline["interval"].items():
            assert again["interval"][key] == (
                pytest.approx(value, rel=1e-12) if isinstance(value, float) else value
            )
    report = (out / "report.md").read_text()
    assert "## Per-layer scores" in report and "## Token groups" in report


def test_bad_flags_end_with_one_message_and_exit_2(policy_dirs, tmp_path):
    """End to end, through the console script (every flag case is checked in-process in tests/configs)."""
    done = console_script(
        "lerobot-cknna", f"--policy.path={policy_dirs['act']}", "--env.type=libero", "--dataset.repo_id=a/b",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Choose one mode" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "outputs").exists()


def test_a_sac_saved_by_lerobot_0_4_replays_as_a_gaussian_actor(libero_dataset, tmp_path):
    save_tiny_policy("gaussian_actor", tmp_path / "gaussian_actor")
    old = write_sac_checkpoint_of_lerobot_0_4(tmp_path / "gaussian_actor", tmp_path / "sac")
    done = console_script(
        "lerobot-cknna", f"--policy.path={old}", f"--dataset.repo_id={libero_dataset.repo_id}",
        f"--dataset.root={libero_dataset.root}", "--cknna.k=5", "--cknna.n_permutations=10",
        "--cknna.report=false", f"--output_dir={tmp_path / 'run'}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "policy type 'sac' read as 'gaussian_actor'" in done.stderr and "num_critics" in done.stderr
    source = json.loads((tmp_path / "run" / "cknna.json").read_text())["source"]
    assert source["policy_type"] == "gaussian_actor" and source["policy"] == str(old)


def test_replay_on_a_dataset_without_the_policys_cameras_says_what_to_do(libero_dataset, tmp_path):
    saved = tmp_path / "act"
    save_tiny_policy("act", saved)
    config = json.loads((saved / "config.json").read_text())
    config["input_features"]["observation.images.wrist"] = config["input_features"].pop(
        "observation.images.image2"
    )
    (saved / "config.json").write_text(json.dumps(config))
    done = console_script(
        "lerobot-cknna", f"--policy.path={saved}", f"--dataset.repo_id={libero_dataset.repo_id}",
        f"--dataset.root={libero_dataset.root}", f"--output_dir={tmp_path / 'run'}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and "--rename_map" in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "run" / "cknna.json").exists()


@pytest.mark.slow(39)
def test_a_policy_of_another_robot_replays_on_the_cameras_alone(libero_dataset, tmp_path):
    """An ACT of a 14-D robot with one ``top`` camera (as LeRobot's ALOHA checkpoints) on LIBERO's 8-D data."""
    top = "observation.images.top"
    config = dataclasses.replace(
        build_tiny_policy("act").config,
        input_features={
            "observation.state": PolicyFeature(FeatureType.STATE, (14,)),
            top: PolicyFeature(FeatureType.VISUAL, (3, 96, 128)),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (14,))},
    )
    vector = {"mean": torch.zeros(14), "std": torch.ones(14), "min": -torch.ones(14), "max": torch.ones(14)}
    stats = {"observation.state": vector, "action": vector, top: libero_stats()["observation.images.image"]}
    saved = tmp_path / "act_other_robot"
    get_policy_class("act")(config).save_pretrained(saved)
    for pipeline in make_pre_post_processors(config, dataset_stats=stats):
        pipeline.save_pretrained(saved)
    done = console_script(
        "lerobot-cknna", f"--policy.path={saved}", f"--dataset.repo_id={libero_dataset.repo_id}",
        f"--dataset.root={libero_dataset.root}", '--rename_map={"observation.images.image": "observation.images.top"}',
        "--cknna.k=5", "--cknna.n_permutations=10", "--cknna.report=false", f"--output_dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "feat A comes from the cameras alone" in done.stderr
    record = json.loads((tmp_path / "run" / "cknna.json").read_text())
    assert (record["n"], record["feat_b_dim"]) == (len(libero_dataset), 8)
    assert record["feat_a_dim"] == 512  # ResNet18 channels of the one camera

    done = console_script(
        "lerobot-cknna", f"--policy.path={saved}", f"--dataset.repo_id={libero_dataset.repo_id}",
        f"--dataset.root={libero_dataset.root}", f"--output_dir={tmp_path / 'unmapped'}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and "lacks the cameras ['observation.images.top']" in done.stderr


@pytest.mark.slow(54)
def test_one_flag_on_lerobot_eval_writes_the_study_beside_eval_info(policy_dirs, tmp_path):
    """The user's own lerobot-eval with its default eval flags (async envs, batch size chosen by LeRobot)."""
    out = tmp_path / "eval"
    done = console_script(
        "lerobot-eval", f"--policy.path={policy_dirs['smolvla']}", "--env.type=libero", "--env.task=libero_spatial",
        "--env.task_ids=[0]", "--env.episode_length=6", "--eval.n_episodes=3", "--policy.n_action_steps=1",
        f"--output_dir={out}", "--env.discover_packages_path=lerobot_cknna.eval_plugin", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    eval_info = json.loads((out / "eval_info.json").read_text())
    features = load_features(out)
    record = json.loads((out / "cknna.json").read_text())
    assert record["n"] == 3 * 6 and record["k"] == 10 and record["source"]["policy_type"] == "smolvla"
    assert features.episode_index.tolist() == [e for e in range(3) for _ in range(6)]
    successes = [bool(s) for task in eval_info["per_task"] for s in task["metrics"]["successes"]]
    assert [bool(features.success[features.episode_index == e].all()) for e in range(3)] == successes
    assert (out / "report.md").is_file()


def test_importing_the_package_changes_nothing_in_lerobot_eval():
    code = (
        "from lerobot.scripts import lerobot_eval\n"
        "original = lerobot_eval.eval_policy_all\n"
        "import importlib, pathlib, lerobot_cknna\n"
        "root = pathlib.Path(lerobot_cknna.__file__).parent\n"
        "for path in sorted(root.rglob('*.py')):\n"
        "    name = '.'.join(('lerobot_cknna', *path.relative_to(root).with_suffix('').parts))\n"
        "    if 'eval_plugin' not in name: importlib.import_module(name.removesuffix('.__init__'))\n"
        "assert lerobot_eval.eval_policy_all is original\n"
        "import lerobot_cknna.eval_plugin\n"
        "assert lerobot_eval.eval_policy_all is not original\n"
        "print('ok')\n"
    )
    done = fresh_python(code)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-3000:]


def test_a_hook_path_that_does_not_exist_names_the_closest_modules(policy_dirs, libero_dataset, tmp_path):
    done = console_script(
        "lerobot-cknna", f"--policy.path={policy_dirs['act']}", f"--dataset.repo_id={libero_dataset.repo_id}",
        f"--dataset.root={libero_dataset.root}", "--cknna.hook_path=model.backbon", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and "Closest module names: model.backbone" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def test_a_checkpoint_with_stale_config_keys_loads_with_a_warning(libero_dataset, tmp_path):
    saved = tmp_path / "vqbet"
    save_tiny_policy("vqbet", saved)
    config = json.loads((saved / "config.json").read_text())
    (saved / "config.json").write_text(json.dumps({**config, "mlp_hidden_dim": 1024}))
    done = console_script(
        "lerobot-cknna", f"--policy.path={saved}", f"--dataset.repo_id={libero_dataset.repo_id}",
        f"--dataset.root={libero_dataset.root}", "--cknna.k=5", "--cknna.n_permutations=10",
        f"--output_dir={tmp_path / 'run'}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mlp_hidden_dim" in done.stderr
    source = json.loads((tmp_path / "run" / "cknna.json").read_text())["source"]
    assert source["policy_type"] == "vqbet" and source["policy"] == str(saved)  # not the cleaned copy


def test_a_hook_override_on_the_state_projection_scores_near_one(policy_dirs, libero_dataset, tmp_path):
    """ACT's state projection is a linear map of feat B: the override must capture it, and CKNNA see it."""
    out = tmp_path / "run"
    done = console_script(
        "lerobot-cknna", f"--policy.path={policy_dirs['act']}", f"--dataset.repo_id={libero_dataset.repo_id}",
        f"--dataset.root={libero_dataset.root}", "--cknna.hook_path=model.encoder_robot_state_input_proj",
        "--cknna.k=5", "--cknna.n_permutations=20", f"--output_dir={out}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((out / "cknna.json").read_text())
    assert (
        record["source"]["hook_path"] == "model.encoder_robot_state_input_proj" and record["feat_a_dim"] == 64
    )
    assert record["headline"]["cknna"]["value"] > 0.9


def test_a_hook_that_never_fires_is_a_clear_error(policy_dirs, libero_dataset, tmp_path):
    """ACT's VAE encoder only runs in training: neither encode-only nor select_action reaches it."""
    done = console_script(
        "lerobot-cknna", f"--policy.path={policy_dirs['act']}", f"--dataset.repo_id={libero_dataset.repo_id}",
        f"--dataset.root={libero_dataset.root}", "--cknna.hook_path=model.vae_encoder",
        f"--output_dir={tmp_path / 'run'}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and "did not fire" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and not (tmp_path / "run" / "cknna.json").exists()


def test_a_dataset_without_proprioceptive_state_is_refused(policy_dirs, libero_dataset, tmp_path):
    """The recorded frames again, written to a dataset that lacks observation.state."""
    features = {key: value for key, value in dataset_features().items() if key != "observation.state"}
    stateless = LeRobotDataset.create(
        "local/stateless", 10, features, root=tmp_path / "stateless", use_videos=False
    )
    for index in range(5):
        frame = libero_dataset[index]
        stateless.add_frame({
            **{key: (frame[key] * 255).round().to(torch.uint8).numpy() for key in IMAGE_KEYS},
            "action": frame["action"].numpy(), "task": frame["task"],
        })  # fmt: skip
    stateless.save_episode()
    stateless.finalize()
    done = console_script(
        "lerobot-cknna", f"--policy.path={policy_dirs['act']}", "--dataset.repo_id=local/stateless",
        f"--dataset.root={tmp_path / 'stateless'}", f"--output_dir={tmp_path / 'run'}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and "has no 'observation.state'" in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "run" / "features.safetensors").exists()


def start_replay(policy_dir: Path, dataset: LeRobotDataset, out: Path, *extra: str) -> list[str]:
    executable = Path(sys.executable).with_name("lerobot-cknna")
    return [
        str(executable), f"--policy.path={policy_dir}", f"--dataset.repo_id={dataset.repo_id}",
        f"--dataset.root={dataset.root}", "--cknna.k=5", "--cknna.n_permutations=10",
        "--cknna.batch_size=1", f"--output_dir={out}", *extra,
    ]  # fmt: skip


def stop_after_chunks(
    command: list[str], out: Path, chunks: int, signal_number: int, cwd: Path
) -> tuple[int, str]:
    """Run ``command``, send ``signal_number`` once it has streamed ``chunks`` chunks; status and stderr."""
    log = cwd / "stopped.log"
    with log.open("w") as stderr:
        # A shell without job control starts background commands with SIGINT ignored, and children
        # inherit that: give the run the default Ctrl-C, as a terminal does.
        run = subprocess.Popen(command, cwd=cwd, env=OFFLINE, stdout=subprocess.DEVNULL, stderr=stderr,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
        while len(list((out / "features.chunks").glob("chunk-*"))) < chunks:
            assert run.poll() is None, log.read_text()[-3000:]
            time.sleep(0.05)
        run.send_signal(signal_number)
        run.wait(timeout=120)
    return run.returncode, log.read_text()


@pytest.mark.slow(71)
def test_a_killed_replay_keeps_its_samples_and_resumes_without_duplicates(
    policy_dirs, libero_dataset, tmp_path
):
    out = tmp_path / "run"
    command = start_replay(policy_dirs["act"], libero_dataset, out, "--cknna.flush_every_s=0")
    # One frame per chunk: 25 of the 40 frames span three episodes, enough to score on their own.
    status, _ = stop_after_chunks(command, out, 25, signal.SIGKILL, tmp_path)
    assert status == -signal.SIGKILL
    kept = load_features(out)
    n = libero_dataset.num_frames
    assert 25 <= len(kept.feat_a) < n and not (out / "cknna.json").exists()

    rescored = console_script(
        "lerobot-cknna-score", str(out), "--cknna.k=3", "--cknna.n_permutations=10", cwd=tmp_path
    )
    assert rescored.returncode == 0, rescored.stderr[-3000:]  # what a killed run kept can be scored

    again = console_script("lerobot-cknna", *command[1:], cwd=tmp_path)
    assert again.returncode == 2 and "already holds the features of an earlier run" in again.stderr
    other = console_script(
        "lerobot-cknna", *command[1:], "--resume=true", "--cknna.max_samples=20", cwd=tmp_path
    )
    assert other.returncode == 2 and "cknna.max_samples: None then, 20 now" in other.stderr, other.stderr[
        -2000:
    ]

    resumed = console_script("lerobot-cknna", *command[1:], "--resume=true", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{len(kept.feat_a)} of {n} frames were gathered before" in resumed.stderr
    uninterrupted = console_script("lerobot-cknna", *start_replay(policy_dirs["act"], libero_dataset, tmp_path / "whole")[1:],
                                  cwd=tmp_path)  # fmt: skip
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    whole, joined = load_file(str(tmp_path / "whole" / FEATURES_FILE)), load_file(str(out / FEATURES_FILE))
    assert whole.keys() == joined.keys()
    for name in whole:
        torch.testing.assert_close(joined[name], whole[name], msg=name)
    assert not (out / "features.chunks").exists()
    first, second = (json.loads((d / "cknna.json").read_text()) for d in (out, tmp_path / "whole"))
    assert first["headline"] == second["headline"] and first["n"] == n


def test_ctrl_c_keeps_the_samples_and_says_so(policy_dirs, libero_dataset, tmp_path):
    out = tmp_path / "run"
    command = start_replay(policy_dirs["act"], libero_dataset, out, "--cknna.flush_every_s=0")
    status, stderr = stop_after_chunks(command, out, 2, signal.SIGINT, tmp_path)
    assert status == 130, stderr[-3000:]
    assert "Interrupted. What was gathered is kept" in stderr
    assert len(load_features(out).feat_a) >= 2 and not (out / "cknna.json").exists()


def env_workers(pid: int) -> list[psutil.Process]:
    """The async env workers of process ``pid``: the children of its multiprocessing fork server."""
    servers = [
        child
        for child in psutil.Process(pid).children()
        if "multiprocessing.forkserver" in " ".join(child.cmdline())
    ]
    return [worker for server in servers for worker in server.children()]


@pytest.mark.slow(76)
def test_a_worker_killed_mid_rollout_keeps_the_finished_episodes_and_says_which_were_lost(
    policy_dirs, tmp_path
):
    out = tmp_path / "sim"
    command = [
        str(Path(sys.executable).with_name("lerobot-cknna")), f"--policy.path={policy_dirs['act']}",
        "--env.type=libero", "--env.task=libero_spatial", "--env.task_ids=[0]", "--env.episode_length=40",
        "--eval.n_episodes=6", "--eval.batch_size=2", "--eval.use_async_envs=true", "--cknna.k=3",
        "--cknna.n_permutations=10", f"--output_dir={out}",
    ]  # fmt: skip
    log = tmp_path / "killed.log"
    with log.open("w") as stderr:
        run = subprocess.Popen(command, cwd=tmp_path, env=OFFLINE, stdout=subprocess.DEVNULL, stderr=stderr)
        # The first batch of two episodes is on disk once the second batch starts.
        while not (out / "features.chunks" / "chunk-000000").exists():
            assert run.poll() is None, log.read_text()[-3000:]
            time.sleep(0.1)
        time.sleep(3)
        env_workers(run.pid)[0].kill()
        run.wait(timeout=300)
    stderr = log.read_text()
    assert run.returncode == 1, stderr[-3000:]
    assert "an env worker process died" in stderr and f"lerobot-cknna-score {out}" in stderr
    interruption = json.loads((out / "interruption.json").read_text())
    assert interruption["episodes_kept"] in (2, 4) and interruption["episodes_planned"] == 6
    kept = interruption["episodes_kept"]
    assert interruption["stopped_during"] == {
        "suite": "libero_spatial",
        "task_id": 0,
        "episodes": [kept, kept + 1],
    }
    assert interruption["tasks"] == [
        {"suite": "libero_spatial", "task_id": 0, "episodes_kept": kept, "episodes_lost": 6 - kept}
    ]
    assert not (out / "cknna.json").exists()

    rescored = console_script(
        "lerobot-cknna-score", str(out), "--cknna.k=3", "--cknna.n_permutations=10", cwd=tmp_path
    )
    assert rescored.returncode == 0, rescored.stderr[-3000:]
    record = json.loads((out / "cknna.json").read_text())
    assert record["n_episodes"] == kept and record["source"]["policy_type"] == "act"
    assert record["warnings"][0].startswith("Partial run: it stopped during libero_spatial task 0")
    assert record["interruption"]["reason"].startswith("an env worker process died")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launched_on_two_cpu_processes(options: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``accelerate launch`` of ``lerobot-cknna OPTIONS`` on two CPU processes.

    ``--multi_gpu`` is accelerate's launcher of several processes (``--cpu`` starts one without
    MPI); on a machine without GPUs each runs on the CPU.
    """
    accelerate = Path(sys.executable).with_name("accelerate")
    launch = [str(accelerate), "launch", "--multi_gpu", "--num_processes=2", "--num_machines=1",
              "--mixed_precision=no", "--dynamo_backend=no", f"--main_process_port={free_port()}"]  # fmt: skip
    return subprocess.run([*launch, "-m", "lerobot_cknna", *options],
                          capture_output=True, text=True, cwd=cwd, env=OFFLINE, timeout=900)  # fmt: skip


@pytest.mark.slow(38)
def test_replay_sharded_over_two_processes_equals_one_process(policy_dirs, libero_dataset, tmp_path):
    options = start_replay(policy_dirs["smolvla"], libero_dataset, tmp_path / "sharded")[1:]
    sharded = launched_on_two_cpu_processes([*options, "--cknna.batch_size=3"], tmp_path)
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    assert "process 1 of 2" in sharded.stderr and "process 2 of 2" in sharded.stderr
    single_dir = tmp_path / "single"
    single = console_script(
        "lerobot-cknna", *start_replay(policy_dirs["smolvla"], libero_dataset, single_dir)[1:], cwd=tmp_path
    )
    assert single.returncode == 0, single.stderr[-3000:]
    one, two = (load_file(str(d / FEATURES_FILE)) for d in (single_dir, tmp_path / "sharded"))
    assert one.keys() == two.keys() and len(two["feat_a"]) == libero_dataset.num_frames
    for name in one:
        torch.testing.assert_close(two[name], one[name], msg=name)
    assert json.loads((tmp_path / "sharded" / "tasks.json").read_text()) == json.loads(
        (single_dir / "tasks.json").read_text()
    )
    assert not (tmp_path / "sharded" / "shards").exists()
    records = [json.loads((d / "cknna.json").read_text()) for d in (single_dir, tmp_path / "sharded")]
    for metric, result in records[0]["headline"].items():  # features equal up to float summation order
        other = records[1]["headline"][metric]
        assert other["value"] == pytest.approx(result["value"], rel=1e-6), metric
        assert other["interval"]["low"] == pytest.approx(result["interval"]["low"], rel=1e-6), metric


@pytest.mark.slow(148)
def test_simulation_sharded_over_two_processes_equals_one_process(policy_dirs, tmp_path):
    def options(out: Path) -> list[str]:
        return [
            f"--policy.path={policy_dirs['act']}", "--env.type=libero", "--env.task=libero_spatial",
            "--env.task_ids=[0,1,2]", "--env.episode_length=6", "--eval.n_episodes=2", "--eval.batch_size=1",
            "--eval.use_async_envs=false", "--cknna.k=3", "--cknna.n_permutations=10", "--cknna.report=false", f"--output_dir={out}",
        ]  # fmt: skip

    sharded_dir, single_dir = tmp_path / "sharded", tmp_path / "single"
    sharded = launched_on_two_cpu_processes(options(sharded_dir), tmp_path)
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    assert "process 1 of 2" in sharded.stderr and "process 2 of 2" in sharded.stderr
    # accelerate launch gives each process one thread; so the single run, so that float rounding,
    # and with it every action and trajectory, is the same.
    single = subprocess.run([str(Path(sys.executable).with_name("lerobot-cknna")), *options(single_dir)],
                            capture_output=True, text=True, cwd=tmp_path, env={**OFFLINE, "OMP_NUM_THREADS": "1"},
                            timeout=900)  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    one, two = (load_file(str(d / FEATURES_FILE)) for d in (single_dir, sharded_dir))
    assert one.keys() == two.keys() and two["episode_index"].unique().tolist() == list(range(6))
    for name in one:
        torch.testing.assert_close(two[name], one[name], msg=name)
    infos = [json.loads((d / "eval_info.json").read_text()) for d in (single_dir, sharded_dir)]
    # Six batches of one episode (LIBERO's hard reset: episodes independent): the first process runs
    # task 0 and task 1's first episode, the second task 1's second episode (from LIBERO's second
    # initial state, with the second seed) and task 2.
    assert [(t["task_group"], t["task_id"]) for t in infos[1]["per_task"]] == [
        ("libero_spatial", 0),
        ("libero_spatial", 1),
        ("libero_spatial", 2),
    ]
    for single_task, sharded_task in zip(infos[0]["per_task"], infos[1]["per_task"], strict=True):
        for key in ("sum_rewards", "max_rewards", "successes"):
            assert sharded_task["metrics"][key] == single_task["metrics"][key], key
    for key in ("avg_sum_reward", "avg_max_reward", "pc_success", "n_episodes"):
        assert infos[1]["per_group"]["libero_spatial"][key] == infos[0]["per_group"]["libero_spatial"][key], (
            key
        )
        assert infos[1]["overall"][key] == infos[0]["overall"][key], key
    assert infos[1]["overall"]["n_episodes"] == 6 and len(infos[1]["overall"]["video_paths"]) == 6
    # The second process's own lerobot-eval output stays in its shard; its features moved to the main one.
    assert (sharded_dir / "shards" / "rank-1" / "eval_info.json").is_file()
    assert sorted(
        p.name for p in (sharded_dir / "shards" / "rank-1" / "videos" / "libero_spatial_1").iterdir()
    ) == ["eval_episode_1.mp4"]
    assert not list((sharded_dir / "shards").rglob("*.safetensors"))
    records = [json.loads((d / "cknna.json").read_text()) for d in (single_dir, sharded_dir)]
    assert records[1]["samples_digest"] == records[0]["samples_digest"]
    assert records[1]["source"]["data"] == records[0]["source"]["data"]
    for metric, result in records[0]["headline"].items():
        assert records[1]["headline"][metric]["value"] == pytest.approx(result["value"], rel=1e-6), metric
