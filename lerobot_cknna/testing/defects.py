"""The LeRobot defects this package fixes at run time, each shown by what a user would do.

One scenario per registered fix (:data:`lerobot_cknna.compat.FIXES`), with the error a user of
plain LeRobot gets. Run without the fix, a scenario raises that error while the defect is
present in the installed LeRobot; run with the fix, or on a LeRobot patched with the fix's
upstream diff, it completes. The tests run every scenario all three ways::

    from lerobot_cknna.testing.defects import DEFECTS

    DEFECTS["tdmpc_image_key"].run(work_dir, fixed=False)   # KeyError on lerobot 0.6.1
    DEFECTS["tdmpc_image_key"].run(work_dir, fixed=True)    # completes
"""

import contextlib
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import draccus
import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies import factory
from safetensors.torch import load_file, save_file

from lerobot_cknna import compat
from lerobot_cknna.compat.policy_construction import policy_construction
from lerobot_cknna.compat.sac_policy_type import ALGORITHM_KEYS
from lerobot_cknna.testing.datasets import random_libero_dataset
from lerobot_cknna.testing.tiny_policies import (
    build_tiny_policy,
    libero_observation,
    libero_stats,
    save_tiny_policy,
)


class SymptomError(AssertionError):
    """What a user sees when the defect makes a feature silently not work (no exception of LeRobot's own)."""


@dataclass(frozen=True)
class Defect:
    """One defect's scenario and the error that shows it.

    Attributes:
        run: ``run(work_dir, fixed)``: what a user does; with ``fixed``, with this package's fix.
        error: the exception type a user of plain LeRobot gets.
        message: a fragment of its message.
    """

    run: Callable[[Path, bool], None]
    error: type[BaseException]
    message: str


def _act(policy) -> torch.Tensor:
    preprocessor, _ = compat.make_pre_post_processors(policy.config, dataset_stats=libero_stats())
    policy.reset()
    return policy.select_action(preprocessor(libero_observation(policy, batch_size=2)))


def tdmpc_image_key(work_dir: Path, fixed: bool) -> None:
    """A TDMPC with LIBERO's camera acts on a LIBERO observation."""
    policy = build_tiny_policy("tdmpc", assets=work_dir, apply_fixes=fixed)
    assert _act(policy).shape == (2, 7)


def direct_forward_calls(work_dir: Path, fixed: bool) -> None:
    """A hook on SmolVLA's ``vlm_with_expert`` sees every call of one action chunk."""
    policy = build_tiny_policy("smolvla", assets=work_dir, apply_fixes=fixed)
    calls = []
    handle = policy.model.vlm_with_expert.register_forward_hook(lambda *_: calls.append(1))
    try:
        _act(policy)
    finally:
        handle.remove()
    # The prefill, then one call per denoising step.
    if len(calls) != 1 + policy.config.num_steps:
        raise SymptomError(f"a hook on model.vlm_with_expert fired {len(calls)} times, not 1 + num_steps")


def dataset_kwargs(work_dir: Path, fixed: bool) -> None:
    """A Gaussian actor is built for a dataset, as replay builds it (``make_policy`` with ``ds_meta``)."""
    dataset = random_libero_dataset(work_dir / "dataset", [("put the bowl on the plate", 4)])
    config = factory.make_policy_config("gaussian_actor", device="cpu")
    with compat.construction_fixes() if fixed else contextlib.nullcontext():
        policy = factory.make_policy(config, ds_meta=dataset.meta)
    assert set(policy.config.input_features) == {"observation.state", *dataset.meta.camera_keys}


def _loaded_config(policy_dir: Path, fixed: bool) -> PreTrainedConfig:
    with compat.fixed_config_loading() if fixed else contextlib.nullcontext():
        return PreTrainedConfig.from_pretrained(policy_dir)


def stale_config_keys(work_dir: Path, fixed: bool) -> None:
    """A VQ-BeT saved with a config key that VQBeTConfig has since dropped loads (``lerobot/vqbet_pusht``)."""
    saved = work_dir / "vqbet"
    save_tiny_policy("vqbet", saved)
    config = json.loads((saved / "config.json").read_text())
    (saved / "config.json").write_text(json.dumps({**config, "mlp_hidden_dim": 1024}))
    loaded = _loaded_config(saved, fixed)
    assert loaded.type == "vqbet" and not hasattr(loaded, "mlp_hidden_dim")


