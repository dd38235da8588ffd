import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import draccus
import lerobot
import pytest
import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies.factory import get_policy_class, make_pre_post_processors
from transformers.models.siglip import modeling_siglip

from lerobot_cknna.capture import resolve_module
from lerobot_cknna.fixes import (
    action_tokenizer_config,
    apply_runtime_fixes,
    construction_fixes,
    direct_forward_calls,
    eagle_flash_attention,
    groot_processor_assets,
    sac_policy_kwargs,
    stale_config_keys,
    tdmpc_image_key,
    transformers_fork,
)
from lerobot_cknna.hook_table import HOOK_TABLE
from lerobot_cknna.tiny_policies import build_tiny_policy, libero_batch, libero_observation, libero_stats

REPO = Path(__file__).resolve().parents[1]
SIGLIP_INIT = modeling_siglip.SiglipVisionModel.__init__
LEROBOT_SOURCE = Path(lerobot.__file__).resolve().parent
PATCHES = sorted((REPO / "patches").glob("*.diff"))


def unfixed_tdmpc():
    torch.manual_seed(0)
    return build_tiny_policy("tdmpc", apply_fixes=False)


def vqbet_checkpoint_with_a_removed_key(tmp_path: Path) -> Path:
    saved = tmp_path / "vqbet"
    build_tiny_policy("vqbet").save_pretrained(saved)
    config = json.loads((saved / "config.json").read_text())
    (saved / "config.json").write_text(json.dumps({**config, "mlp_hidden_dim": 1024}))
    return saved


def test_every_fix_has_its_diff_and_every_diff_a_fix():
    fixes = (
        tdmpc_image_key,
        stale_config_keys,
        direct_forward_calls,
        eagle_flash_attention,
        groot_processor_assets,
        transformers_fork,
        action_tokenizer_config,
        sac_policy_kwargs,
    )
    named = {Path(fix.PATCH).name for fix in fixes}
    assert named == {path.name for path in PATCHES}


def test_tdmpc_image_key_defect_shows_then_the_fix_removes_it():
    policy = unfixed_tdmpc()
    batch = libero_batch(policy, batch_size=2)
    assert tdmpc_image_key.is_present(policy)
    with pytest.raises(KeyError, match="observation.images.image"):
        policy.select_action(dict(batch))
    assert apply_runtime_fixes(policy) == ["tdmpc_image_key"]
    assert not tdmpc_image_key.is_present(policy)
    policy.reset()
    assert policy.select_action(dict(batch)).shape == (2, 7)
    assert apply_runtime_fixes(policy) == []


def test_sac_dataset_arguments_defect_shows_then_the_fix_removes_it():
    config = build_tiny_policy("sac").config
    stats = libero_stats()
    assert sac_policy_kwargs.is_present()
    with pytest.raises(TypeError, match="dataset_stats"):
        get_policy_class("sac")(config, dataset_stats=stats, dataset_meta=None)
    with construction_fixes():
        policy = get_policy_class("sac")(config, dataset_stats=stats, dataset_meta=object())
    assert isinstance(policy, get_policy_class("sac"))
    assert sac_policy_kwargs.is_present()  # LeRobot's class is back as it was after the block


def test_upstream_sac_diff_fixes_the_defect(patched_lerobot):
    done = run_with(patched_lerobot, (
        "import lerobot\n"
        "from lerobot.policies.factory import get_policy_class\n"
        "from lerobot_cknna.fixes import sac_policy_kwargs\n"
        "from lerobot_cknna.tiny_policies import build_tiny_policy, libero_stats\n"
        f"assert lerobot.__file__.startswith({str(patched_lerobot)!r}), lerobot.__file__\n"
        "assert not sac_policy_kwargs.is_present()\n"
        "config = build_tiny_policy('sac').config\n"
        "get_policy_class('sac')(config, dataset_stats=libero_stats(), dataset_meta=object())\n"
    ))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def calls_seen_by_a_hook(policy, module_path: str) -> int:
    """How many times a forward hook on ``module_path`` fires during one ``select_action``."""
    calls = []
    handle = resolve_module(policy, module_path).register_forward_hook(lambda *_: calls.append(1))
    try:
        policy.reset()
        policy.select_action(libero_batch(policy, batch_size=2))
    finally:
        handle.remove()
    return len(calls)


