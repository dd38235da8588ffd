"""Pi0, Pi0.5, Pi0-FAST in ``.venv-pi/``: what their hook sees in LeRobot's real inference code."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lerobot.policies.pi0_fast.configuration_pi0_fast import PI0FastConfig
from lerobot.processor import ActionTokenizerProcessorStep, PolicyProcessorPipeline

from lerobot_cknna.capture import capture_features, encode_features, resolve_module
from lerobot_cknna.fixes import action_tokenizer_config, apply_runtime_fixes, direct_forward_calls
from lerobot_cknna.hook_table import HOOK_TABLE
from lerobot_cknna.pi_environment import PI_FAMILY, has_openpi_transformers, require_pi_environment
from lerobot_cknna.tiny_pi import write_fast_action_tokenizer, write_paligemma_tokenizer
from lerobot_cknna.tiny_policies import build_tiny_policy, libero_batch
from tests.test_fixes import patched_lerobot, run_with  # noqa: F401  (patched_lerobot is a fixture)

OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1"}
FLAG_AND_MODEL = (
    "from lerobot.utils import import_utils\n"
    "from lerobot.policies.pi0 import modeling_pi0\n"
    "print(import_utils._transformers_available, modeling_pi0.PaliGemmaForConditionalGeneration is not None)\n"
)


def outputs_of(policy, module_path: str, run) -> list:
    """Every output of the module at ``module_path`` while ``run()`` runs."""
    outputs = []
    handle = resolve_module(policy, module_path).register_forward_hook(
        lambda m, i, output: outputs.append(output)
    )
    try:
        run()
    finally:
        handle.remove()
    return outputs


def test_this_is_the_pi_environment():
    assert has_openpi_transformers()
    for policy_type in PI_FAMILY:
        require_pi_environment(policy_type)


@pytest.mark.parametrize("policy_type", PI_FAMILY)
def test_direct_forward_calls_on_the_backbone_are_routed_through_hooks(policy_type):
    policy = build_tiny_policy(policy_type, apply_fixes=False)
    assert [name for name, _ in direct_forward_calls.bypassed_modules(policy)] == [
        "model",
        "model.paligemma_with_expert",
    ]
    batch = libero_batch(policy, batch_size=2)
    assert outputs_of(policy, "model.paligemma_with_expert", lambda: policy.select_action(dict(batch))) == []
    assert apply_runtime_fixes(policy) == ["direct_forward_calls"]
    policy.reset()
    calls = outputs_of(policy, "model.paligemma_with_expert", lambda: policy.select_action(dict(batch)))
    steps = (
        policy.config.max_decoding_steps
        if policy_type == "pi0_fast"
        else 1 + policy.config.num_inference_steps
    )
    assert len(calls) == steps


@pytest.mark.parametrize("policy_type", PI_FAMILY)
def test_the_final_norm_returns_a_tuple_and_the_capture_reads_its_normed_states(policy_type):
    policy = build_tiny_policy(policy_type)
    batch = libero_batch(policy, batch_size=2)
    policy.reset()
    module_path = HOOK_TABLE[policy_type].module_path
    outputs = outputs_of(policy, module_path, lambda: encode_features(policy, batch))
    (output,) = outputs
    assert isinstance(output, tuple) and output[0].shape[-1] == 2048


def test_pi0_fast_keeps_the_prefill_not_the_decode_steps():
    policy = build_tiny_policy("pi0_fast")
    batch = libero_batch(policy, batch_size=2)
    policy.reset()
    module_path = HOOK_TABLE["pi0_fast"].module_path
    with capture_features(policy) as capture:
        firings = outputs_of(policy, module_path, lambda: policy.select_action(dict(batch)))
        captured = capture.pop(2)
    prefill, *decode_steps = [output[0] for output in firings]
    assert len(decode_steps) == policy.config.max_decoding_steps - 1
    assert all(step.shape == (2, 1, 2048) for step in decode_steps) and prefill.shape[1] > 1
    torch.testing.assert_close(captured, encode_features(policy, batch), rtol=1e-5, atol=1e-6)


def test_transformers_fork_defect_shows_then_importing_the_package_removes_it():
    unfixed = subprocess.run(
        [sys.executable, "-c", FLAG_AND_MODEL], capture_output=True, text=True, timeout=300
    )
    assert unfixed.returncode == 0 and "False False" in unfixed.stdout, unfixed.stderr[-2000:]
    fixed = subprocess.run(
        [sys.executable, "-c", "import lerobot_cknna\n" + FLAG_AND_MODEL],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert fixed.returncode == 0 and "True True" in fixed.stdout, fixed.stderr[-2000:]


def test_upstream_transformers_fork_diff_fixes_the_defect(patched_lerobot):  # noqa: F811
    done = run_with(
        patched_lerobot,
        f"import lerobot\nassert lerobot.__file__.startswith({str(patched_lerobot)!r})\n" + FLAG_AND_MODEL,
    )
    assert done.returncode == 0 and "True True" in done.stdout, done.stderr[-2000:]


def save_action_tokenizer_pipeline(root: Path) -> Path:
    """Save a pipeline holding Pi0-FAST's action-tokenizer step, configured as the tiny Pi0-FAST is."""
    config = PI0FastConfig(
        text_tokenizer_name=str(write_paligemma_tokenizer(root / "text")),
        action_tokenizer_name=str(write_fast_action_tokenizer(root / "action", chunk_size=4, action_dim=7)),
    )
    step = ActionTokenizerProcessorStep(
        action_tokenizer_name=config.action_tokenizer_name,
        paligemma_tokenizer_name=config.text_tokenizer_name,
        fast_skip_tokens=config.fast_skip_tokens,
    )
    PolicyProcessorPipeline(steps=[step], name="pre").save_pretrained(root / "saved")
    return root / "saved"


