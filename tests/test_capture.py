import pytest
import torch

from lerobot_cknna.capture import CaptureError, capture_features, encode_features, resolve_module
from lerobot_cknna.hook_table import HOOK_TABLE
from lerobot_cknna.tiny_policies import build_tiny_policy, libero_batch, tiny_types_here

TYPES = tiny_types_here()


@pytest.fixture(scope="module", params=TYPES)
def tiny(request):
    return request.param, build_tiny_policy(request.param)


def hook_count(policy) -> int:
    return sum(len(module._forward_hooks) + len(module._forward_pre_hooks) for module in policy.modules())


def test_select_action_capture_equals_encode_only(tiny):
    policy_type, policy = tiny
    batch = libero_batch(policy, batch_size=3)
    hooks_before = hook_count(policy)
    policy.reset()
    with capture_features(policy) as capture:
        policy.select_action(dict(batch))
        captured = capture.pop(3)
    encoded = encode_features(policy, batch)
    assert captured.shape == encoded.shape and captured.shape[0] == 3
    assert captured.dtype == torch.float32 and torch.isfinite(captured).all()
    torch.testing.assert_close(captured, encoded, rtol=1e-5, atol=1e-6)
    assert hook_count(policy) == hooks_before
    assert not any("embed_prefix" in vars(module) for module in policy.modules())


