import json
import os
import subprocess
import sys

import pytest
import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.envs.configs import LiberoEnv
from lerobot.policies.factory import make_policy

from lerobot_cknna.capture.hook_table import spec_for
from lerobot_cknna.capture.hooks import capture_features, encode_features
from lerobot_cknna.compat import apply_policy_fixes, make_pre_post_processors
from lerobot_cknna.compat.policy_construction import TINY_BUILD_MARKER
from lerobot_cknna.testing.tiny_policies import (
    build_tiny_policy,
    libero_observation,
    save_tiny_policy,
    tiny_build,
)
from tests.utils import TINY_TYPES, TINY_VARIANTS


@pytest.mark.parametrize("variant", sorted(TINY_VARIANTS))
def test_saved_tiny_policy_loads_through_the_policy_path_code(variant, tmp_path):
    policy_type, changes = TINY_VARIANTS[variant]
    saved = save_tiny_policy(policy_type, tmp_path, **changes)
    # What lerobot-eval does with --policy.path=DIR (configs/eval.py, lerobot_eval.eval_main).
    cfg = PreTrainedConfig.from_pretrained(tmp_path)
    cfg.pretrained_path = str(tmp_path)
    with tiny_build(policy_type, tmp_path / "assets"):  # Pi family: LeRobot's size tables, made tiny
        policy = make_policy(cfg, env_cfg=LiberoEnv()).eval()
    preprocessor, _ = make_pre_post_processors(cfg, pretrained_path=str(tmp_path))
    apply_policy_fixes(policy)

    for (name, loaded), (_, built) in zip(
        policy.state_dict().items(), saved.state_dict().items(), strict=True
    ):
        assert torch.equal(loaded, built), name
    assert type(policy) is type(saved)
    # LingBot-VA takes one sample per call.
    n_samples = 1 if spec_for(policy_type, config=policy.config).episode_calls is not None else 2
    batch = preprocessor(libero_observation(policy, batch_size=n_samples, seed=3))
    policy.reset()
    with capture_features(policy) as capture:
        policy.select_action(dict(batch))
        captured = capture.pop(n_samples)
    torch.testing.assert_close(captured, encode_features(policy, batch), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("policy_type", TINY_TYPES)
def test_tiny_builds_are_reproducible_and_hold_no_uninitialised_memory(policy_type):
    first, second = build_tiny_policy(policy_type, seed=3), build_tiny_policy(policy_type, seed=3)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), f"{name} differs between two builds with the same seed"
        if a.is_floating_point():
            assert torch.isfinite(a).all() and a.abs().max() < 1e4, name


# A Pi0, whose sizes exist only under tiny_build (the marker's reason).
MARKER_REPLAY_TYPE = "pi0"


def test_lerobot_cknna_builds_a_saved_tiny_policy_at_its_tiny_size_through_policy_path(
    libero_dataset, tmp_path
):
    save_tiny_policy(MARKER_REPLAY_TYPE, tmp_path / "policy")
    marker = json.loads((tmp_path / "policy" / TINY_BUILD_MARKER).read_text())
    assert marker == {
        "policy_type": MARKER_REPLAY_TYPE,
        "tiny_build": "lerobot_cknna.testing.tiny_policies.tiny_build",
        "assets": "assets",
    }
    done = subprocess.run(
        [
            sys.executable, "-m", "lerobot_cknna.scripts.lerobot_cknna", f"--policy.path={tmp_path / 'policy'}",
            f"--dataset.repo_id={libero_dataset.repo_id}", f"--dataset.root={libero_dataset.root}",
            "--cknna.k=5", "--cknna.n_permutations=20", "--cknna.report=false", f"--output_dir={tmp_path / 'run'}",
        ],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        f"is a tiny build ({TINY_BUILD_MARKER}): building it with tiny_build('{MARKER_REPLAY_TYPE}')"
        in done.stderr
    )
    record = json.loads((tmp_path / "run" / "cknna.json").read_text())
    assert record["source"]["policy_type"] == MARKER_REPLAY_TYPE and record["n"] == libero_dataset.num_frames