def write_sac_checkpoint_of_lerobot_0_4(gaussian_actor_dir: Path, directory: Path) -> Path:
    """The directory lerobot 0.4 saved for a SAC policy, from a saved Gaussian actor.

    lerobot 0.4's ``SACPolicy`` held the same encoder and actor modules under the same names,
    plus a critic ensemble, its target copy and ``log_alpha``; its config had type ``sac`` and
    the algorithm's settings (:data:`~lerobot_cknna.compat.sac_policy_type.ALGORITHM_KEYS`).
    The critic tensors here have 0.4's names but not its sizes: a Gaussian actor does not load them.
    """
    shutil.copytree(gaussian_actor_dir, directory)
    config = json.loads((directory / "config.json").read_text())
    config.pop("pretrained_revision", None)  # a field lerobot 0.6 added
    algorithm = dict.fromkeys(ALGORITHM_KEYS)
    algorithm.update(
        discount=0.99, temperature_init=1.0, num_critics=2, critic_lr=3e-4, use_torch_compile=False
    )
    (directory / "config.json").write_text(json.dumps({**config, **algorithm, "type": "sac"}, indent=4))
    tensors = load_file(directory / "model.safetensors")
    critic_input = config["latent_dim"] * 3 + config["output_features"]["action"]["shape"][0]
    critic = {
        "critics.0.net.net.0.weight": torch.zeros(32, critic_input),
        "critics.0.output_layer.weight": torch.zeros(1, 32),
    }
    for name in ("critic_ensemble", "critic_target"):
        tensors.update({f"{name}.{key}": value.clone() for key, value in critic.items()})
    tensors["log_alpha"] = torch.tensor([math.log(1.0)])
    save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})
    return directory


def sac_policy_type(work_dir: Path, fixed: bool) -> None:
    """A SAC saved by lerobot 0.4 loads: its encoders and actor, as a Gaussian actor."""
    saved = save_tiny_policy("gaussian_actor", work_dir / "gaussian_actor")
    old = write_sac_checkpoint_of_lerobot_0_4(work_dir / "gaussian_actor", work_dir / "sac")
    config = _loaded_config(old, fixed)
    policy = factory.get_policy_class(config.type).from_pretrained(old, config=config)
    for name, value in saved.state_dict().items():
        assert torch.equal(policy.state_dict()[name], value), name


def action_tokenizer_config(work_dir: Path, fixed: bool) -> None:
    """A saved Pi0-FAST's preprocessor loads back offline (its tokenizers are local)."""
    saved = work_dir / "pi0_fast"
    save_tiny_policy("pi0_fast", saved)
    config = PreTrainedConfig.from_pretrained(saved)
    make = compat.make_pre_post_processors if fixed else factory.make_pre_post_processors
    preprocessor, _ = make(config, pretrained_path=str(saved))
    step = next(step for step in preprocessor.steps if type(step).__name__ == "ActionTokenizerProcessorStep")
    assert step.paligemma_tokenizer_name == config.text_tokenizer_name


def groot_backbone_processor(work_dir: Path, fixed: bool) -> None:
    """A GR00T on a local backbone acts offline (its preprocessor tokenizes with that backbone's processor)."""
    policy = build_tiny_policy("groot", assets=work_dir)
    make = compat.make_pre_post_processors if fixed else factory.make_pre_post_processors
    preprocessor, _ = make(policy.config, dataset_stats=libero_stats())
    policy.reset()
    assert policy.select_action(preprocessor(libero_observation(policy, batch_size=2))).shape == (2, 7)


def fastwam_vae_repo(work_dir: Path, fixed: bool) -> None:
    """A FastWAM whose Wan2.2 repository (UMT5, tokenizer, VAE) is local is built offline and acts."""
    policy = build_tiny_policy("fastwam", assets=work_dir, apply_fixes=fixed)
    assert _act(policy).shape == (2, 7)


# Steps of each LIBERO episode in the evaluation scenarios (a tiny policy never succeeds in so few).
_EPISODE_LENGTH = 3


def _evaluate_libero(
    work_dir: Path, policy_type: str, n_episodes: int, recording: bool, fixes_in_force
) -> None:
    """``lerobot-eval`` of a tiny policy in LIBERO (one env, short episodes), with the given eval fixes."""
    from lerobot.configs.default import EvalConfig
    from lerobot.configs.eval import EvalPipelineConfig
    from lerobot.envs.configs import LiberoEnv

    from lerobot_cknna.drivers.libero.offline import prepare_libero, select_mujoco_backend

    select_mujoco_backend()
    prepare_libero()
    from lerobot.scripts import lerobot_eval

    policy_dir = work_dir / policy_type
    save_tiny_policy(policy_type, policy_dir)
    policy_config = PreTrainedConfig.from_pretrained(policy_dir)
    policy_config.pretrained_path = policy_dir
    env = LiberoEnv(
        task="libero_spatial",
        task_ids=[0],
        episode_length=_EPISODE_LENGTH,
        observation_height=256,
        observation_width=256,
    )
    cfg = EvalPipelineConfig(
        env=env,
        eval=EvalConfig(n_episodes=n_episodes, batch_size=1, recording=recording),
        policy=policy_config,
        output_dir=work_dir / "eval",
    )
    with contextlib.ExitStack() as stack:
        stack.enter_context(policy_construction(policy_dir))
        for fix in fixes_in_force:
            stack.enter_context(fix.active(lerobot_eval, env))
        lerobot_eval.eval_main(cfg)


