"""Encode-only paths: run just the part of a policy that computes its feat A module.

Each function takes a policy and the batch ``select_action`` would get, and calls the
hooked module the way the policy's own inference does, without generating actions. The
hook table (:mod:`lerobot_cknna.hook_table`) pairs each with its module; tests check that
what the hook records here equals what it records inside ``select_action``.
"""

import einops
import torch
from lerobot.policies.pi0.modeling_pi0 import make_att_2d_masks as pi_att_2d_masks
from lerobot.policies.smolvla.modeling_smolvla import make_att_2d_masks as smolvla_att_2d_masks
from lerobot.utils.constants import OBS_IMAGE, OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS, OBS_STATE

# What GrootPolicy.predict_action_chunk hands the model at inference (besides the eagle_* tensors).
GROOT_INPUTS = ("state", "state_mask", "embodiment_id")


def _cameras_in_rows(policy, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """All cameras of one observation step as rows ``(b n)``, in ``config.image_features`` order."""
    images = torch.stack([batch[key] for key in policy.config.image_features], dim=1)
    return einops.rearrange(images, "b n ... -> (b n) ...")


def act(policy, batch: dict[str, torch.Tensor]) -> None:
    """ACT: the ResNet backbone, once per camera (as ``ACT.forward`` does)."""
    for key in policy.config.image_features:
        policy.model.backbone(batch[key])


def diffusion(policy, batch: dict[str, torch.Tensor]) -> None:
    """Diffusion: the shared RGB encoder on the current step's cameras (``_prepare_global_conditioning``)."""
    policy.diffusion.rgb_encoder(_cameras_in_rows(policy, batch))


def vqbet(policy, batch: dict[str, torch.Tensor]) -> None:
    """VQ-BeT: the RGB encoder on the current step's camera."""
    policy.vqbet.rgb_encoder(_cameras_in_rows(policy, batch))


def sac(policy, batch: dict[str, torch.Tensor]) -> None:
    """SAC: the image encoder on all cameras, batched camera-first (``get_cached_image_features``)."""
    policy.actor.encoder.get_cached_image_features(batch)


def tdmpc(policy, batch: dict[str, torch.Tensor]) -> None:
    """TDMPC: ``model.encode`` on the current observation (its image encoder fires once).

    The camera goes in under both its configured key and ``observation.image``, so this
    works with and without the image-key defect (see :mod:`lerobot_cknna.fixes.tdmpc_image_key`).
    """
    camera = next(iter(policy.config.image_features))
    policy.model.encode({OBS_IMAGE: batch[camera], camera: batch[camera], OBS_STATE: batch[OBS_STATE]})


def smolvla(policy, batch: dict[str, torch.Tensor]) -> None:
    """SmolVLA: the VLM prefill over images, language and state (``sample_actions`` up to the KV cache)."""
    batch = policy._prepare_batch(dict(batch))
    images, img_masks = policy.prepare_images(batch)
    prefix, pad_masks, att_masks = policy.model.embed_prefix(
        images,
        img_masks,
        batch[OBS_LANGUAGE_TOKENS],
        batch[OBS_LANGUAGE_ATTENTION_MASK],
        state=policy.prepare_state(batch),
    )
    policy.model.vlm_with_expert(
        attention_mask=smolvla_att_2d_masks(pad_masks, att_masks),
        position_ids=torch.cumsum(pad_masks, dim=1) - 1,
        past_key_values=None,
        inputs_embeds=[prefix, None],
        use_cache=policy.config.use_cache,
        fill_kv_cache=True,
    )


def xvla(policy, batch: dict[str, torch.Tensor]) -> None:
    """X-VLA: ``model.forward_vlm`` on the inputs ``select_action`` builds (Florence encoder, no denoising)."""
    inputs = policy._build_model_inputs(batch)
    policy.model.forward_vlm(
        inputs["input_ids"], inputs["image_input"].to(policy.model._get_target_dtype()), inputs["image_mask"]
    )


def groot(policy, batch: dict[str, torch.Tensor]) -> None:
    """GR00T N1.5: the Eagle backbone, then ``action_head.process_backbone_output`` (no flow-matching steps).

    The inputs, the dtype casts and the bf16 autocast are those of ``predict_action_chunk``
    and ``GR00TN15.get_action``.
    """
    model = policy._groot_model
    inputs = {key: value for key, value in batch.items() if key in GROOT_INPUTS or key.startswith("eagle_")}
    device = next(policy.parameters()).device
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=policy.config.use_bf16):
        backbone_inputs, _ = model.prepare_input(inputs)
        model.action_head.process_backbone_output(model.backbone(backbone_inputs))


def _paligemma_prefill(model, prefix_embs, pad_masks, att_masks_4d, **forward_kwargs) -> None:
    """The Pi family's prefill: PaliGemma alone over the prefix, positions counting valid tokens only."""
    model.paligemma_with_expert(
        attention_mask=att_masks_4d,
        position_ids=torch.cumsum(pad_masks, dim=1) - 1,
        past_key_values=None,
        inputs_embeds=[prefix_embs, None],
        use_cache=True,
        **forward_kwargs,
    )


def pi0(policy, batch: dict[str, torch.Tensor]) -> None:
    """Pi0 and Pi0.5: the prefill over images and prompt (``sample_actions`` up to the KV cache)."""
    images, img_masks = policy._preprocess_images(batch)
    model = policy.model
    prefix_embs, pad_masks, att_masks = model.embed_prefix(
        images, img_masks, batch[OBS_LANGUAGE_TOKENS], batch[OBS_LANGUAGE_ATTENTION_MASK]
    )
    model.paligemma_with_expert.paligemma.language_model.config._attn_implementation = "eager"
    att_masks_4d = model._prepare_attention_masks_4d(pi_att_2d_masks(pad_masks, att_masks))
    _paligemma_prefill(model, prefix_embs, pad_masks, att_masks_4d)


def pi0_fast(policy, batch: dict[str, torch.Tensor]) -> None:
    """Pi0-FAST: the prefill over images, prompt and the BOS that starts decoding (no decoded token)."""
    images, img_masks = policy._preprocess_images(batch)
    model = policy.model
    tokens, masks = batch[OBS_LANGUAGE_TOKENS], batch[OBS_LANGUAGE_ATTENTION_MASK]
    bos = torch.full_like(tokens[:, :1], model._paligemma_tokenizer.bos_token_id)
    prefix_embs, pad_masks, att_masks, _, _ = model.embed_prefix_fast(
        images,
        img_masks,
        torch.cat([tokens, bos], dim=1),
        torch.cat([masks, torch.ones_like(masks[:, :1])], dim=1),
    )
    att_masks_4d = model._prepare_attention_masks_4d(att_masks, dtype=prefix_embs.dtype)
    _paligemma_prefill(model, prefix_embs, pad_masks, att_masks_4d, adarms_cond=[None, None])