def test_direct_forward_defect_shows_then_the_fix_removes_it():
    policy = build_tiny_policy("smolvla", apply_fixes=False)
    assert [name for name, _ in direct_forward_calls.bypassed_modules(policy)] == [
        "model",
        "model.vlm_with_expert",
    ]
    assert calls_seen_by_a_hook(policy, "model.vlm_with_expert") == 0
    assert apply_runtime_fixes(policy) == ["direct_forward_calls"]
    assert not direct_forward_calls.is_present(policy)
    # The prefill, then one call per denoising step, each seen exactly once.
    assert calls_seen_by_a_hook(policy, "model.vlm_with_expert") == 1 + policy.config.num_steps
    assert calls_seen_by_a_hook(policy, HOOK_TABLE["smolvla"].module_path) == 1
    policy.reset()
    assert policy.select_action(libero_batch(policy, batch_size=2)).shape == (2, 7)
    assert apply_runtime_fixes(policy) == []


def test_eagle_flash_attention_defect_shows_then_the_fix_removes_it(tmp_path):
    assert eagle_flash_attention.is_present()
    with pytest.raises(ImportError, match="FlashAttention2 has been toggled on"):
        build_tiny_policy("groot", assets=tmp_path, apply_fixes=False)
    policy = build_tiny_policy("groot", assets=tmp_path)
    assert policy._groot_model.backbone.eagle_model.vision_model.config._attn_implementation == "sdpa"
    assert policy.select_action(libero_batch(policy, batch_size=2)).shape == (2, 7)
    assert modeling_siglip.SiglipVisionModel.__init__ is SIGLIP_INIT  # the fix is gone after the build


def test_groot_processor_assets_defect_shows_then_the_fix_removes_it(tmp_path):
    policy = build_tiny_policy("groot", assets=tmp_path / "assets")
    for pipeline in make_pre_post_processors(policy.config, dataset_stats=libero_stats()):
        pipeline.save_pretrained(tmp_path)
    assert groot_processor_assets.is_present()
    with pytest.raises(FileNotFoundError, match="eagle2hg-processor-groot-n1p5"):
        reload_and_run(policy, tmp_path)
    assert groot_processor_assets.record_assets_repo(tmp_path, policy.config.tokenizer_assets_repo)
    assert reload_and_run(policy, tmp_path).shape == (2, 7)
    assert not groot_processor_assets.record_assets_repo(tmp_path, policy.config.tokenizer_assets_repo)


def reload_and_run(policy, saved: Path) -> torch.Tensor:
    preprocessor, _ = make_pre_post_processors(policy.config, pretrained_path=str(saved))
    policy.reset()
    return policy.select_action(preprocessor(libero_observation(policy, batch_size=2)))


def test_fixes_leave_other_policies_alone():
    assert apply_runtime_fixes(build_tiny_policy("act")) == []


def test_stale_config_key_defect_shows_then_the_fix_removes_it(tmp_path, caplog):
    saved = vqbet_checkpoint_with_a_removed_key(tmp_path)
    with pytest.raises(draccus.utils.DecodingError, match="mlp_hidden_dim"):
        PreTrainedConfig.from_pretrained(saved)
    loadable = stale_config_keys.without_stale_keys(saved, tmp_path / "work")
    assert "mlp_hidden_dim" in caplog.text
    config = PreTrainedConfig.from_pretrained(loadable)
    policy = get_policy_class("vqbet").from_pretrained(loadable, config=config)
    original = get_policy_class("vqbet").from_pretrained(saved, config=config)
    for (name, value), (_, expected) in zip(
        policy.state_dict().items(), original.state_dict().items(), strict=True
    ):
        assert torch.equal(value, expected), name
    assert stale_config_keys.without_stale_keys(loadable, tmp_path / "work") == loadable


def test_stale_config_key_fix_survives_a_copy_left_from_a_deleted_checkpoint(tmp_path):
    work = tmp_path / "work"
    first = vqbet_checkpoint_with_a_removed_key(tmp_path / "first")
    stale_config_keys.without_stale_keys(first, work)
    shutil.rmtree(first)
    second = vqbet_checkpoint_with_a_removed_key(tmp_path / "second")
    assert second.name == first.name
    loadable = stale_config_keys.without_stale_keys(second, work)
    assert PreTrainedConfig.from_pretrained(loadable).type == "vqbet"
    assert all(item.resolve().is_relative_to(second) for item in loadable.iterdir() if item.is_symlink())


