import functools
import math

import pytest
import torch
from lerobot.policies.fastwam.wan.video_dit import modulate

from lerobot_cknna.capture.hook_table import (
    HOOK_TABLE,
    HookSpec,
    LayerTap,
    check_simulation,
    layer_taps,
    spec_for,
    token_group_types,
)
from lerobot_cknna.capture.hooks import (
    TOKEN_GROUPS,
    CaptureError,
    FeatureCapture,
    batch_size_of,
    capture_features,
    encode_features,
    token_count_key,
    token_group_key,
    token_group_masks,
)
from lerobot_cknna.capture.module_paths import resolve_module, resolve_modules
from lerobot_cknna.testing.tiny_policies import IMAGE_SHAPE, build_tiny_policy, libero_batch
from lerobot_cknna.utils.patching import patched
from tests.utils import TINY_TYPES, TINY_VARIANTS, hook_count, recorded_firings


@pytest.fixture(params=sorted(TINY_VARIANTS))
def tiny(request, tiny_policies):
    return TINY_VARIANTS[request.param][0], tiny_policies(request.param)


# The variants whose model calls are independent of each other: LingBot-VA's continue its episode,
# and its own test checks what a capture of it refuses.
INDEPENDENT_CALLS = sorted(
    variant
    for variant, (policy_type, _) in TINY_VARIANTS.items()
    if getattr(HOOK_TABLE[policy_type], "episode_calls", None) is None
)


@pytest.fixture(params=INDEPENDENT_CALLS)
def tiny_independent_calls(request, tiny_policies):
    return tiny_policies(request.param)


def spec_of(policy):
    return spec_for(policy.config.type, config=policy.config)


def samples_per_call(policy, wanted: int) -> int:
    """``wanted``, or one for a policy that takes one sample per call (LingBot-VA)."""
    return 1 if spec_of(policy).episode_calls is not None else wanted


def test_select_action_capture_equals_encode_only(tiny):
    policy_type, policy = tiny
    n_samples = samples_per_call(policy, 3)
    batch = libero_batch(policy, batch_size=n_samples)
    hooks_before = hook_count(policy)
    policy.reset()
    with capture_features(policy) as capture:
        policy.select_action(dict(batch))
        captured = capture.pop(n_samples)
    encoded = encode_features(policy, batch)
    assert captured.shape == encoded.shape and captured.shape[0] == n_samples
    assert captured.dtype == torch.float32 and torch.isfinite(captured).all()
    torch.testing.assert_close(captured, encoded, rtol=1e-5, atol=1e-6)
    assert hook_count(policy) == hooks_before
    assert not any("embed_prefix" in vars(module) for module in policy.modules())