def _evaluate_libero_with_recording(work_dir: Path, n_episodes: int, fixes_in_force) -> list[dict]:
    """``lerobot-eval --eval.recording=true`` on a tiny ACT in LIBERO: one recorded dataset per episode.

    Returns:
        The ``meta/info.json`` of each recorded dataset.
    """
    _evaluate_libero(work_dir, "act", n_episodes, recording=True, fixes_in_force=fixes_in_force)
    recorded = [
        json.loads(path.read_text())
        for path in sorted((work_dir / "eval" / "recordings").rglob("meta/info.json"))
    ]
    if len(recorded) != n_episodes:
        raise SymptomError(f"{len(recorded)} recorded datasets for {n_episodes} episodes")
    assert (
        "observation.state.eef_pos" in recorded[0]["features"]
        and "observation.images.image" in recorded[0]["features"]
    )
    return recorded


def eval_recording_features(work_dir: Path, fixed: bool) -> None:
    """A LIBERO evaluation of one batch is recorded (``--eval.recording=true``)."""
    fix = compat.FIXES["eval_recording_features"]()
    _evaluate_libero_with_recording(work_dir, n_episodes=1, fixes_in_force=[fix] if fixed else [])


def eval_recording_rollouts(work_dir: Path, fixed: bool) -> None:
    """A LIBERO evaluation of two batches of episodes is recorded (with LIBERO's features named for recording)."""
    in_force = [
        compat.FIXES["eval_recording_features"](),
        *([compat.FIXES["eval_recording_rollouts"]()] if fixed else []),
    ]
    _evaluate_libero_with_recording(work_dir, n_episodes=2, fixes_in_force=in_force)


def eval_recording_timeouts(work_dir: Path, fixed: bool) -> None:
    """The recording of a LIBERO episode that runs to its step limit holds that episode, every step of it."""
    in_force = [
        compat.FIXES["eval_recording_features"](),
        compat.FIXES["eval_recording_rollouts"](),
        *([compat.FIXES["eval_recording_timeouts"]()] if fixed else []),
    ]
    (recorded,) = _evaluate_libero_with_recording(work_dir, n_episodes=1, fixes_in_force=in_force)
    if (recorded["total_episodes"], recorded["total_frames"]) != (1, _EPISODE_LENGTH):
        raise SymptomError(
            f"{recorded['total_episodes']} episodes and {recorded['total_frames']} frames recorded "
            f"of 1 episode of {_EPISODE_LENGTH} steps"
        )


def xvla_env_steps(work_dir: Path, fixed: bool) -> None:
    """``lerobot-eval`` runs an X-VLA saved by lerobot 0.6.1 in LIBERO."""
    fixes = [compat.FIXES["xvla_env_steps"]()] if fixed else []
    _evaluate_libero(work_dir, "xvla", n_episodes=1, recording=False, fixes_in_force=fixes)
    assert json.loads((work_dir / "eval" / "eval_info.json").read_text())["overall"]["n_episodes"] == 1


DEFECTS: dict[str, Defect] = {
    "tdmpc_image_key": Defect(tdmpc_image_key, KeyError, "observation.images.image"),
    "direct_forward_calls": Defect(direct_forward_calls, SymptomError, "fired 0 times"),
    "dataset_kwargs": Defect(dataset_kwargs, TypeError, "unexpected keyword argument 'dataset_stats'"),
    "stale_config_keys": Defect(stale_config_keys, draccus.utils.DecodingError, "mlp_hidden_dim"),
    "sac_policy_type": Defect(sac_policy_type, ValueError, "Policy type 'sac'"),
    "action_tokenizer_config": Defect(
        action_tokenizer_config,
        ValueError,
        "Failed to instantiate processor step 'action_tokenizer_processor'",
    ),
    "groot_backbone_processor": Defect(groot_backbone_processor, OSError, "huggingface.co"),
    "fastwam_vae_repo": Defect(fastwam_vae_repo, OSError, "Wan-AI/Wan2.2-TI2V-5B-Diffusers"),
    "eval_recording_features": Defect(
        eval_recording_features, ValueError, "Feature names should not contain '/'"
    ),
    "xvla_env_steps": Defect(xvla_env_steps, ValueError, r"has values outside \[0, 255\] range"),
    "eval_recording_rollouts": Defect(
        eval_recording_rollouts, FileExistsError, "recordings/libero_spatial_0"
    ),
    "eval_recording_timeouts": Defect(
        eval_recording_timeouts, SymptomError, "0 episodes and 0 frames recorded"
    ),
}
