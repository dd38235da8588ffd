"""Tiny policies of the real LeRobot classes, LIBERO-shaped, built with no network.

Each builder returns a randomly initialised policy whose module tree (and so its hook path
and module classes) is the real one, with small widths so that it runs on a CPU in
seconds. Inputs follow LIBERO as LeRobot's processor builds them: two (3, 256, 256)
cameras (one where the type accepts only one; FastWAM declares them at its own per-camera size
and resizes LIBERO's frames itself), an 8-D ``observation.state``, a 7-D action. No pretrained vision weights are loaded (``pretrained_backbone_weights=None``).
"""

import contextlib
import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.factory import get_policy_class
from lerobot.policies.pretrained import PreTrainedPolicy

from lerobot_cknna.compat import apply_policy_fixes, construction_fixes, make_pre_post_processors
from lerobot_cknna.compat.policy_construction import TINY_BUILD_MARKER
from lerobot_cknna.results.provenance import Weights, write_provenance
from lerobot_cknna.testing.tiny_assets import (
    libero_task_descriptions,
    tiny_florence_config,
    write_tiny_clip,
    write_tiny_internvl,
    write_tiny_molmoact2,
    write_tiny_qwen2_5_vl,
    write_tiny_qwen3_vl,
    write_tiny_smolvlm,
    write_tiny_wall_x,
    write_tiny_wan,
    write_word_tokenizer,
)
from lerobot_cknna.testing.tiny_pi import (
    tiny_pi_build,
    write_fast_action_tokenizer,
    write_paligemma_tokenizer,
)

CAMERAS = ("observation.images.image", "observation.images.image2")
IMAGE_SHAPE = (3, 256, 256)
STATE_DIM, ACTION_DIM = 8, 7