def samples(batch: dict, start: int, stop: int, batch_size: int) -> dict:
    """Samples ``start:stop`` of a batch; tensors with several rows per sample (GR00T: one per camera) keep theirs.

    Instructions the model tokenizes itself (EVO1's and VLA-JEPA's ``task`` strings, one per sample) are kept too, and
    values of the whole batch (EO1's token ids) as they are.
    """
    whole = {key: value for key, value in batch.items() if isinstance(value, int)}
    picked = {key: value[start:stop] for key, value in batch.items() if isinstance(value, list)}
    return (
        whole
        | picked
        | {
            key: value[start * (rows := value.shape[0] // batch_size) : stop * rows]
            for key, value in batch.items()
            if torch.is_tensor(value)
        }
    )


def test_one_vector_per_sample_and_samples_are_independent(tiny):
    _, policy = tiny
    batch = libero_batch(policy, batch_size=4, seed=1)
    together = encode_features(policy, batch)
    alone = encode_features(policy, samples(batch, 2, 3, batch_size=4))
    torch.testing.assert_close(together[2:3], alone, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(together[0], together[1])


def test_capture_pairs_firings_with_the_observations_that_ran_the_model(tiny_independent_calls):
    policy = tiny_independent_calls
    hooks_before = hook_count(policy)
    policy.reset()
    fired = []
    with capture_features(policy) as capture:
        for step in range(6):
            batch = libero_batch(policy, batch_size=2, seed=10 + step)
            policy.select_action(dict(batch))
            feats = capture.pop(2)
            if feats is not None:
                fired.append((step, batch, feats))
    assert fired and fired[0][0] == 0
    for _, batch, feats in fired:
        torch.testing.assert_close(feats, encode_features(policy, batch), rtol=1e-5, atol=1e-6)
    assert hook_count(policy) == hooks_before


def test_hooks_are_removed_even_on_error(tiny):
    _, policy = tiny
    hooks_before = hook_count(policy)
    with pytest.raises(RuntimeError, match="boom"), capture_features(policy):
        raise RuntimeError("boom")
    assert hook_count(policy) == hooks_before


def test_table_paths_are_the_real_modules(tiny):
    policy_type, policy = tiny
    modules = resolve_modules(policy, spec_of(policy).module_path)
    expected = {
        "act": "IntermediateLayerGetter",
        "diffusion": "DiffusionRgbEncoder",
        "vqbet": "VQBeTRgbEncoder",
        "gaussian_actor": "DefaultImageEncoder",
        "tdmpc": "Sequential",
        "smolvla": "LlamaRMSNorm",
        "xvla": "BartEncoder",
        "groot": "SelfAttentionTransformer",
        "pi0": "PiGemmaRMSNorm",
        "pi05": "PiGemmaRMSNorm",
        "pi0_fast": "PiGemmaRMSNorm",
        "multi_task_dit": "CLIPVisionEncoder",
        "evo1": "Qwen2RMSNorm",
        "eo1": "Qwen2_5_VLRMSNorm",
        "vla_jepa": "Qwen3VLTextDecoderLayer",
        "molmoact2": "MolmoAct2RMSNorm",
        "lingbot_va": "WanTransformerBlock",
        "fastwam": "WanLayerNorm",
        "wall_x": "Qwen2_5_VLRMSNorm",
    }[policy_type]
    # Diffusion's encoders per camera (lerobot 0.6's default): one module per camera, in camera order.
    separate = getattr(policy.config, "use_separate_rgb_encoder_per_camera", False)
    assert len(modules) == (len(policy.config.image_features) if separate else 1)
    assert {type(module).__name__ for module in modules} == {expected}


def test_bad_hook_path_suggests_close_names(tiny_policies):
    policy = tiny_policies("act")
    with pytest.raises(ValueError, match=r"no module at 'model.backbon'.*model\.backbone"):
        capture_features(policy, hook_path="model.backbon")


def test_hook_that_never_fires_is_an_error(tiny_policies):
    policy = tiny_policies("act")
    batch = libero_batch(policy, batch_size=2)
    with capture_features(policy, hook_path="model.decoder") as capture:
        policy.model.backbone(batch["observation.images.image"])
        with pytest.raises(CaptureError, match="did not fire"):
            capture.pop_all(2, required=True)
    with pytest.raises(CaptureError, match="did not fire"):
        encode_features(policy, batch, hook_path="model.vae_encoder")


def test_unexpected_number_of_firings_is_an_error(tiny_policies):
    policy = tiny_policies("act")
    batch = libero_batch(policy, batch_size=2)
    with capture_features(policy) as capture:
        policy.model.backbone(batch["observation.images.image"])
        with pytest.raises(CaptureError, match="fired 1 times in one forward, expected 2"):
            capture.pop(2)


def test_hook_path_override_reads_any_module(tiny_policies):
    policy = tiny_policies("act")
    batch = libero_batch(policy, batch_size=2)
    policy.reset()
    with capture_features(policy, hook_path="model.encoder_robot_state_input_proj") as capture:
        policy.select_action(dict(batch))
        feats = capture.pop(2)
    assert feats.shape == (2, policy.config.dim_model)
    assert capture.spec.module_path == "model.encoder_robot_state_input_proj"


def test_unknown_policy_type_needs_a_hook_path():
    from lerobot_cknna.capture.hook_table import spec_for

    with pytest.raises(ValueError, match="--cknna.hook_path"):
        spec_for("my_policy")
    assert spec_for("my_policy", "encoder.out").module_path == "encoder.out"


# Where a type's preprocessor puts the per-token tensors of its language sequence (ids first, mask second),
# and on which side it pads. GR00T's Qwen3-VL processor pads its whole chat (images and instruction) on the left.
# EVO1 has none: its embedder tokenizes the prompt inside the model, padding on the right to the batch's longest.
# EO1's Qwen2.5-VL processor does too at inference (processor_eo1.py:187), and MolmoAct2's processor its
# whole prompt (its insert_bos expects left padding).
QWEN_CHAT_KEYS = (("input_ids", "attention_mask", "mm_token_type_ids"), "left")
TOKEN_KEYS = {
    "groot": QWEN_CHAT_KEYS,
    "eo1": QWEN_CHAT_KEYS,
    "molmoact2": (("input_ids", "attention_mask", "token_type_ids"), "left"),
}
LANGUAGE_KEYS = (("observation.language.tokens", "observation.language.attention_mask"), "right")
# The tokenizers of the types that tokenize inside the policy: Wall-X's in its preprocess_inputs, padding on the
# right after the action tokens.
TOKENIZED_IN_MODEL = {
    "evo1": lambda policy: policy.model.embedder.tokenizer,
    "wall_x": lambda policy: policy.model.processor.tokenizer,
}


def language_mask(batch: dict, policy) -> torch.Tensor:
    """(B, L) the instructions' tokens, where the type's preprocessor or its own tokenizer puts them."""
    if policy.config.type in TOKENIZED_IN_MODEL:
        tokenizer = TOKENIZED_IN_MODEL[policy.config.type](policy)
        return tokenizer(batch["task"], padding=True, return_tensors="pt")["attention_mask"]
    (_, mask_key, *_), _ = TOKEN_KEYS.get(policy.config.type, LANGUAGE_KEYS)
    return batch[mask_key]


def with_padded_language(batch: dict, extra: int, policy_type: str = "") -> dict:
    """The same samples with at least ``extra`` more padding tokens after every instruction, where the type pads.

    A type that tokenizes inside the model (EVO1, Wall-X) pads to the batch's longest prompt: one more sample, a
    copy of the first with an instruction ``extra`` words longer than the longest, pads the others by at
    least that much. It comes last, so the first rows are the same samples.
    """
    if policy_type in TOKENIZED_IN_MODEL:
        longest = max(batch["task"], key=len)
        extended = {
            key: torch.cat([value, value[:1]]) for key, value in batch.items() if torch.is_tensor(value)
        }
        return {**batch, **extended, "task": [*batch["task"], longest + " on the plate" * extra]}
    keys, side = TOKEN_KEYS.get(policy_type, LANGUAGE_KEYS)
    padding = (extra, 0) if side == "left" else (0, extra)
    return {**batch, **{key: torch.nn.functional.pad(batch[key], padding, value=0) for key in keys}}


TOKEN_TYPES = [
    t for t in TINY_TYPES if isinstance(HOOK_TABLE[t], HookSpec) and HOOK_TABLE[t].token_mask is not None
]
TOKEN_GROUP_TYPES = [t for t in TOKEN_TYPES if t in token_group_types()]
# Types whose preprocessor tokenizes the instruction; VLA-JEPA tokenizes inside its model (see
# test_vla_jepa_left_padding_leaves_a_samples_vector_unchanged).
PREPROCESSOR_TOKEN_TYPES = [t for t in TOKEN_TYPES if t != "vla_jepa"]


@pytest.mark.parametrize("policy_type", PREPROCESSOR_TOKEN_TYPES)
def test_padding_tokens_change_a_pooled_vla_vector_only_where_the_model_attends_to_them(
    policy_type, tiny_policies
):
    policy = tiny_policies(policy_type)
    batch = libero_batch(policy, batch_size=3, seed=2)
    assert not language_mask(batch, policy).all(), "instructions of different lengths"
    plain = encode_features(policy, batch)
    padded = encode_features(policy, with_padded_language(batch, 7, policy_type))[:3]
    if HOOK_TABLE[policy_type].attends_padding:
        assert not torch.allclose(padded, plain, rtol=1e-5, atol=1e-6)
        return
    torch.testing.assert_close(padded, plain, rtol=1e-5, atol=1e-6)
    policy.reset()
    with capture_features(policy) as capture:
        padded_batch = with_padded_language(batch, 5, policy_type)
        policy.select_action(padded_batch)
        torch.testing.assert_close(capture.pop(batch_size_of(padded_batch))[:3], plain, rtol=1e-5, atol=1e-6)


# The Qwen-VL config of the types whose processor writes a Qwen-VL chat (GR00T's Qwen3-VL, EO1's and Wall-X's
# Qwen2.5-VL).
QWEN_VL_CONFIG = {
    "groot": lambda policy: policy._groot_model.backbone.model.config,
    "eo1": lambda policy: policy.model.vlm_backbone.config,
    "wall_x": lambda policy: policy.model.config,
}


def qwen_chat(policy_type: str, policy, batch: dict) -> dict:
    """The tokenized Qwen-VL chat of ``batch``: the preprocessor's, or the one Wall-X builds in its policy."""
    return policy.preprocess_inputs(dict(batch)) if policy_type == "wall_x" else batch


def tokens_per_camera(policy_type: str, policy, batch: dict) -> int:
    """One camera's tokens in the hooked sequence, read off the model's config (GR00T: its image grid)."""
    if policy_type == "smolvla":  # SigLIP patches of the resized image, pixel-shuffled scale_factor² to one
        config = policy.model.vlm_with_expert.vlm.config
        patches = (config.vision_config.image_size // config.vision_config.patch_size) ** 2
        return patches // config.scale_factor**2
    if policy_type == "xvla":  # DaViT patches of the camera's image, then their spatial mean
        return (IMAGE_SHAPE[-1] // math.prod(policy.model.vlm.config.vision_config.patch_stride)) ** 2 + 1
    if (
        policy_type in QWEN_VL_CONFIG
    ):  # Qwen-VL patches (t x h x w) of one image, merged spatial_merge_size² to one
        merge = QWEN_VL_CONFIG[policy_type](policy).vision_config.spatial_merge_size
        return int(qwen_chat(policy_type, policy, batch)["image_grid_thw"][0].prod()) // merge**2
    if policy_type == "molmoact2":  # one crop's patches pooled 2 x 2: the image grid's rows x columns
        return int(batch["image_grids"][0][:2].prod())
    if policy_type == "evo1":  # InternVL patches without CLS, pixel-shuffled to downsample_ratio² of them
        config = policy.model.embedder.model.config
        side = config.vision_config.image_size[0] // config.vision_config.patch_size[0]
        return int(side**2 * config.downsample_ratio**2)
    vision = policy.model.paligemma_with_expert.paligemma.config.vision_config  # the Pi family's SigLIP
    return (vision.image_size // vision.patch_size) ** 2


def expected_token_groups(policy_type: str, batch: dict, policy) -> tuple[torch.Tensor, torch.Tensor]:
    """The (image, language) masks of the hooked sequence's kept tokens, from the model's documented layout."""
    if policy_type in QWEN_VL_CONFIG:  # one token per Qwen-VL token (images + chat), padding off
        chat = qwen_chat(policy_type, policy, batch)
        ids, kept = chat["input_ids"], chat["attention_mask"].bool()
        if policy_type == "eo1":  # the prefix before the first action token, without the state token
            prefix = int((ids[0] == batch["action_token_id"]).int().argmax())
            ids, kept = ids[:, :prefix], kept[:, :prefix] & (ids[:, :prefix] != batch["state_token_id"])
        if policy_type == "wall_x":  # without the action tokens and the proprioception token
            kept &= ~torch.isin(ids, torch.tensor(wall_x_token_ids(policy)))
        image = kept & (ids == QWEN_VL_CONFIG[policy_type](policy).image_token_id)
        return image, kept & ~image
    if policy_type == "evo1":
        return evo1_token_groups(batch, policy)
    if policy_type == "molmoact2":
        return molmoact2_token_groups(batch, policy)
    language = batch["observation.language.attention_mask"].bool()
    rows, per_camera = language.shape[0], tokens_per_camera(policy_type, policy, batch)
    if policy_type == "smolvla":  # every camera's tokens, language, then the state token
        images = torch.ones(rows, 2 * per_camera, dtype=torch.bool)
        language = torch.cat([language, torch.zeros(rows, 1, dtype=torch.bool)], dim=1)
    elif policy_type == "xvla":  # camera 0 only: its patches and their pooled token, then language
        images = torch.ones(rows, per_camera, dtype=torch.bool)
    elif policy_type in ("pi0", "pi05", "pi0_fast"):  # every camera slot's tokens, then the prompt
        images = torch.ones(rows, 2 * per_camera, dtype=torch.bool)
        if policy_type == "pi0":  # its empty camera slot, masked out
            images = torch.cat([images, torch.zeros(rows, per_camera, dtype=torch.bool)], dim=1)
        if policy_type == "pi0_fast":  # BOS, appended after the padding
            language = torch.cat([language, torch.ones(rows, 1, dtype=torch.bool)], dim=1)
    else:
        raise AssertionError(f"no expected layout for {policy_type}")
    return (
        torch.cat([images, torch.zeros_like(language)], dim=1),
        torch.cat([torch.zeros_like(images), language], dim=1),
    )


def evo1_token_groups(batch: dict, policy) -> tuple[torch.Tensor, torch.Tensor]:
    """EVO1's prompt as its embedder writes it (internvl3_embedder.py, ``_build_multimodal_prompts``): per
    view slot ``Image-i: <img>``, the slot's image tokens, ``</img>``, then the instruction; the right
    padding off, and the image tokens of the slots beyond LIBERO's two cameras (zero images) off."""
    tokenizer, per_camera = policy.model.embedder.tokenizer, tokens_per_camera("evo1", policy, batch)
    views = "".join(
        f"Image-{slot + 1}: <img>{'<IMG_CONTEXT>' * per_camera}</img>\n"
        for slot in range(policy.config.max_views)
    )
    tokens = tokenizer([views + task for task in batch["task"]], padding=True, return_tensors="pt")
    context = tokens["input_ids"] == tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    image = context & (context.cumsum(dim=1) <= 2 * per_camera)
    kept = tokens["attention_mask"].bool() & ~(context & ~image)
    return image, kept & ~image


def molmoact2_token_groups(batch: dict, policy) -> tuple[torch.Tensor, torch.Tensor]:
    """MolmoAct2's prompt as its processor writes it (processor_molmoact2.py, ``_build_robot_text``): per camera
    ``Image i`` and its ``<im_patch>`` tokens among image start, column and end tokens, then the chat; the left
    padding off, and the state's one token per dimension after ``<state_start>`` off."""
    ids, config = batch["input_ids"], policy.model.model.config
    after_start = torch.arange(ids.shape[1]) - (ids == config.state_start_token_id).int().argmax(
        dim=1, keepdim=True
    )
    state = (after_start > 0) & (after_start <= batch["observation.state"].shape[1])
    kept = batch["attention_mask"].bool() & ~state
    image = kept & (ids == config.image_patch_id)
    return image, kept & ~image


def vla_jepa_qwen_inputs(policy, batch: dict) -> dict:
    """VLA-JEPA's Qwen3-VL inputs for ``batch`` (its prompt with the action and embodied-action tokens), as it builds them."""
    inputs = policy._prepare_model_inputs(dict(batch), training=False)
    model = policy.model
    return model.qwen.build_inputs(
        inputs["images"], inputs["instructions"], model.replace_prompt, model.embodied_replace_prompt
    )


def expected_pooling_mask(policy_type: str, batch: dict, policy) -> torch.Tensor:
    """Which tokens of the hooked sequence are pooled: a VLA's image and language tokens, from the model's
    documented layout; VLA-JEPA's embodied-action tokens, by the id its model holds."""
    if policy_type == "vla_jepa":
        return vla_jepa_qwen_inputs(policy, batch)["input_ids"] == policy.model.embodied_action_token_id
    image, language = expected_token_groups(policy_type, batch, policy)
    return image | language


@pytest.mark.parametrize("policy_type", TOKEN_TYPES)
def test_vla_pooling_averages_exactly_the_image_and_language_tokens(policy_type, tiny_policies):
    policy = tiny_policies(policy_type)
    batch = libero_batch(policy, batch_size=2, seed=2)
    if policy_type == "groot":  # nothing but padding is left out: every row gets some
        batch = with_padded_language(batch, 3, policy_type)
    spec = spec_of(policy)
    pooled = {}
    tap = LayerTap(spec.module_path, output_key=spec.output_key)
    seen = recorded_firings(policy, [tap], lambda: pooled.update(feat_a=encode_features(policy, batch)))
    (sequence,), pooled = seen[tap.path], pooled["feat_a"]
    mask = expected_pooling_mask(policy_type, batch, policy)
    assert mask.shape == sequence.shape[:2] and not mask.all()
    for row in range(2):
        torch.testing.assert_close(pooled[row], sequence[row][mask[row]].mean(dim=0), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(pooled[row], sequence[row].mean(dim=0))


@pytest.mark.parametrize("policy_type", TOKEN_GROUP_TYPES)
def test_token_groups_split_feat_a_into_its_image_tokens_and_its_language_tokens(policy_type, tiny_policies):
    policy = tiny_policies(policy_type)
    batch = libero_batch(policy, batch_size=2, seed=2)
    spec = spec_of(policy)
    owner_path, _, name = spec.token_mask.method_path.rpartition(".")
    owner = resolve_module(policy, owner_path) if owner_path else policy
    method, calls, captured = getattr(owner, name), [], {}

    @functools.wraps(method)
    def recording(*args, **kwargs):
        return spec.token_mask.recorded_call(method, args, kwargs, lambda *call: calls.append(call))

    tap = LayerTap(spec.module_path, output_key=spec.output_key)
    with patched(owner, name, recording):
        seen = recorded_firings(
            policy, [tap], lambda: captured.update(encode_features(policy, batch, token_groups=True))
        )
    sequence, ((args, result), *_) = seen[tap.path][0], calls
    masks = token_group_masks(*spec.token_mask.masks(policy, args, result), sequence.shape[1])
    image, language = expected_token_groups(policy_type, batch, policy)
    cameras = 1 if policy_type == "xvla" else 2  # X-VLA's encoder sees its first camera alone
    assert image.sum(dim=1).tolist() == [cameras * tokens_per_camera(policy_type, policy, batch)] * 2
    assert language.any(dim=1).all()
    assert torch.equal(masks["image"].cpu(), image) and torch.equal(masks["language"].cpu(), language)
    assert torch.equal(masks["both"].cpu(), image | language) and not (image & language).any()
    feat_a = captured[spec.module_path]
    groups = {group: captured[token_group_key(spec.module_path, group)] for group in TOKEN_GROUPS}
    for group, mask in zip(TOKEN_GROUPS, (image, language), strict=True):
        for row in range(2):
            torch.testing.assert_close(groups[group][row], sequence[row][mask[row]].float().mean(dim=0))
    # Feat A is the groups' means weighted by their token counts, which the capture returns.
    n_image, n_language = image.sum(dim=1, keepdim=True), language.sum(dim=1, keepdim=True)
    counts = {group: captured[token_count_key(spec.module_path, group)] for group in ("both", *TOKEN_GROUPS)}
    assert (
        counts["image"].tolist() == n_image[:, 0].tolist()
        and counts["language"].tolist() == n_language[:, 0].tolist()
    )
    assert torch.equal(counts["both"], counts["image"] + counts["language"])
    weighted = (n_image * groups["image"] + n_language * groups["language"]) / (n_image + n_language)
    torch.testing.assert_close(weighted, feat_a, rtol=1e-5, atol=1e-6)


def test_a_type_without_token_groups_is_refused_by_name(tiny_policies):
    with pytest.raises(
        ValueError, match="policy type 'act' has no token groups: its feat A is a vision encoder"
    ):
        FeatureCapture(tiny_policies("act"), token_groups=True)
    with pytest.raises(
        ValueError,
        match="policy type 'vla_jepa' has no token groups: feat A is the mean of its embodied-action",
    ):
        FeatureCapture(tiny_policies("vla_jepa"), token_groups=True)
    with pytest.raises(
        ValueError, match="'fastwam' has no token groups: feat A pools FastWAM's first-frame video"
    ):
        FeatureCapture(tiny_policies("fastwam"), token_groups=True)


def test_vla_jepa_feat_a_is_the_mean_of_the_rows_its_action_head_reads(tiny_policies):
    policy = tiny_policies("vla_jepa")
    batch = libero_batch(policy, batch_size=2, seed=3)
    (module,) = resolve_modules(policy, spec_of(policy).module_path)
    assert module is policy.model.qwen.model.model.language_model.layers[-1]
    inputs = policy._prepare_model_inputs(dict(batch), training=False)
    embodied, _ = policy.model._encode_qwen(
        inputs["images"], inputs["instructions"], need_action_tokens=False
    )
    assert embodied.shape[:2] == (2, policy.config.num_embodied_action_tokens_per_instruction)
    torch.testing.assert_close(encode_features(policy, batch), embodied.float().mean(dim=1))


def test_vla_jepa_left_padding_leaves_a_samples_vector_unchanged(tiny_policies):
    policy = tiny_policies("vla_jepa")
    batch = libero_batch(policy, batch_size=3, seed=2)
    padding = ~vla_jepa_qwen_inputs(policy, batch)["attention_mask"].bool()
    assert padding.any() and not padding[:, -1].any(), "instructions of different lengths, padded on the left"
    padded = padding.any(dim=1).nonzero()[0].item()
    alone = samples(batch, padded, padded + 1, batch_size=3)
    torch.testing.assert_close(encode_features(policy, batch)[padded], encode_features(policy, alone)[0])


def test_a_negative_segment_counts_children_from_the_end(tiny_policies):
    policy = tiny_policies("act")
    layers = policy.model.backbone
    assert resolve_modules(policy, "model.backbone.-1") == [list(layers.children())[-1]]
    with pytest.raises(ValueError, match="no module at 'model.backbone.-9'"):
        resolve_modules(policy, "model.backbone.-9")


def test_every_layer_of_the_sweep_fires_once_per_encode_only_forward(tiny):
    policy_type, policy = tiny
    spec = spec_of(policy)
    taps = layer_taps(spec, policy)
    assert len(taps) >= 2 and taps[-1].path == spec.module_path
    assert len({tap.path for tap in taps}) == len(taps)
    batch = libero_batch(policy, batch_size=3, seed=4)
    hooks_before = hook_count(policy)
    layers = {}
    seen = recorded_firings(
        policy, taps, lambda: layers.update(encode_features(policy, batch, with_layers=True))
    )
    # Where the count varies, the forward stops at the kept firing; LingBot-VA runs one forward per sample,
    # FastWAM one inference per sample within its forward.
    firings_per_forward = (
        spec.firings(policy.config) if spec.firings is not None else spec.kept_firing(policy.config) + 1
    )
    if spec.per_sample:
        firings_per_forward *= 3
    forwards = 3 if spec.episode_calls is not None else 1
    assert {path: len(tensors) for path, tensors in seen.items()} == {
        tap.path: forwards * firings_per_forward for tap in taps
    }
    assert list(layers) == [tap.path for tap in taps]
    assert all(feats.shape[0] == 3 and torch.isfinite(feats).all() for feats in layers.values())
    torch.testing.assert_close(layers[spec.module_path], encode_features(policy, batch), rtol=0, atol=0)
    assert hook_count(policy) == hooks_before
    with pytest.raises(RuntimeError, match="boom"), FeatureCapture(policy, with_layers=True):
        raise RuntimeError("boom")
    assert hook_count(policy) == hooks_before and not any("embed_prefix" in vars(m) for m in policy.modules())


def expected_layer_vector(policy_type: str, policy, batch: dict, firings: list[torch.Tensor]) -> torch.Tensor:
    """A layer's (B, D) vectors from its raw firings, by each type's documented call pattern.

    Image encoders see every observation step in the policy's queue (``n_obs_steps``); the
    current one, the last, is feat A.
    """
    spec = spec_of(policy)
    if spec.episode_calls is not None:  # one forward per sample, each up to its kept firing: the prompt's row
        per_forward = spec.kept_firing(policy.config) + 1
        return torch.stack(
            [firing[0].float().mean(dim=0) for firing in firings[per_forward - 1 :: per_forward]]
        )
    if spec.per_sample:  # FastWAM: one firing per sample, all its first-frame tokens averaged
        return torch.cat([firing.float().mean(dim=1) for firing in firings])
    if firings[0].ndim == 3 and spec.token_mask is not None:  # mean over image and language tokens
        mask = expected_pooling_mask(policy_type, batch, policy)
        (sequence,) = firings
        return torch.stack([sequence[row][mask[row]].float().mean(dim=0) for row in range(len(sequence))])
    # Spatial maps: mean over H x W; a vision tower's token sequences (Multi-task DiT's CLIP): over all tokens.
    means = {4: lambda firing: firing.mean(dim=(2, 3)), 3: lambda firing: firing.mean(dim=1)}
    rows = [means.get(firing.ndim, lambda firing: firing)(firing.float()) for firing in firings]
    n_samples, n_cameras = batch["observation.state"].shape[0], len(policy.config.image_features)
    if policy_type == "act":  # one backbone call per camera
        return torch.cat(rows, dim=1)
    if policy_type == "gaussian_actor":  # one call, all cameras batched camera-first
        return torch.cat(rows[0].chunk(n_cameras), dim=1)
    if len(rows) == n_cameras > 1:  # Diffusion's encoder per camera: one call each, rows (sample, step)
        return torch.cat([camera.reshape(n_samples, -1, camera.shape[1])[:, -1] for camera in rows], dim=1)
    (rows,) = rows  # Diffusion's shared encoder, VQ-BeT, TDMPC, Multi-task DiT: rows (sample, step, camera)
    return rows.reshape(n_samples, -1, n_cameras * rows.shape[1])[:, -1]


def test_each_layer_is_pooled_like_feat_a(tiny):
    policy_type, policy = tiny
    batch = libero_batch(policy, batch_size=2, seed=2)
    if policy_type == "groot":  # nothing but padding is left out: every row gets some
        batch = with_padded_language(batch, 3, policy_type)
    taps = layer_taps(spec_of(policy), policy)
    layers = {}
    seen = recorded_firings(
        policy, taps, lambda: layers.update(encode_features(policy, batch, with_layers=True))
    )
    for tap in taps:
        expected = expected_layer_vector(policy_type, policy, batch, seen[tap.path])
        torch.testing.assert_close(layers[tap.path], expected, rtol=1e-5, atol=1e-6)


def test_a_hook_path_of_your_own_has_no_layer_sweep(tiny_policies):
    policy = tiny_policies("act")
    batch = libero_batch(policy, batch_size=2)
    with pytest.raises(ValueError, match="No layer path"):
        encode_features(policy, batch, hook_path="model.encoder_robot_state_input_proj", with_layers=True)


def test_pi0_fast_keeps_the_prefill_not_the_decode_steps(tiny_policies):
    policy = tiny_policies("pi0_fast")
    batch = libero_batch(policy, batch_size=2)
    spec = spec_of(policy)
    tap = LayerTap(spec.module_path, output_key=spec.output_key)
    policy.reset()
    with capture_features(policy) as capture:
        firings = recorded_firings(policy, [tap], lambda: policy.select_action(dict(batch)))[tap.path]
        captured = capture.pop(2)
    prefill, *decode_steps = firings
    assert decode_steps and all(step.shape[1] == 1 for step in decode_steps) and prefill.shape[1] > 1
    torch.testing.assert_close(captured, encode_features(policy, batch), rtol=1e-5, atol=1e-6)


def evo1_head_context(
    policy, batch: dict, spec: HookSpec
) -> tuple[torch.Tensor, torch.Tensor | None, list, torch.Tensor]:
    """One real ``select_action`` of an EVO1: the fused tokens and context mask its action head gets
    (``Evo1Model.forward``'s arguments), the firings of feat A's module, and the capture's feat A."""
    head = []
    handle = policy.model.register_forward_pre_hook(
        lambda module, args, kwargs: head.append((args[0], kwargs["context_mask"])), with_kwargs=True
    )
    tap = LayerTap(spec.module_path)
    try:
        policy.reset()
        with capture_features(policy) as capture:
            firings = recorded_firings(policy, [tap], lambda: policy.select_action(dict(batch)))[tap.path]
            feat_a = capture.pop(batch_size_of(batch))
    finally:
        handle.remove()
        policy.reset()
    ((fused, context_mask),) = head
    return fused, context_mask, firings, feat_a


def test_evo1_feat_a_is_the_context_its_action_head_attends_to(tiny_policies):
    policy = tiny_policies("evo1")
    batch = libero_batch(policy, batch_size=2, seed=5)
    fused, context_mask, (sequence,), feat_a = evo1_head_context(policy, batch, spec_of(policy))
    # hidden_states[-1], the head's context, is the final norm's output (transformers 5).
    assert torch.equal(sequence, fused)
    assert not context_mask.all()  # right padding, and the third view slot's image tokens
    expected = torch.stack([fused[row][context_mask[row]].mean(dim=0) for row in range(2)])
    torch.testing.assert_close(feat_a, expected, rtol=1e-5, atol=1e-6)


def test_evo1_pooled_to_one_token_keeps_that_token_and_has_no_token_groups(tmp_path):
    policy = build_tiny_policy("evo1", assets=tmp_path, return_cls_only=True)
    batch = libero_batch(policy, batch_size=2, seed=5)
    spec = spec_of(policy)
    pooled, context_mask, (sequence,), feat_a = evo1_head_context(policy, batch, spec)
    assert pooled.shape == (2, sequence.shape[-1]) and context_mask is None
    torch.testing.assert_close(feat_a, pooled, rtol=0, atol=0)
    torch.testing.assert_close(encode_features(policy, batch), pooled, rtol=0, atol=0)
    layers = encode_features(policy, batch, with_layers=True)
    assert list(layers)[-1] == spec.module_path and torch.equal(layers[spec.module_path], pooled)
    with pytest.raises(ValueError, match="return_cls_only=true conditions its action head on one token"):
        encode_features(policy, batch, token_groups=True)


def assert_feat_a_pools(
    policy, batch: dict, captured: torch.Tensor, sequence: torch.Tensor, kept: torch.Tensor
):
    """Feat A, captured in ``select_action`` and by encode-only, is ``sequence`` averaged over each row's ``kept`` tokens."""
    expected = torch.stack([sequence[row][kept[row]].float().mean(dim=0) for row in range(len(sequence))])
    torch.testing.assert_close(captured, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(encode_features(policy, batch), expected, rtol=1e-5, atol=1e-6)


def test_eo1_keeps_the_prefill_its_action_tokens_attend_to_not_the_denoising_steps(tiny_policies):
    policy = tiny_policies("eo1")
    batch = libero_batch(policy, batch_size=2, seed=3)
    spec, backbone, prefill = spec_of(policy), policy.model.vlm_backbone.model, []
    handle = backbone.register_forward_hook(
        lambda module, args, kwargs, output: prefill.append((kwargs, output)) if not prefill else None,
        with_kwargs=True,
    )
    tap = LayerTap(spec.module_path)
    try:
        policy.reset()
        with capture_features(policy) as capture:
            firings = recorded_firings(policy, [tap], lambda: policy.select_action(dict(batch)))[tap.path]
            captured = capture.pop(2)
    finally:
        handle.remove()
    ((kwargs, output),) = prefill
    first, *denoising = firings
    act_start = int((batch["input_ids"][0] == batch["action_token_id"]).int().argmax())
    # The prefill encodes the prompt up to the first action token and caches it; each Euler step then
    # runs the action tokens alone against that cache.
    assert (
        first.shape[1] == act_start == kwargs["inputs_embeds"].shape[1] and output.past_key_values is not None
    )
    assert len(denoising) == policy.config.num_denoise_steps
    assert all(step.shape[1] == policy.config.chunk_size for step in denoising)
    torch.testing.assert_close(first, output.last_hidden_state, rtol=0, atol=0)
    # Pooled over the prefill's attention mask without the state token, which holds the projected state.
    kept = kwargs["attention_mask"].bool() & (batch["input_ids"][:, :act_start] != batch["state_token_id"])
    assert (kwargs["attention_mask"].sum(dim=1) - kept.sum(dim=1)).tolist() == [1, 1]
    assert_feat_a_pools(policy, batch, captured, first, kept)


def test_molmoact2_feat_a_is_the_prompt_its_action_expert_reads_without_the_state_tokens(tiny_policies):
    policy = tiny_policies("molmoact2")
    batch = libero_batch(policy, batch_size=2, seed=3)
    spec, backbone, contexts = spec_of(policy), policy._backbone(), []
    expert = backbone.action_expert
    prepare_context = expert.prepare_context

    def recording(**kwargs):
        contexts.append(kwargs)
        return prepare_context(**kwargs)

    tap = LayerTap(spec.module_path)
    policy.reset()
    with patched(expert, "prepare_context", recording), capture_features(policy) as capture:
        firings = recorded_firings(policy, [tap], lambda: policy.select_action(dict(batch)))[tap.path]
        captured = capture.pop(2)
    # Continuous inference runs the text model once, over the whole prompt; the action expert reads every
    # layer's keys and values with the processor's attention mask (left padding off).
    ((sequence,), (context,)) = firings, contexts
    assert sequence.shape[:2] == batch["input_ids"].shape
    assert len(context["encoder_kv_states"]) == backbone.config.num_hidden_layers
    attended = context["encoder_attention_mask"].cpu()
    assert torch.equal(attended, batch["attention_mask"].bool()) and not attended.all()
    # Pooled over those tokens without the state's, one per state dimension.
    image, language = molmoact2_token_groups(batch, policy)
    kept = image | language
    assert (attended.sum(dim=1) - kept.sum(dim=1)).tolist() == [batch["observation.state"].shape[1]] * 2
    assert_feat_a_pools(policy, batch, captured, sequence, kept)


def test_lingbot_va_feat_a_is_the_video_tokens_its_action_stream_reads_from_the_kv_cache(tiny_policies):
    policy = tiny_policies("lingbot_va")
    batch = libero_batch(policy, batch_size=1, seed=3)
    spec, transformer = spec_of(policy), policy.transformer
    last_block = transformer.blocks[-1]
    calls, block_inputs, cache_read_by_actions = [], [], []

    def on_transformer_call(module, args, kwargs):
        calls.append((kwargs["update_cache"], kwargs["action_mode"]))
        if kwargs["action_mode"] and not cache_read_by_actions:  # the action loop's first step
            cache = last_block.attn1.attn_caches["pos"]
            cache_read_by_actions.append(
                (cache["v"][:, cache["mask"]].clone(), cache["is_pred"][cache["mask"]])
            )

    handles = [
        transformer.register_forward_pre_hook(on_transformer_call, with_kwargs=True),
        last_block.register_forward_pre_hook(lambda module, args: block_inputs.append(args)),
    ]
    try:
        policy.reset()
        with capture_features(policy) as capture:
            policy.select_action(dict(batch))
            captured = capture.pop(1)
    finally:
        for handle in handles:
            handle.remove()
        policy.reset()
    kept = spec.kept_firing(policy.config)
    # The video loop: num_inference_steps steps, then the call at t = 0 that writes the cache; then the actions.
    assert calls[: kept + 1] == [(0, False)] * kept + [(1, False)]
    assert calls[kept + 1 :] == [(0, True)] * policy.config.action_num_inference_steps + [(1, True)]
    hidden, _, step_modulation, _ = block_inputs[kept]
    # One token per camera per latent frame (a 32 x 32 frame is one 2 x 2 latent, one 2 x 2 patch).
    n_video_tokens = policy.config.frame_chunk_size * 2
    assert hidden.shape[:2] == (2, n_video_tokens)  # the prompt's row, then the negative prompt's (guidance)
    # The values every action step reads are projected from the kept firing's input, and only those.
    shift, scale = (last_block.scale_shift_table[None] + step_modulation.float())[:, :, :2].unbind(dim=2)
    attended = last_block.norm1(hidden.float()) * (1 + scale) + shift
    values = last_block.attn1.to_v(attended).unflatten(2, (last_block.attn1.heads, -1))
    (cached_values, predicted), *_ = cache_read_by_actions
    assert predicted.all()
    torch.testing.assert_close(cached_values, values, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(captured, hidden[:1].mean(dim=1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(encode_features(policy, batch), captured, rtol=0, atol=0)


def test_lingbot_va_refuses_what_it_cannot_pair_and_its_noise_is_seeded(tiny_policies):
    policy = tiny_policies("lingbot_va")
    rng_before = torch.random.get_rng_state()
    first = encode_features(policy, libero_batch(policy, batch_size=1, seed=5))
    assert torch.equal(torch.random.get_rng_state(), rng_before), "the caller's generator is left as it was"
    assert torch.equal(encode_features(policy, libero_batch(policy, batch_size=1, seed=5)), first)
    policy.reset()
    with capture_features(policy) as capture:
        with pytest.raises(CaptureError, match="takes one sample per call"):
            policy.select_action(libero_batch(policy, batch_size=2))
        assert not policy._started, "refused before the policy ran"
        with pytest.raises(CaptureError, match="continued an episode"):
            for step in range(policy.config.chunk_size):
                policy.select_action(libero_batch(policy, batch_size=1, seed=step))
                capture.pop(1)
    policy.reset()
    with pytest.raises(
        ValueError, match="'lingbot_va' cannot be measured in simulation: LingBot-VA keeps a KV"
    ):
        check_simulation(spec_of(policy), "lingbot_va")


def test_fastwam_feat_a_is_each_samples_first_frame_as_its_action_tokens_read_it(tiny_policies):
    policy = tiny_policies("fastwam")
    batch = libero_batch(policy, batch_size=2, seed=3)
    last_layer, model, events = policy.model.mot.layers[-1], policy.model, []
    build_mask = model._build_mot_attention_mask

    def recording_mask(**kwargs):
        events.append(("mask", kwargs["video_seq_len"], build_mask(**kwargs)))
        return events[-1][2]

    handle = last_layer.register_forward_hook(
        lambda module, args, kwargs, output: events.append((kwargs["mode"], kwargs, output)), with_kwargs=True
    )
    tap = LayerTap(spec_of(policy).module_path)
    try:
        policy.reset()
        with patched(model, "_build_mot_attention_mask", recording_mask), capture_features(policy) as capture:
            firings = recorded_firings(policy, [tap], lambda: policy.select_action(dict(batch)))[tap.path]
            captured = capture.pop(2)
    finally:
        handle.remove()
    # One sample at a time: its mask, its prefill, then one action-only call per denoising step.
    steps = policy.config.num_inference_steps
    assert [event[0] for event in events] == (["mask", "video_prefill"] + ["action_cached"] * steps) * 2
    assert len(firings) == 2 and all(firing.shape[0] == 1 for firing in firings)
    for sample, firing in enumerate(firings):
        (_, video_tokens, mask), (_, kwargs, (_, _, values)), *_ = events[sample * (steps + 2) :]
        # The prefill holds the first frame alone, and every action token attends to all of its tokens.
        assert firing.shape[1] == video_tokens and mask[video_tokens:, :video_tokens].all()
        # The values the action tokens read: the last layer's projection of feat A's tokens, modulated
        # by the timestep (0 for the first frame, so the same map for every sample).
        block = last_layer.blocks["video"]
        shift, scale, *_ = last_layer._split_modulation(block, kwargs["t_mod"])
        torch.testing.assert_close(block.self_attn.v(modulate(firing, shift, scale)), values)
        torch.testing.assert_close(captured[sample], firing[0].mean(dim=0), rtol=0, atol=0)
        alone = encode_features(policy, samples(batch, sample, sample + 1, batch_size=2))
        torch.testing.assert_close(alone[0], captured[sample], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(encode_features(policy, batch), captured, rtol=0, atol=0)


def wall_x_token_ids(policy) -> tuple[int, int]:
    """The ids of Wall-X's ``<|propri|>`` and ``<|action|>`` tokens, from its tokenizer."""
    return tuple(policy.model.processor.tokenizer.convert_tokens_to_ids(["<|propri|>", "<|action|>"]))


def test_wall_x_keeps_the_prompt_rows_that_every_euler_step_repeats(tiny_policies):
    policy = tiny_policies("wall_x")
    batch = libero_batch(policy, batch_size=2, seed=3)
    chat = policy.preprocess_inputs(dict(batch))
    tap = LayerTap(spec_of(policy).module_path)
    policy.reset()
    with capture_features(policy) as capture:
        firings = recorded_firings(policy, [tap], lambda: policy.select_action(dict(batch)))[tap.path]
        captured = capture.pop(2)
    propri_token_id, action_token_id = wall_x_token_ids(policy)
    actions, valid = chat["input_ids"] == action_token_id, chat["attention_mask"].bool()
    assert actions.sum(dim=1).tolist() == [policy.config.chunk_size] * 2
    # No KV cache: each of the ten Euler steps runs the whole sequence again, the action tokens last but padding.
    assert len(firings) == 10 and all(firing.shape[:2] == chat["input_ids"].shape for firing in firings)
    last_valid = valid.sum(dim=1) - 1
    assert actions[torch.arange(2), last_valid].all() and (valid & ~actions).any(dim=1).all()
    # The prompt comes before every action token and attends causally: its rows are the same in every step,
    # while the action tokens' rows follow the noisy actions.
    prompt = valid & ~actions
    first, *later = firings
    assert all(torch.equal(step[prompt], first[prompt]) for step in later)
    assert not any(torch.equal(step[actions], first[actions]) for step in later)
    # Pooled over the prompt without the proprioception token, which holds the projected state (feat B).
    kept = prompt & (chat["input_ids"] != propri_token_id)
    assert (prompt.sum(dim=1) - kept.sum(dim=1)).tolist() == [1, 1]
    assert_feat_a_pools(policy, batch, captured, first, kept)
