"""``lerobot-cknna``'s flags checked in-process: the same entry point a user runs, without a new interpreter."""

import json
import shutil
import sys

import pytest
from lerobot.envs.configs import LiberoEnv

from lerobot_cknna.configs.checkpoints import TRAIN_CONFIG_FILE
from lerobot_cknna.drivers import pipeline
from lerobot_cknna.scripts import lerobot_cknna
from lerobot_cknna.testing.tiny_policies import save_tiny_policy
from tests.utils import REPO


@pytest.fixture(scope="module")
def policy_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("policies")
    for policy_type in ("act", "groot"):
        save_tiny_policy(policy_type, root / policy_type)
    return {policy_type: root / policy_type for policy_type in ("act", "groot")}


def run_lerobot_cknna(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """``lerobot-cknna ARGS`` in this process: its exit status and what it wrote to stderr."""
    monkeypatch.setattr(sys, "argv", ["lerobot-cknna", *args])
    with pytest.raises(SystemExit) as exited:
        lerobot_cknna.main()
    return exited.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env.type=libero", "--dataset.repo_id=x/y"], "Choose one mode"),
        (["--dataset.repo_id=x/y", "--cknna.prep_a=zscore"], "prep"),
        (["--dataset.repo_id=x/y", "--cknna.weights=great"], "--cknna.weights must be one of"),
        (["--dataset.repo_id=x/y", "--cknna.device=tpu"], "--cknna.device must be auto, cpu, cuda or cuda:N"),
        (
            ["--env.type=libero", "--env.observation_height=360", "--env.observation_width=360"],
            "the policy's cameras expect 256x256",
        ),
        (["--env.type=libero", "--output_dir=/dev/null/run"], "Cannot create the output directory"),
        (["--dataset.repo_id=x/y", "--resume=true"], "--resume=true continues the run in --output_dir"),
        (["--env.type=libero", "--resume=true", "--output_dir=x"], "--resume=true continues replay runs"),
        (
            ["--dataset.repo_id=x/y", "--cknna.layers=true", "--resume=true", "--output_dir=x"],
            "cannot be resumed",
        ),
        (
            ["--dataset.repo_id=x/y", "--cknna.token_groups=true"],
            "policy type 'act' has no token groups: its feat A is a vision encoder's output",
        ),
        (
            ["--env.type=libero", "--cknna.token_groups=true"],
            "policy type 'act' has no token groups: its feat A is a vision encoder's output",
        ),
        (
            ["--dataset.repo_id=x/y", "--cknna.token_groups=true", "--resume=true", "--output_dir=x"],
            "--cknna.token_groups=true runs cannot be resumed",
        ),
        (["--env.type=libero", "--env.max_parallel_tasks=2"], "--env.max_parallel_tasks=1"),
        (["--dataset.repo_id=x/y", "--cknna.check_replay=true"], "run it in simulation"),
    ],
)
def test_bad_flags_give_a_clear_error_and_exit_2(args, message, policy_dirs, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    status, stderr = run_lerobot_cknna(monkeypatch, capsys, f"--policy.path={policy_dirs['act']}", *args)
    assert status == 2, stderr[-2000:]
    assert message in stderr and "Traceback" not in stderr
    assert not (tmp_path / "outputs").exists()


def test_removed_policy_types_are_refused_with_what_to_do(policy_dirs, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    status, stderr = run_lerobot_cknna(monkeypatch, capsys, "--policy.type=sac", "--dataset.repo_id=x/y")
    assert status == 2 and "--policy.type=gaussian_actor" in stderr, stderr[-2000:]
    n15 = tmp_path / "groot_n15"
    shutil.copytree(policy_dirs["groot"], n15)
    config = json.loads((n15 / "config.json").read_text())
    (n15 / "config.json").write_text(
        json.dumps({**config, "tokenizer_assets_repo": "lerobot/eagle2hg-processor-groot-n1p5"})
    )
    status, stderr = run_lerobot_cknna(monkeypatch, capsys, f"--policy.path={n15}", "--dataset.repo_id=x/y")
    assert status == 2 and "GR00T N1.5 checkpoint" in stderr and "lerobot-cknna 0.1.0" in stderr, stderr[
        -2000:
    ]
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("env", [["--env.type=libero"], []], ids=["libero", "the_checkpoints_suite"])
def test_lingbot_va_simulation_is_refused_with_the_reason_before_anything_loads(
    env, monkeypatch, capsys, tmp_path
):
    monkeypatch.chdir(tmp_path)
    status, stderr = run_lerobot_cknna(monkeypatch, capsys, "--policy.type=lingbot_va", *env)
    assert status == 2 and "Traceback" not in stderr, stderr[-2000:]
    assert "'lingbot_va' cannot be measured in simulation: LingBot-VA keeps a KV cache" in stderr
    assert "Replay a dataset instead" in stderr and not (tmp_path / "outputs").exists()


def test_an_unknown_policy_type_is_a_clear_error(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    status, stderr = run_lerobot_cknna(
        monkeypatch, capsys, "--policy.type=not_a_policy", "--dataset.repo_id=x/y"
    )
    assert status == 2 and "not_a_policy" in stderr and "Traceback" not in stderr, stderr[-2000:]


def parsed_config(monkeypatch, *args: str):
    """The config ``lerobot-cknna ARGS`` runs with, as LeRobot's parser and this package's checks build it."""
    parsed = []
    monkeypatch.setattr(pipeline, "run_pipeline", parsed.append)
    monkeypatch.setattr(sys, "argv", ["lerobot-cknna", *args])
    lerobot_cknna.main()
    (cfg,) = parsed
    return cfg


@pytest.mark.parametrize(
    ("train_config", "suite", "why"),
    [
        (None, "libero_spatial", "names no LIBERO suite"),
        ({"dataset": {"repo_id": "someone/libero_goal_no_noops"}, "env": None}, "libero_goal", "trained on"),
        ({"dataset": {"repo_id": "HuggingFaceVLA/libero"}, "env": {"type": "libero", "task": "libero_10"}},
         "libero_10", "evaluated in LIBERO with env.task=libero_10"),
    ],
)  # fmt: skip
def test_neither_env_nor_dataset_simulates_the_checkpoints_libero_suite(
    train_config, suite, why, policy_dirs, monkeypatch, tmp_path, capsys
):
    policy_dir = tmp_path / "act"
    shutil.copytree(policy_dirs["act"], policy_dir)
    if train_config is not None:
        (policy_dir / TRAIN_CONFIG_FILE).write_text(json.dumps(train_config))
    cfg = parsed_config(monkeypatch, f"--policy.path={policy_dir}", "--eval.n_episodes=5")
    log = capsys.readouterr().err
    assert isinstance(cfg.env, LiberoEnv) and cfg.dataset is None
    assert cfg.env.task == suite and (cfg.env.observation_height, cfg.env.observation_width) == (256, 256)
    assert cfg.eval.n_episodes == 5 and cfg.env.task_ids is None and cfg.env.fps == LiberoEnv().fps
    assert f"simulating LIBERO {suite}" in log and why in log


def test_fewer_than_three_episodes_are_announced_before_the_rollout(policy_dirs, monkeypatch, capsys):
    cfg = parsed_config(
        monkeypatch, f"--policy.path={policy_dirs['act']}", "--env.type=libero", "--eval.n_episodes=2"
    )
    assert cfg.eval.n_episodes == 2
    assert "--eval.n_episodes=2: the score will have no jackknife interval" in capsys.readouterr().err


def test_the_benchmark_config_runs_the_four_suites_every_task_fifty_episodes(policy_dirs, monkeypatch):
    cfg = parsed_config(
        monkeypatch,
        f"--config_path={REPO / 'configs' / 'libero_benchmark.yaml'}",
        f"--policy.path={policy_dirs['act']}",
    )
    assert isinstance(cfg.env, LiberoEnv) and cfg.dataset is None
    assert cfg.env.task.split(",") == ["libero_spatial", "libero_object", "libero_goal", "libero_10"]
    assert cfg.env.task_ids is None and cfg.env.episode_length is None and cfg.eval.n_episodes == 50
    assert (cfg.env.control_mode, cfg.env.init_states) == (LiberoEnv().control_mode, LiberoEnv().init_states)
    assert (cfg.cknna.k, cfg.cknna.n_permutations, cfg.cknna.interval_level) == (10, 200, 0.95)