def libero_features(
    n_cameras: int = 2, image_shape: tuple[int, int, int] = IMAGE_SHAPE
) -> tuple[dict[str, PolicyFeature], dict[str, PolicyFeature]]:
    """Input and output features of a LIBERO policy with ``n_cameras`` cameras, declared at ``image_shape``."""
    inputs = {key: PolicyFeature(FeatureType.VISUAL, image_shape) for key in CAMERAS[:n_cameras]}
    inputs["observation.state"] = PolicyFeature(FeatureType.STATE, (STATE_DIM,))
    return inputs, {"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))}


def _act_config(assets: Path):
    from lerobot.policies.act.configuration_act import ACTConfig

    inputs, outputs = libero_features()
    return ACTConfig(
        input_features=inputs, output_features=outputs, pretrained_backbone_weights=None,
        dim_model=64, n_heads=2, dim_feedforward=128, n_encoder_layers=1, n_decoder_layers=1,
        n_vae_encoder_layers=1, latent_dim=8, chunk_size=4, n_action_steps=4, device="cpu",
    )  # fmt: skip


def _diffusion_config(assets: Path):
    """Lerobot 0.6's layout: one encoder per camera (see :data:`DIFFUSION_SHARED_ENCODER` for the other)."""
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig

    inputs, outputs = libero_features()
    return DiffusionConfig(
        input_features=inputs, output_features=outputs, pretrained_backbone_weights=None,
        n_obs_steps=2, horizon=8, n_action_steps=4, down_dims=(16, 32), diffusion_step_embed_dim=16,
        num_inference_steps=2, spatial_softmax_num_keypoints=8, device="cpu",
    )  # fmt: skip


# The layout of Diffusion checkpoints saved before lerobot 0.5: one encoder shared by the cameras.
DIFFUSION_SHARED_ENCODER = {"use_separate_rgb_encoder_per_camera": False, "use_group_norm": True}


def _vqbet_config(assets: Path):
    from lerobot.policies.vqbet.configuration_vqbet import VQBeTConfig

    inputs, outputs = libero_features(n_cameras=1)
    return VQBeTConfig(
        input_features=inputs, output_features=outputs, pretrained_backbone_weights=None, n_obs_steps=2,
        n_action_pred_token=2, action_chunk_size=2, spatial_softmax_num_keypoints=8, vqvae_n_embed=8,
        vqvae_embedding_dim=16, vqvae_enc_hidden_dim=16, gpt_block_size=16, gpt_input_dim=32,
        gpt_output_dim=32, gpt_n_layer=1, gpt_n_head=2, gpt_hidden_dim=32, device="cpu",
    )  # fmt: skip


def _gaussian_actor_config(assets: Path):
    from lerobot.policies.gaussian_actor.configuration_gaussian_actor import (
        ActorNetworkConfig,
        CriticNetworkConfig,
        GaussianActorConfig,
    )

    inputs, outputs = libero_features()
    stats = {
        "observation.state": {"min": [-1.0] * STATE_DIM, "max": [1.0] * STATE_DIM},
        "action": {"min": [-1.0] * ACTION_DIM, "max": [1.0] * ACTION_DIM},
        **{key: {"mean": [0.5] * 3, "std": [0.25] * 3} for key in CAMERAS},
    }
    return GaussianActorConfig(
        input_features=inputs, output_features=outputs, dataset_stats=stats, image_encoder_hidden_dim=8,
        latent_dim=16, state_encoder_hidden_dim=16, actor_network_kwargs=ActorNetworkConfig(hidden_dims=[32, 32]),
        discrete_critic_network_kwargs=CriticNetworkConfig(hidden_dims=[32, 32]), device="cpu",
    )  # fmt: skip


def _tdmpc_config(assets: Path):
    from lerobot.policies.tdmpc.configuration_tdmpc import TDMPCConfig

    inputs, outputs = libero_features(n_cameras=1)
    return TDMPCConfig(
        input_features=inputs, output_features=outputs, image_encoder_hidden_dim=8,
        state_encoder_hidden_dim=16, latent_dim=16, mlp_dim=32, q_ensemble_size=2, horizon=2,
        cem_iterations=1, n_gaussian_samples=16, n_pi_samples=4, n_elites=4, device="cpu",
    )  # fmt: skip


def _smolvla_config(assets: Path):
    from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig

    inputs, outputs = libero_features()
    return SmolVLAConfig(
        input_features=inputs, output_features=outputs, vlm_model_name=str(write_tiny_smolvlm(assets / "smolvlm")),
        load_vlm_weights=False, num_vlm_layers=2, chunk_size=4, n_action_steps=4, num_steps=2,
        tokenizer_max_length=24, device="cpu",
    )  # fmt: skip


XVLA_ACTION_DIM = 20


def _xvla_config(assets: Path):
    from lerobot.policies.xvla.configuration_xvla import XVLAConfig

    inputs, _ = libero_features()
    # As LeRobot's LIBERO X-VLA: 20-D end-effector actions with 6-D rotations ("ee6d"), which its
    # LIBERO env postprocessor turns into LIBERO's 7-D actions.
    outputs = {"action": PolicyFeature(FeatureType.ACTION, (XVLA_ACTION_DIM,))}
    tokenizer_dir = assets / "word_tokenizer"
    tokenizer = write_word_tokenizer(tokenizer_dir)
    return XVLAConfig(
        input_features=inputs, output_features=outputs, florence_config=tiny_florence_config(tokenizer),
        tokenizer_name=str(tokenizer_dir), tokenizer_max_length=24, hidden_size=32, depth=1, num_heads=2,
        len_soft_prompts=4, dim_time=8, max_len_seq=256, chunk_size=4, n_action_steps=4,
        num_denoising_steps=2, action_mode="ee6d", device="cpu",
    )  # fmt: skip


def write_tiny_groot_base(directory: Path, backbone_dir: Path, action_horizon: int = 4) -> Path:
    """Write a tiny GR00T N1.7 base checkpoint (random weights), the local stand-in for ``nvidia/GR00T-N1.7-3B``.

    The model is LeRobot's ``GR00TN17``: the Qwen3-VL backbone from ``backbone_dir`` (built from
    its config, cut at ``select_layer``), then the flow-matching action head with its ``vlln`` +
    ``vl_self_attention`` and a small DiT. N1.7 has no projection between backbone and head, so
    the backbone width is the head's ``backbone_embedding_dim``.

    Returns:
        ``directory``, absolute, to use as ``GrootConfig.base_model_path`` (an absolute path is
        loaded without asking the Hub; a relative one is taken for a repository id).
    """
    from lerobot.policies.groot.groot_n1_7 import GR00TN17, GR00TN17Config

    directory = Path(directory).resolve()
    vl_width, action_width = 64, 32
    config = GR00TN17Config(
        model_name=str(backbone_dir), backbone_model_type="qwen", model_dtype="float32", dtype="float32",
        backbone_embedding_dim=vl_width, select_layer=2, max_state_dim=132, max_action_dim=132,
        action_horizon=action_horizon, hidden_size=action_width, input_embedding_dim=action_width,
        max_seq_len=16, attn_dropout=0.0, num_inference_timesteps=2,
        diffusion_model_cfg={
            "positional_embeddings": None, "num_layers": 4, "num_attention_heads": 2,
            "attention_head_dim": action_width // 2, "norm_type": "ada_norm", "dropout": 0.0,
            "final_dropout": True, "output_dim": action_width, "interleave_self_attention": True,
        },
        vl_self_attention_cfg={
            "positional_embeddings": None, "num_layers": 2, "num_attention_heads": 2,
            "attention_head_dim": vl_width // 2, "dropout": 0.0, "final_dropout": True,
        },
    )  # fmt: skip
    GR00TN17(config, load_backbone_weights=False).save_pretrained(directory)
    return directory


def _groot_config(assets: Path):
    from lerobot.policies.groot.configuration_groot import GrootConfig

    inputs, outputs = libero_features()
    base = assets / "groot_n1_7_base"
    if not (base / "model.safetensors").is_file():
        write_tiny_groot_base(base, write_tiny_qwen3_vl(assets / "qwen3_vl"), action_horizon=4)
    return GrootConfig(
        input_features=inputs, output_features=outputs, base_model_path=str(base.resolve()), chunk_size=4,
        n_action_steps=4, use_bf16=False, device="cpu",
    )  # fmt: skip


def _pi0_config(assets: Path):
    from lerobot.policies.pi0.configuration_pi0 import PI0Config

    inputs, outputs = libero_features()
    # One empty camera slot: its image tokens are in the prefix, masked out.
    return PI0Config(
        input_features=inputs, output_features=outputs, empty_cameras=1, chunk_size=4, n_action_steps=4,
        num_inference_steps=2, device="cpu",
    )  # fmt: skip


def _pi05_config(assets: Path):
    from lerobot.policies.pi05.configuration_pi05 import PI05Config

    inputs, outputs = libero_features()
    # The prompt holds the discretized 8-D state too.
    return PI05Config(
        input_features=inputs, output_features=outputs, chunk_size=4, n_action_steps=4, num_inference_steps=2,
        device="cpu",
    )  # fmt: skip


def _pi0_fast_config(assets: Path):
    from lerobot.policies.pi0_fast.configuration_pi0_fast import PI0FastConfig

    inputs, outputs = libero_features()
    text_tokenizer = write_paligemma_tokenizer(assets / "paligemma_tokenizer")
    action_tokenizer = write_fast_action_tokenizer(
        assets / "fast_tokenizer", chunk_size=4, action_dim=ACTION_DIM
    )
    # Random weights decode no "Action:" prefix; at most 6 decoding steps: the prefill, then one-token firings.
    return PI0FastConfig(
        input_features=inputs, output_features=outputs, chunk_size=4, n_action_steps=4,
        text_tokenizer_name=str(text_tokenizer.resolve()), action_tokenizer_name=str(action_tokenizer.resolve()),
        max_decoding_steps=6, validate_action_token_prefix=False, device="cpu",
    )  # fmt: skip


def _multi_task_dit_config(assets: Path):
    """One CLIP vision tower shared by both cameras (lerobot 0.6's default), center crop to 224 x 224."""
    from lerobot.policies.multi_task_dit.configuration_multi_task_dit import MultiTaskDiTConfig

    inputs, outputs = libero_features()
    clip = str(write_tiny_clip(assets / "tiny_clip"))
    return MultiTaskDiTConfig(
        input_features=inputs, output_features=outputs, vision_encoder_name=clip, text_encoder_name=clip,
        tokenizer_max_length=24, n_obs_steps=2, horizon=8, n_action_steps=4, hidden_dim=32, num_layers=1,
        num_heads=2, timestep_embed_dim=16, num_inference_steps=2, device="cpu",
    )  # fmt: skip


def _evo1_config(assets: Path):
    """A tiny InternVL3 read at 64 x 64, cut to 2 of its 3 text layers, in float32 with eager attention.

    EVO1's three view slots (lerobot 0.6's ``max_views``) hold LIBERO's two cameras and one absent
    view, whose image tokens are masked out. The preprocessor pads the 8-D state to ``max_state_dim``.
    """
    from lerobot.policies.evo1.configuration_evo1 import Evo1Config

    inputs, outputs = libero_features()
    return Evo1Config(
        input_features=inputs, output_features=outputs, vlm_model_name=str(write_tiny_internvl(assets / "internvl3")),
        vlm_num_layers=2, vlm_dtype="float32", use_flash_attn=False, image_resolution=(64, 64), embed_dim=64,
        hidden_dim=32, state_hidden_dim=32, num_heads=2, num_layers=1, num_inference_timesteps=2, chunk_size=4,
        n_action_steps=4, use_amp=False, device="cpu",
    )  # fmt: skip


def _eo1_config(assets: Path):
    """A tiny Qwen2.5-VL in float32 with eager attention; each camera read at 112 x 112 (16 image tokens).

    The processor resizes every image to between ``image_min_pixels`` and ``image_max_pixels``
    pixels, multiples of 28: both 112², so 8 x 8 patches merged 2 x 2. Two denoising steps.
    """
    from lerobot.policies.eo1.configuration_eo1 import EO1Config
    from lerobot.policies.eo1.processor_eo1 import EO1_SPECIAL_TOKENS

    inputs, outputs = libero_features()
    return EO1Config(
        input_features=inputs, output_features=outputs,
        vlm_base=str(write_tiny_qwen2_5_vl(assets / "qwen2_5_vl", extra_tokens=EO1_SPECIAL_TOKENS)),
        image_min_pixels=112 * 112, image_max_pixels=112 * 112, dtype="float32", attn_implementation="eager",
        chunk_size=4, n_action_steps=4, num_denoise_steps=2, device="cpu",
    )  # fmt: skip


def _vla_jepa_config(assets: Path):
    """A tiny Qwen3-VL with random weights (VLA-JEPA loads them by name), no world model, the test DiT.

    Without the world model nothing loads V-JEPA 2 (``jepa_encoder_name``); float32, as the tiny
    Qwen3-VL was written (LeRobot still runs the Qwen forward under bf16 autocast).
    """
    from lerobot.policies.vla_jepa.configuration_vla_jepa import VLAJEPAConfig

    inputs, outputs = libero_features()
    qwen = write_tiny_qwen3_vl(assets / "qwen3_vl_weights", weights=True)
    return VLAJEPAConfig(
        input_features=inputs, output_features=outputs, qwen_model_name=str(qwen), enable_world_model=False,
        torch_dtype="float32", action_model_type="DiT-test", action_num_layers=1, action_hidden_size=16,
        chunk_size=4, n_action_steps=4, num_inference_timesteps=2, device="cpu",
    )  # fmt: skip


def _molmoact2_config(assets: Path):
    """A tiny MolmoAct2 checkpoint written locally, in float32, continuous actions (flow matching) only.

    Without discrete actions the processor loads no FAST action tokenizer
    (``discrete_action_tokenizer``); two flow-matching steps.
    """
    from lerobot.policies.molmoact2.configuration_molmoact2 import MolmoAct2Config

    inputs, outputs = libero_features()
    return MolmoAct2Config(
        input_features=inputs, output_features=outputs,
        checkpoint_path=str(write_tiny_molmoact2(assets / "molmoact2")), action_mode="continuous",
        inference_action_mode="continuous", model_dtype="float32", chunk_size=4, n_action_steps=4,
        num_inference_steps=2, enable_inference_cuda_graph=False, device="cpu",
    )  # fmt: skip


def _lingbot_va_config(assets: Path):
    """A tiny Wan base (VAE, UMT5, tokenizer), a 2-block dual-stream transformer, both cameras at 32 x 32.

    Each camera's 32 x 32 frame is one 2 x 2 latent, one token per frame after the transformer's
    2 x 2 patches: a chunk of 2 latent frames is 4 video tokens (the cameras side by side), then
    4 actions per frame. One denoising step each for video and actions (two calls each: the step,
    then the call at t = 0 that writes the cache). Float32; prompts of at most 16 tokens.
    """
    from lerobot.policies.lingbot_va.configuration_lingbot_va import LingBotVAConfig

    inputs, outputs = libero_features()
    return LingBotVAConfig(
        input_features=inputs, output_features=outputs, wan_pretrained_path=str(write_tiny_wan(assets / "wan")),
        num_attention_heads=2, attention_head_dim=12, text_dim=16, freq_dim=16, ffn_dim=32, num_layers=2,
        dtype="float32", height=32, width=32, frame_chunk_size=2, action_per_frame=4, attn_window=4,
        num_inference_steps=1, action_num_inference_steps=1, max_sequence_length=16, device="cpu",
    )  # fmt: skip


def _fastwam_config(assets: Path):
    """FastWAM's two experts two layers deep, 32 wide, on a tiny local Wan2.2 repository (UMT5, tokenizer, VAE).

    Each camera is declared at 64 x 64 (FastWAM's ``image_size`` split between the cameras, as
    LeRobot's ``set_dataset_feature_metadata`` declares them; the policy resizes LIBERO's frames
    itself), so the first frame is a 4 x 8 latent: 8 video tokens of 2 x 2 latent patches. The
    video expert keeps LeRobot's default masks and timestep modes; 4 actions per chunk (the
    smallest horizon 4 video transitions divide), two denoising steps; no base checkpoint.
    """
    from lerobot.policies.fastwam.configuration_fastwam import FastWAMConfig, default_video_dit_config

    inputs, outputs = libero_features(image_shape=(3, 64, 64))
    prompt_words = re.findall(r"[a-z]+", FastWAMConfig.prompt_template.lower())
    wan = write_tiny_wan(assets / "wan_fastwam", text_width=32, extra_words=prompt_words)
    shared = {"num_heads": 2, "attn_head_dim": 16, "num_layers": 2, "text_dim": 32, "freq_dim": 32}
    return FastWAMConfig(
        input_features=inputs, output_features=outputs, image_size=(64, 128), action_dim=ACTION_DIM,
        proprio_dim=STATE_DIM, action_horizon=4, n_action_steps=4, num_video_frames=5, action_video_freq_ratio=1,
        tokenizer_model_id=str(wan / "tokenizer"), text_encoder_model_id=str(wan), base_model_id=None,
        tokenizer_max_len=48, torch_dtype="float32", num_inference_steps=2,
        video_dit_config=default_video_dit_config(ACTION_DIM) | {"hidden_dim": 32, "ffn_dim": 64, **shared},
        action_dit_config={"action_dim": ACTION_DIM, "hidden_dim": 32, "ffn_dim": 64, "eps": 1e-6, **shared},
        device="cpu",
    )  # fmt: skip


def _wall_x_config(assets: Path):
    """A tiny Wall-X base checkpoint (random weights) as ``pretrained_name_or_path``, in diffusion mode.

    Diffusion mode loads no action tokenizer (``action_tokenizer_path`` is set to ``None``). Wall-X
    casts its model to bfloat16 itself (its layer norms and action head stay float32) and resizes each
    camera to 252 x 252 (its fixed 256 px resolution, rounded to 28 px), which the tiny processor
    shrinks to 112 x 112: 16 image tokens. Its ten Euler steps are fixed (``predict``'s default,
    which the policy does not pass).
    """
    from lerobot.policies.wall_x.configuration_wall_x import WallXConfig

    inputs, outputs = libero_features()
    return WallXConfig(
        input_features=inputs, output_features=outputs, pretrained_name_or_path=str(write_tiny_wall_x(assets / "wall_x")),
        prediction_mode="diffusion", chunk_size=4, n_action_steps=4, device="cpu",
    )  # fmt: skip


TINY_CONFIGS: dict[str, Callable[[Path], object]] = {
    "act": _act_config,
    "diffusion": _diffusion_config,
    "vqbet": _vqbet_config,
    "gaussian_actor": _gaussian_actor_config,
    "tdmpc": _tdmpc_config,
    "smolvla": _smolvla_config,
    "xvla": _xvla_config,
    "groot": _groot_config,
    "pi0": _pi0_config,
    "pi05": _pi05_config,
    "pi0_fast": _pi0_fast_config,
    "multi_task_dit": _multi_task_dit_config,
    "evo1": _evo1_config,
    "eo1": _eo1_config,
    "vla_jepa": _vla_jepa_config,
    "molmoact2": _molmoact2_config,
    "lingbot_va": _lingbot_va_config,
    "fastwam": _fastwam_config,
    "wall_x": _wall_x_config,
}


PI_FAMILY = ("pi0", "pi05", "pi0_fast")


@contextlib.contextmanager
def tiny_build(policy_type: str, assets: Path, fixes: bool = True) -> Iterator[None]:
    """What building or loading a tiny ``policy_type`` needs in force.

    LeRobot's Pi size tables swapped for the Pi family, and with ``fixes`` the construction
    fixes (:func:`lerobot_cknna.compat.construction_fixes`).
    """
    with contextlib.ExitStack() as stack:
        if fixes:
            stack.enter_context(construction_fixes())
        if policy_type in PI_FAMILY:
            stack.enter_context(tiny_pi_build(assets))
        yield


def default_assets_dir() -> Path:
    """Where tiny builds write their local VLM configs and tokenizers unless told otherwise."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lerobot_cknna" / "tiny_assets"


def build_tiny_policy(
    policy_type: str, seed: int = 0, assets: Path | None = None, apply_fixes: bool = True, **config_changes
) -> PreTrainedPolicy:
    """A tiny, randomly initialised policy of the real class for ``policy_type``, in eval mode.

    Args:
        policy_type: a key of :data:`TINY_CONFIGS`.
        seed: seed of the random weights.
        assets: directory for the local VLM config and tokenizer a VLA loads by name
            (default: :func:`default_assets_dir`).
        apply_fixes: apply the run-time fixes for LeRobot defects (:mod:`lerobot_cknna.compat`)
            whose defect this policy shows; off only to show a defect.
        **config_changes: config fields to change from the tiny build's, e.g.
            :data:`DIFFUSION_SHARED_ENCODER`.
    """
    if policy_type not in TINY_CONFIGS:
        raise ValueError(f"No tiny build for {policy_type!r}; available: {', '.join(TINY_CONFIGS)}.")
    torch.manual_seed(seed)
    assets = Path(assets or default_assets_dir())
    with tiny_build(policy_type, assets, fixes=apply_fixes):
        config = dataclasses.replace(TINY_CONFIGS[policy_type](assets), **config_changes)
        policy = get_policy_class(policy_type)(config).eval()
    if apply_fixes:
        apply_policy_fixes(policy)
    return policy


def libero_stats() -> dict[str, dict[str, torch.Tensor]]:
    """Normalization statistics of LIBERO's shape (every mode's keys), for saving processors."""

    def stats(shape):
        return {
            "mean": torch.zeros(shape),
            "std": torch.ones(shape),
            "min": -torch.ones(shape),
            "max": torch.ones(shape),
            "q01": -torch.ones(shape),
            "q99": torch.ones(shape),
        }

    image = {key: {**stats((3, 1, 1)), "mean": torch.full((3, 1, 1), 0.5), "std": torch.full((3, 1, 1), 0.25)}
             for key in CAMERAS}  # fmt: skip
    return {"observation.state": stats((STATE_DIM,)), "action": stats((ACTION_DIM,)), **image}


def save_tiny_policy(policy_type: str, directory: Path, seed: int = 0, **config_changes) -> PreTrainedPolicy:
    """Build a tiny policy and save it with its pre/post-processors, loadable with ``--policy.path``.

    Local assets (a VLA's VLM config and tokenizer) go to ``directory/assets``, so the
    directory is self-contained while it stays where it was written. The tiny-build marker
    (:data:`~lerobot_cknna.compat.policy_construction.TINY_BUILD_MARKER`) names the tiny build and
    those assets, so ``lerobot-cknna --policy.path=directory`` builds it tiny
    (:func:`~lerobot_cknna.compat.policy_construction.policy_construction`).

    Returns:
        The policy that was saved.
    """
    directory = Path(directory).resolve()
    policy = build_tiny_policy(policy_type, seed, assets=directory / "assets", **config_changes)
    with tiny_build(policy_type, directory / "assets"):
        preprocessor, postprocessor = make_pre_post_processors(policy.config, dataset_stats=libero_stats())
    policy.save_pretrained(directory)
    preprocessor.save_pretrained(directory)
    postprocessor.save_pretrained(directory)
    write_provenance(
        directory, Weights.RANDOM, f"tiny {policy_type} of the real LeRobot class, random init (seed {seed})"
    )
    marker = {"policy_type": policy_type, "tiny_build": f"{__name__}.tiny_build", "assets": "assets"}
    (directory / TINY_BUILD_MARKER).write_text(json.dumps(marker, indent=2))
    return policy


def libero_observation(policy: PreTrainedPolicy, batch_size: int, seed: int = 0) -> dict:
    """A raw LIBERO-shaped observation for ``policy``: images in [0, 1] from LIBERO's cameras, state, tasks.

    A camera slot of the policy that LIBERO has no camera for (Pi0's ``empty_cameras``) stays missing.
    """
    gen = torch.Generator().manual_seed(seed)
    observation = {
        key: torch.rand(batch_size, *IMAGE_SHAPE, generator=gen)
        for key in policy.config.image_features
        if key in CAMERAS
    }
    observation["observation.state"] = torch.randn(batch_size, STATE_DIM, generator=gen)
    tasks = libero_task_descriptions("libero_spatial")
    observation["task"] = [tasks[(seed + i) % len(tasks)] for i in range(batch_size)]
    return observation


def libero_batch(policy: PreTrainedPolicy, batch_size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """:func:`libero_observation` through the policy's own preprocessor: what ``select_action`` gets."""
    with tiny_build(policy.config.type, default_assets_dir()):
        preprocessor, _ = make_pre_post_processors(policy.config, dataset_stats=libero_stats())
    return preprocessor(libero_observation(policy, batch_size, seed))