RELOAD = (
    "import lerobot_cknna  # first: its transformers fix has to precede LeRobot's modules\n"
    "import sys\n"
    "from pathlib import Path\n"
    "from tests.test_pi_family import save_action_tokenizer_pipeline\n"
    "from lerobot.processor import PolicyProcessorPipeline\n"
    "saved = save_action_tokenizer_pipeline(Path(sys.argv[1]))\n"
    "step = PolicyProcessorPipeline.from_pretrained(saved, 'pre.json').steps[0]\n"
    "print('reloaded with', step._paligemma_tokenizer.name_or_path)\n"
)


def test_action_tokenizer_config_defect_shows_then_the_override_removes_it(tmp_path):
    unfixed = subprocess.run(
        [sys.executable, "-c", RELOAD, str(tmp_path)],
        capture_output=True,
        text=True,
        env=OFFLINE,
        timeout=300,
    )
    (saved_step,) = json.loads((tmp_path / "saved" / "pre.json").read_text())["steps"]
    assert "paligemma_tokenizer_name" not in saved_step["config"]
    assert unfixed.returncode != 0 and "couldn't connect to 'https://huggingface.co'" in unfixed.stderr
    config = PI0FastConfig(text_tokenizer_name=str(tmp_path / "text"))
    overrides = action_tokenizer_config.preprocessor_overrides(config)
    step = PolicyProcessorPipeline.from_pretrained(tmp_path / "saved", "pre.json", overrides=overrides).steps[
        0
    ]
    assert step._paligemma_tokenizer.name_or_path == str(tmp_path / "text")


def test_upstream_action_tokenizer_config_diff_fixes_the_defect(patched_lerobot, tmp_path):  # noqa: F811
    done = run_with(patched_lerobot, RELOAD.replace("sys.argv[1]", repr(str(tmp_path))))
    assert done.returncode == 0 and f"reloaded with {tmp_path / 'text'}" in done.stdout, done.stderr[-2000:]