def samples(batch: dict, start: int, stop: int, batch_size: int) -> dict:
    """Samples ``start:stop`` of a batch; tensors with several rows per sample (GR00T: one per camera) keep theirs."""
    return {
        key: value[start * (rows := value.shape[0] // batch_size) : stop * rows]
        for key, value in batch.items()
        if torch.is_tensor(value)
    }


def test_one_vector_per_sample_and_samples_are_independent(tiny):
    _, policy = tiny
    batch = libero_batch(policy, batch_size=4, seed=1)
    together = encode_features(policy, batch)
    alone = encode_features(policy, samples(batch, 2, 3, batch_size=4))
    torch.testing.assert_close(together[2:3], alone, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(together[0], together[1])


def test_capture_pairs_firings_with_the_observations_that_ran_the_model(tiny):
    _, policy = tiny
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
    module = resolve_module(policy, HOOK_TABLE[policy_type].module_path)
    expected = {
        "act": "IntermediateLayerGetter",
        "diffusion": "DiffusionRgbEncoder",
        "vqbet": "VQBeTRgbEncoder",
        "sac": "DefaultImageEncoder",
        "tdmpc": "Sequential",
        "smolvla": "LlamaRMSNorm",
        "xvla": "Florence2Encoder",
        "groot": "SelfAttentionTransformer",
        "pi0": "GemmaRMSNorm",
        "pi05": "GemmaRMSNorm",
        "pi0_fast": "GemmaRMSNorm",
    }[policy_type]
    assert type(module).__name__ == expected


def test_bad_hook_path_suggests_close_names():
    policy = build_tiny_policy("act")
    with pytest.raises(ValueError, match=r"no module at 'model.backbon'.*model\.backbone"):
        capture_features(policy, hook_path="model.backbon")


def test_hook_that_never_fires_is_an_error():
    policy = build_tiny_policy("act")
    batch = libero_batch(policy, batch_size=2)
    with capture_features(policy, hook_path="model.decoder") as capture:
        policy.model.backbone(batch["observation.images.image"])
        with pytest.raises(CaptureError, match="did not fire"):
            capture.pop_required(2)


def test_unexpected_number_of_firings_is_an_error():
    policy = build_tiny_policy("act")
    batch = libero_batch(policy, batch_size=2)
    with capture_features(policy) as capture:
        policy.model.backbone(batch["observation.images.image"])
        with pytest.raises(CaptureError, match="fired 1 times in one forward, expected 2"):
            capture.pop(2)


def test_hook_path_override_reads_any_module():
    policy = build_tiny_policy("act")
    batch = libero_batch(policy, batch_size=2)
    policy.reset()
    with capture_features(policy, hook_path="model.encoder_robot_state_input_proj") as capture:
        policy.select_action(dict(batch))
        feats = capture.pop(2)
    assert feats.shape == (2, policy.config.dim_model)
    assert capture.spec.module_path == "model.encoder_robot_state_input_proj"


def test_unknown_policy_type_needs_a_hook_path():
    from lerobot_cknna.hook_table import spec_for

    with pytest.raises(ValueError, match="--cknna.hook_path"):
        spec_for("my_policy")
    assert spec_for("my_policy", "encoder.out").module_path == "encoder.out"


# Where a type's preprocessor puts the token ids and mask of the language sequence, and on which side it pads.
# GR00T's Eagle processor pads its whole chat (images and instruction) on the left.
TOKEN_KEYS = {"groot": ("eagle_input_ids", "eagle_attention_mask", "left")}
LANGUAGE_KEYS = ("observation.language.tokens", "observation.language.attention_mask", "right")


def with_padded_language(batch: dict, extra: int, policy_type: str = "") -> dict:
    """The same batch with ``extra`` padding tokens (id 0) added to every instruction, where the type pads."""
    tokens_key, mask_key, side = TOKEN_KEYS.get(policy_type, LANGUAGE_KEYS)
    padding = (extra, 0) if side == "left" else (0, extra)
    return {
        **batch,
        tokens_key: torch.nn.functional.pad(batch[tokens_key], padding, value=0),
        mask_key: torch.nn.functional.pad(batch[mask_key], padding, value=0),
    }


TOKEN_TYPES = [t for t in TYPES if HOOK_TABLE[t].token_mask is not None]


@pytest.mark.parametrize("policy_type", TOKEN_TYPES)
def test_padding_tokens_change_a_pooled_vla_vector_only_where_the_model_attends_to_them(policy_type):
    policy = build_tiny_policy(policy_type)
    batch = libero_batch(policy, batch_size=3, seed=2)
    if policy_type != "groot":  # lerobot 0.4.4 gives a GR00T batch one instruction: nothing pads
        assert not batch[LANGUAGE_KEYS[1]].all(), "instructions of different lengths"
    plain = encode_features(policy, batch)
    padded = encode_features(policy, with_padded_language(batch, 7, policy_type))
    if HOOK_TABLE[policy_type].attends_padding:
        assert not torch.allclose(padded, plain, rtol=1e-5, atol=1e-6)
        return
    torch.testing.assert_close(padded, plain, rtol=1e-5, atol=1e-6)
    policy.reset()
    with capture_features(policy) as capture:
        policy.select_action(with_padded_language(batch, 5, policy_type))
        torch.testing.assert_close(capture.pop(3), plain, rtol=1e-5, atol=1e-6)


def expected_pooling_mask(policy_type: str, batch: dict) -> torch.Tensor:
    """Which tokens of the hooked sequence are image or language tokens, from the model's documented layout."""
    if policy_type == "groot":  # one backbone token per Eagle token (images + chat), left padding off
        return batch["eagle_attention_mask"].bool()
    language = batch["observation.language.attention_mask"].bool()
    if policy_type == "smolvla":  # 64 tokens per camera, language, then the state token
        images = torch.ones(language.shape[0], 2 * 64, dtype=torch.bool)
        return torch.cat([images, language, torch.zeros(language.shape[0], 1, dtype=torch.bool)], dim=1)
    if policy_type == "xvla":  # camera 0 only: 64 patches + 1 pooled token, then language
        return torch.cat([torch.ones(language.shape[0], 65, dtype=torch.bool), language], dim=1)
    if policy_type in ("pi0", "pi05", "pi0_fast"):  # 16 tokens per camera slot, then the prompt
        cameras = [torch.ones(language.shape[0], 2 * 16, dtype=torch.bool)]
        if policy_type == "pi0":  # its empty camera slot, masked out
            cameras.append(torch.zeros(language.shape[0], 16, dtype=torch.bool))
        if policy_type == "pi0_fast":  # BOS, appended after the padding
            language = torch.cat([language, torch.ones(language.shape[0], 1, dtype=torch.bool)], dim=1)
        return torch.cat([*cameras, language], dim=1)
    raise AssertionError(f"no expected layout for {policy_type}")


@pytest.mark.parametrize("policy_type", TOKEN_TYPES)
def test_vla_pooling_averages_exactly_the_image_and_language_tokens(policy_type):
    policy = build_tiny_policy(policy_type)
    batch = libero_batch(policy, batch_size=2, seed=2)
    if policy_type == "groot":  # lerobot 0.4.4 gives a whole batch one instruction: no padding of its own
        batch = with_padded_language(batch, 3, policy_type)
    sequences = []
    handle = resolve_module(policy, HOOK_TABLE[policy_type].module_path).register_forward_hook(
        lambda module, inputs, output: sequences.append(
            output[0] if isinstance(output, tuple | dict) else output
        )
    )
    try:
        pooled = encode_features(policy, batch)
    finally:
        handle.remove()
    (sequence,) = sequences
    mask = expected_pooling_mask(policy_type, batch)
    assert mask.shape == sequence.shape[:2] and not mask.all()
    for row in range(2):
        torch.testing.assert_close(pooled[row], sequence[row][mask[row]].mean(dim=0), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(pooled[row], sequence[row].mean(dim=0))