@pytest.fixture(scope="module")
def patched_lerobot(tmp_path_factory) -> Path:
    """A copy of the installed lerobot with every diff in patches/ applied."""
    root = tmp_path_factory.mktemp("patched")
    shutil.copytree(LEROBOT_SOURCE, root / "lerobot", ignore=shutil.ignore_patterns("__pycache__"))
    for diff in PATCHES:
        done = subprocess.run(
            ["patch", "-p1", "-d", str(root), "-i", str(diff)], capture_output=True, text=True
        )
        assert done.returncode == 0 and "offset" not in done.stdout and "fuzz" not in done.stdout, done.stdout
    return root


def run_with(lerobot_root: Path, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{lerobot_root}{os.pathsep}{REPO}"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)


def test_upstream_tdmpc_diff_fixes_the_defect(patched_lerobot):
    done = run_with(patched_lerobot, (
        "import lerobot, torch\n"
        "from lerobot.policies.factory import get_policy_class\n"
        "from lerobot_cknna.tiny_policies import build_tiny_policy, libero_batch\n"
        f"assert lerobot.__file__.startswith({str(patched_lerobot)!r}), lerobot.__file__\n"
        "policy = build_tiny_policy('tdmpc', apply_fixes=False)\n"
        "print(tuple(policy.select_action(libero_batch(policy, 2)).shape))\n"
    ))  # fmt: skip
    assert done.returncode == 0 and "(2, 7)" in done.stdout, done.stderr


def test_upstream_config_diff_fixes_the_defect(patched_lerobot, tmp_path):
    saved = vqbet_checkpoint_with_a_removed_key(tmp_path)
    done = run_with(patched_lerobot, (
        "import lerobot.policies.factory  # registers the config types, as lerobot-eval does\n"
        "from lerobot.configs.policies import PreTrainedConfig\n"
        f"print(type(PreTrainedConfig.from_pretrained({str(saved)!r})).__name__)\n"
    ))  # fmt: skip
    assert done.returncode == 0 and "VQBeTConfig" in done.stdout, done.stderr
    assert "mlp_hidden_dim" in done.stderr


def test_upstream_eagle_and_processor_diffs_fix_the_defects(patched_lerobot, tmp_path):
    done = run_with(patched_lerobot, (
        "import lerobot\n"
        "from lerobot.policies.factory import make_pre_post_processors\n"
        "from lerobot_cknna.fixes import eagle_flash_attention, groot_processor_assets\n"
        "from lerobot_cknna.tiny_policies import build_tiny_policy, libero_observation, libero_stats\n"
        f"assert lerobot.__file__.startswith({str(patched_lerobot)!r}), lerobot.__file__\n"
        "assert not eagle_flash_attention.is_present() and not groot_processor_assets.is_present()\n"
        f"built = build_tiny_policy('groot', assets={str(tmp_path / 'assets')!r}, apply_fixes=False)\n"
        "for pipeline in make_pre_post_processors(built.config, dataset_stats=libero_stats()):\n"
        f"    pipeline.save_pretrained({str(tmp_path)!r})\n"
        f"loaded, _ = make_pre_post_processors(built.config, pretrained_path={str(tmp_path)!r})\n"
        "print(tuple(built.select_action(loaded(libero_observation(built, 2))).shape))\n"
    ))  # fmt: skip
    assert done.returncode == 0 and "(2, 7)" in done.stdout, done.stderr[-3000:]


def test_upstream_direct_forward_diff_fixes_the_defect(patched_lerobot):
    done = run_with(patched_lerobot, (
        "import lerobot\n"
        "from lerobot_cknna.fixes import direct_forward_calls\n"
        "from lerobot_cknna.tiny_policies import build_tiny_policy, libero_batch\n"
        f"assert lerobot.__file__.startswith({str(patched_lerobot)!r}), lerobot.__file__\n"
        "policy = build_tiny_policy('smolvla', apply_fixes=False)\n"
        "assert not direct_forward_calls.is_present(policy)\n"
        "calls = []\n"
        "policy.model.vlm_with_expert.register_forward_hook(lambda *_: calls.append(1))\n"
        "policy.select_action(libero_batch(policy, 2))\n"
        "print('calls', len(calls))\n"
    ))  # fmt: skip
    assert done.returncode == 0 and "calls 3" in done.stdout, done.stderr
