"""Per-architecture facts: where each LeRobot policy computes its condition embedding (feat A).

One entry per policy type, checked against lerobot 0.6.1. Everything else in the package
reads this table, so adding a policy type means adding one entry here. An entry is a
:class:`HookSpec`, or a function of the policy's config choosing between specs where the
config changes the module tree (Diffusion's shared or per-camera encoders); variants are
derived from a base spec with ``dataclasses.replace`` rather than copied.

An entry says:

* ``module_path``: dotted attribute path from the policy to the module whose output is
  feat A (:mod:`lerobot_cknna.capture.module_paths`; ``*`` for every child of a container,
  ``-1`` for its last child);
* ``category``: ``VLA`` (vision + language), ``IL`` or ``RL`` (vision only), which decides
  what the scores can be compared with;
* ``output_key``: how to read the module's output (dict key, tuple index, ``None`` for a
  tensor);
* ``read``: ``output`` (what the module returns) or ``input`` (its first tensor argument: the
  residual stream entering a block, where that is what the action head reads);
* ``layout``: an einops pattern from the rows of all firings of one forward (spatial maps
  mean-pooled over H x W first) to ``b s f``: samples, observation steps, features.
  Cameras batched into rows (``n``) are regrouped into features; the last observation step
  is the current one and is kept (``kept_row`` says which entry of that axis is kept where it
  is not the last);
* ``firings``: how many times the module fires in one forward (per camera for ACT);
  ``None`` where it varies (Pi0-FAST's decode steps) or where the later firings are not
  feat A (EO1's denoising steps over the action tokens; Wall-X's, which repeat the prompt's rows),
  and then only the first firing, the prefill over the whole prefix, is kept, or the one
  ``kept_firing`` names (LingBot-VA's last video denoising step);
* ``per_sample``: the policy runs its batch one sample at a time (FastWAM), so ``firings``
  counts one sample's firings, each firing holds one sample's rows, in batch order, and
  encode-only stops at the last sample's;
* ``token_mask``: for token sequences, where the mask of the tokens to average comes from
  (the policy method that builds the prefix padding mask; a hook cannot see it), and for the
  VLAs which of those tokens are image tokens (``--cknna.token_groups``: feat A's image tokens
  and language tokens pooled apart); ``why_no_token_groups``: for a VLA without one, why its feat
  A has no image and language tokens apart (said when ``--cknna.token_groups`` is refused);
* ``attends_padding``: the model lets valid tokens attend to padding (X-VLA's Florence
  encoder gets an all-ones mask), so feat A depends on how far the instruction was padded;
  padding stays out of the mean but still shifts the valid tokens;
* ``reads_state``: whether the hooked module sees the robot state. Where it does not (the
  vision encoders of ACT, Diffusion, VQ-BeT and the Gaussian actor), a policy trained on
  another robot can be replayed on a dataset with another state size: it gets the cameras alone;
* ``layer_path``: the layer taps along the path to ``module_path`` (shallow to deep, the
  module itself not included): a function of the policy, since depths come from its config.
  Each tap fires as often as ``module_path`` and is arranged by the same ``layout`` and
  ``token_mask``. Decoder layers are read at the input of their ``input_layernorm`` (the
  residual stream entering the layer): SmolVLA calls layer internals directly, so a hook on
  the layer module itself never fires there;
* ``full_forward``: why encode-only must run the whole ``select_action`` for this entry,
  where stopping at the hook cannot work (``None``: it stops there);
* ``blank_cameras``: the policy fills camera slots it has no camera for with blank images
  itself (LeRobot's ``empty_cameras``: ``observation.images.empty_camera_N``), so data without
  them still fits it (:func:`blank_camera_keys`);
* ``episode_calls``: for a policy whose model calls within an episode depend on each other
  and on chance (LingBot-VA), what a capture must do (:class:`EpisodeCalls`);
* ``fixes``: the registered run-time fixes (:mod:`lerobot_cknna.compat`) of LeRobot defects that
  only this type has; fixes for defects any type may show are applied wherever they show.

Encode-only needs nothing else: :func:`lerobot_cknna.capture.hooks.encode_features` runs the
policy's ``select_action`` and stops it once ``module_path`` (and every layer tap) has fired.

What a new policy type touches: one entry here (a :class:`HookSpec`, or a function of the
config where the config changes the module tree), and, if LeRobot cannot build it offline,
its tiny build in :mod:`lerobot_cknna.testing.tiny_policies` (``TINY_CONFIGS``) and the local
assets it loads by name (:mod:`lerobot_cknna.testing.tiny_assets`); a defect of its own is a
registered fix in :mod:`lerobot_cknna.compat` named in the entry's ``fixes``. Outside this
table and the tiny builds, only the types LeRobot removed (:mod:`lerobot_cknna.configs.checkpoints`)
and the demo's SmolVLA are named.
"""

import dataclasses
import enum
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from lerobot.utils.constants import OBS_IMAGES, OBS_LANGUAGE_ATTENTION_MASK

from lerobot_cknna.capture.module_paths import resolve_modules


class Category(enum.StrEnum):
    """What feat A holds, which decides what a score can be compared with."""

    VLA = "VLA"  # vision and language
    IL = "IL"  # vision only, an imitation-learning policy's encoder
    RL = "RL"  # vision only, a reinforcement-learning policy's encoder
    UNKNOWN = "unknown"  # a --cknna.hook_path on a type the table does not know


@dataclass(frozen=True)
class TokenMask:
    """Which tokens of a hooked sequence to average: read from what a policy method gets and returns.

    Attributes:
        method_path: dotted path of the method that builds the sequence's padding mask.
        read: from that method's positional arguments and return value (with ``by_name``: its arguments
            by name) to a (B, M) bool mask, True for tokens to keep. A mask shorter than the sequence (M < N) covers its last M
            tokens; the N - M tokens before them (X-VLA's image tokens) are all kept.
        image: from the same arguments and return value to a (B, M) bool mask of the image tokens
            (those holding a camera's embedding) among the M the mask covers; the N - M tokens
            before a shorter mask are image tokens. The kept tokens that are not image tokens are
            the language group: the prompt's tokens, template and special tokens included.
            ``None``: the entry does not split its tokens, and ``--cknna.token_groups`` is refused.
        groups_note: what a reader of this entry's token groups must know (said in the report);
            without ``image``, why the entry has none (said in the refusal).
        with_policy: ``read`` and ``image`` get the policy before the method's arguments (EVO1: the image
            token id is its embedder's and the pooling its config's, neither an argument of the method;
            VLA-JEPA's embodied-action token id, its tokenizer's).
        by_name: ``read`` and ``image`` get the method's arguments by name (a dict, positional ones bound
            to their parameters' names) and ``None`` for its return value, read as the call starts: the
            method runs the hooked module itself, so its return comes after feat A (EO1's ``sample_actions``,
            which gets its whole prompt by keyword and encodes the prefix inside).
    """

    method_path: str
    read: Callable[..., torch.Tensor]
    image: Callable[..., torch.Tensor] | None = None
    groups_note: str | None = None
    with_policy: bool = False
    by_name: bool = False

    def recorded_call(
        self, method: Callable, args: tuple, kwargs: dict, record: Callable[[object, object], None]
    ):
        """Call ``method`` and ``record`` what :meth:`masks` reads of the call, returning what ``method`` returns.

        That is its positional arguments and return value, or with ``by_name`` its arguments by name, as the
        call starts, and ``None``.
        """
        if self.by_name:
            record(inspect.signature(method).bind(*args, **kwargs).arguments, None)
            return method(*args, **kwargs)
        result = method(*args, **kwargs)
        record(args, result)
        return result

    def masks(
        self, policy: torch.nn.Module, args: tuple | dict, result: object, groups: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The kept tokens and, with ``groups``, the image tokens, from what :meth:`recorded_call` recorded."""
        inputs = (policy, args, result) if self.with_policy else (args, result)
        return self.read(*inputs), (self.image(*inputs) if groups else None)


@dataclass(frozen=True)
class LayerTap:
    """One module read by a hook.

    Attributes:
        path: dotted attribute path from the policy to the module.
        read: ``output`` (a forward hook on what the module returns) or ``input`` (a forward
            pre-hook on its first tensor argument).
        output_key: how to read an ``output`` (see :attr:`HookSpec.output_key`).
    """

    path: str
    read: str = "output"
    output_key: str | int | None = None


@dataclass(frozen=True)
class EpisodeCalls:
    """A policy whose model calls depend on the episode's earlier calls and on the noise they draw.

    Such a policy (LingBot-VA) takes one sample per call and keeps state from one model call to the
    next until ``reset``; its feat A is computed from noise drawn in the same forward. A capture
    then refuses a batch of more than one sample before the policy runs, refuses a model call that
    continues an episode (its feat A depends on the episode so far, which encode-only of one
    observation cannot reproduce), and seeds torch's generators for each call, so that a sample's
    feat A is a function of its observation. Encode-only runs a batch's samples one by one, each
    from a reset policy. Simulation, whose rollouts continue episodes, is refused with ``why``.

    Attributes:
        why: why the type's features cannot be captured along an episode (said in the refusals).
        continues: from the policy, whether its next ``select_action`` continues an episode.
        noise_seed: the seed torch's generators get before each captured ``select_action``; they are
            restored after it.
    """

    why: str
    continues: Callable[[torch.nn.Module], bool]
    noise_seed: int = 0


@dataclass(frozen=True)
class HookSpec:
    """Where and how one policy type's feat A is captured."""

    module_path: str
    category: Category
    layout: str
    output_key: str | int | None = None
    read: str = "output"
    kept_row: int = -1
    firings: Callable[[object], int] | None = lambda config: 1
    kept_firing: Callable[[object], int] = lambda config: 0
    per_sample: bool = False
    token_mask: TokenMask | None = None
    why_no_token_groups: str | None = None
    attends_padding: bool = False
    reads_state: bool = True
    layer_path: Callable[[torch.nn.Module], list[LayerTap]] | None = None
    full_forward: str | None = None
    blank_cameras: bool = False
    episode_calls: EpisodeCalls | None = None
    fixes: tuple[str, ...] = ()

    @property
    def tap(self) -> LayerTap:
        """Feat A's module as a layer tap: the deepest of the sweep."""
        return LayerTap(self.module_path, self.read, self.output_key)


def layer_taps(spec: HookSpec, policy: torch.nn.Module) -> list[LayerTap]:
    """Every layer tap along the layer path, shallow to deep; the last one is ``spec.module_path`` itself.

    Raises:
        ValueError: the entry has no layer path (a ``--cknna.hook_path`` of your own replaces it).
    """
    if spec.layer_path is None:
        raise ValueError(
            f"No layer path for the module {spec.module_path!r}: the layers scored follow the hook table's "
            "own module of each type. Drop --cknna.hook_path, or --cknna.layers."
        )
    return [*spec.layer_path(policy), spec.tap]


def check_token_groups(spec: HookSpec, policy_type: str) -> None:
    """Check that ``spec`` splits feat A's tokens into image and language tokens (``--cknna.token_groups``).

    Raises:
        ValueError: naming the type and why it has no token groups.
    """
    if spec.token_mask is not None and spec.token_mask.image is not None:
        return
    if spec.category in (Category.IL, Category.RL):
        why = "its feat A is a vision encoder's output, with no language tokens"
    elif spec.token_mask is not None and spec.token_mask.groups_note:
        why = spec.token_mask.groups_note
    elif spec.why_no_token_groups:
        why = spec.why_no_token_groups
    else:
        why = "the hook table has no split of its feat A's tokens into image and language tokens"
    raise ValueError(
        f"--cknna.token_groups=true scores a VLA's image tokens and language tokens apart, and policy type "
        f"{policy_type!r} has no token groups: {why}. Types with token groups: {', '.join(token_group_types())}. "
        "Drop --cknna.token_groups."
    )


def token_group_types() -> list[str]:
    """The policy types whose entry splits feat A's tokens into image and language tokens."""
    return [
        policy_type
        for policy_type, entry in HOOK_TABLE.items()
        if isinstance(entry, HookSpec) and entry.token_mask is not None and entry.token_mask.image is not None
    ]


def _children(container_path: str, suffix: str = "", read: str = "output", drop_last: bool = False):
    """Taps on every child of the module list at ``container_path`` (or on ``suffix`` inside each).

    ``drop_last`` leaves the last child out (feat A's module itself).
    """

    def taps(policy: torch.nn.Module) -> list[LayerTap]:
        container = resolve_modules(policy, container_path)[0]
        names = [name for name, _ in container.named_children()]
        names = names[:-1] if drop_last else names
        return [LayerTap(".".join(filter(None, (container_path, name, suffix))), read) for name in names]

    return taps


def _children_of_type(container_path: str, module_type: type, drop_last: bool = False):
    """Taps on the outputs of the children of ``container_path`` that are ``module_type`` instances.

    Args:
        container_path: dotted path of the container (with ``*``: the same children of each match).
        module_type: which children to read.
        drop_last: leave out the last one (its output is the hooked module's own output).
    """

    def taps(policy: torch.nn.Module) -> list[LayerTap]:
        container = resolve_modules(policy, container_path)[0]
        names = [name for name, child in container.named_children() if isinstance(child, module_type)]
        return [LayerTap(f"{container_path}.{name}") for name in (names[:-1] if drop_last else names)]

    return taps


def _activations(sequential_path: str, drop_last: bool = False):
    """The ReLU outputs of a plain conv stack (Gaussian actor, TDMPC): one per conv stage."""
    return _children_of_type(sequential_path, torch.nn.ReLU, drop_last)


def _resnet_stages(backbone_path: str, drop_last: bool = False):
    """The stages (``layer1``..``layer4``, groups of residual blocks) of a torchvision ResNet trunk."""
    return _children_of_type(backbone_path, torch.nn.Sequential, drop_last)


def _decoder_layer_inputs(model_path: str):
    """The residual stream entering each decoder layer: the input of its ``input_layernorm``."""
    return _children(f"{model_path}.layers", suffix="input_layernorm", read="input")


def _n_cameras(config) -> int:
    return len(config.image_features)


def _valid_tokens_before_state(args, prefix) -> torch.Tensor:
    """``embed_prefix`` -> (embs, pad_masks, att_masks): valid image and language tokens.

    The state token (att_mask 1) is left out: it is feat B itself, projected.
    """
    _, pad_masks, att_masks = prefix
    return pad_masks & ~att_masks


def _valid_language_tokens(args, model_inputs) -> torch.Tensor:
    """``_build_model_inputs(batch)``: the batch's language mask (image tokens come first)."""
    (batch,) = args
    return batch[OBS_LANGUAGE_ATTENTION_MASK].bool()


def _backbone_attention_mask(args, backbone_output) -> torch.Tensor:
    """GR00T's backbone output: its attention mask, one entry per token (left padding off).

    ``vlln`` and ``vl_self_attention`` keep the sequence, so the backbone's own mask marks the
    hooked tokens to keep; the self-attention itself is unmasked.
    """
    return backbone_output["backbone_attention_mask"].bool()


def _prefix_padding_mask(args, prefix) -> torch.Tensor:
    """``embed_prefix`` (Pi family) -> (embs, pad_masks, ...): image tokens of present cameras, prompt tokens."""
    return prefix[1]


def _first_tokens(n_tokens: int, mask: torch.Tensor) -> torch.Tensor:
    """A (B, M) mask, shaped as ``mask``, of the first ``n_tokens`` positions."""
    return (torch.arange(mask.shape[1], device=mask.device) < n_tokens).expand_as(mask)


def _smolvla_image_tokens(args, prefix) -> torch.Tensor:
    """``embed_prefix(images, img_masks, lang_tokens, ...)``: the tokens before the language tokens.

    The prefix is every camera's tokens (between image start and end tokens where the config
    adds them), the language tokens, the state token, then padding up to ``prefix_length``
    (modeling_smolvla.py:561-640): the image tokens end where the language tokens, the last
    ones before the first state token (att_mask 1), begin.
    """
    _, pad_masks, att_masks = prefix
    first_state = int(att_masks[0].int().argmax())
    return _first_tokens(first_state - args[2].shape[1], pad_masks)


def _pi_image_tokens(args, prefix) -> torch.Tensor:
    """``embed_prefix(images, img_masks, tokens, masks)`` (Pi0, Pi0.5): the tokens before the prompt's.

    Every camera's tokens, then the prompt's tokens (modeling_pi0.py:496-520,
    modeling_pi05.py:492-516).
    """
    pad_masks = prefix[1]
    return _first_tokens(pad_masks.shape[1] - args[2].shape[1], pad_masks)


def _pi0_fast_image_tokens(args, prefix) -> torch.Tensor:
    """``embed_prefix_fast`` -> (embs, pad_masks, att_masks, total_t_images, ...): its count of image tokens.

    Images, then the prompt's tokens and the BOS appended for decoding (modeling_pi0_fast.py:311-334, 631-641).
    """
    return _first_tokens(prefix[3], prefix[1])


def _no_image_tokens(args, model_inputs) -> torch.Tensor:
    """X-VLA's mask covers the language tokens alone: its image tokens are the ones before it.

    Only the first camera's tokens go through the encoder, prepended to the text
    (modeling_xvla.py:184-193); the other cameras reach the action transformer beside it.
    """
    return torch.zeros_like(_valid_language_tokens(args, model_inputs))


def _backbone_image_mask(args, backbone_output) -> torch.Tensor:
    """GR00T's backbone output: its own image mask, the tokens holding the image token id (groot_n1_7.py:451).

    Qwen3-VL puts the image embeddings in place of those tokens, so positions match the input ids;
    the chat template's text, including the vision start and end tokens, is the language group.
    """
    return backbone_output["image_mask"].bool()


_TOKENS = "(b s) f -> b s f"

ACT = HookSpec(
    module_path="model.backbone",
    category=Category.IL,
    output_key="feature_map",
    layout="(n b) f -> b 1 (n f)",
    firings=_n_cameras,
    reads_state=False,
    # layer4 is the backbone's own output (feature_map).
    layer_path=_resnet_stages("model.backbone", drop_last=True),
)
# Older Diffusion checkpoints (use_separate_rgb_encoder_per_camera=false): one encoder, cameras in rows.
DIFFUSION_SHARED_ENCODER = HookSpec(
    module_path="diffusion.rgb_encoder",
    category=Category.IL,
    layout="(b s n) f -> b s (n f)",
    reads_state=False,
    layer_path=_resnet_stages("diffusion.rgb_encoder.backbone"),
)
# lerobot 0.6's default: one encoder per camera, called in camera order (modeling_diffusion.py:278-289).
DIFFUSION_ENCODER_PER_CAMERA = dataclasses.replace(
    DIFFUSION_SHARED_ENCODER,
    module_path="diffusion.rgb_encoder.*",
    layout="(n b s) f -> b s (n f)",
    firings=_n_cameras,
    layer_path=_resnet_stages("diffusion.rgb_encoder.*.backbone"),
)
VQBET = dataclasses.replace(
    DIFFUSION_SHARED_ENCODER,
    module_path="vqbet.rgb_encoder",
    layer_path=_resnet_stages("vqbet.rgb_encoder.backbone"),
)
GAUSSIAN_ACTOR = HookSpec(
    module_path="actor.encoder.image_encoder",
    category=Category.RL,
    layout="(n b) f -> b 1 (n f)",
    reads_state=False,
    # The last ReLU's output is the image encoder's own output.
    layer_path=_activations("actor.encoder.image_encoder.image_enc_layers", drop_last=True),
)
TDMPC = HookSpec(
    module_path="model._encoder.image_enc_layers",
    category=Category.RL,
    layout="(b s) f -> b s f",
    fixes=("tdmpc_image_key",),
    layer_path=_activations("model._encoder.image_enc_layers"),
)
SMOLVLA = HookSpec(
    module_path="model.vlm_with_expert.vlm.model.text_model.norm",
    category=Category.VLA,
    layout=_TOKENS,
    token_mask=TokenMask("model.embed_prefix", _valid_tokens_before_state, _smolvla_image_tokens),
    blank_cameras=True,
    layer_path=_decoder_layer_inputs("model.vlm_with_expert.vlm.model.text_model"),
)
XVLA = HookSpec(
    module_path="model.vlm.language_model.encoder",
    category=Category.VLA,
    layout=_TOKENS,
    output_key="last_hidden_state",
    token_mask=TokenMask(
        "_build_model_inputs",
        _valid_language_tokens,
        _no_image_tokens,
        groups_note="The image group is the first camera's tokens alone: X-VLA's other cameras bypass the "
        "encoder, so feat A holds none of their tokens.",
    ),
    attends_padding=True,
    blank_cameras=True,
    fixes=("xvla_env_steps",),
    # Post-norm BART layers: each layer's input is the residual stream entering it.
    layer_path=_children("model.vlm.language_model.encoder.layers", read="input"),
)
_PALIGEMMA_LANGUAGE_MODEL = "model.paligemma_with_expert.paligemma.model.language_model"
# LeRobot's PiGemmaRMSNorm returns (normed, gate); the gate is None for PaliGemma (pi_gemma.py:120).
PI0 = HookSpec(
    module_path=f"{_PALIGEMMA_LANGUAGE_MODEL}.norm",
    category=Category.VLA,
    layout=_TOKENS,
    output_key=0,
    token_mask=TokenMask("model.embed_prefix", _prefix_padding_mask, _pi_image_tokens),
    blank_cameras=True,
    layer_path=_decoder_layer_inputs(_PALIGEMMA_LANGUAGE_MODEL),
)
_STATE_IN_PROMPT = (
    "The prompt holds the discretized state as text, so the language group holds feat B itself, "
    "coarsely: its alignment with the state is high partly by construction."
)
# Pi0.5: the same prefix, with the discretized state in the prompt ("Task: ..., State: ...;",
# processor_pi05.py:68-74).
PI05 = dataclasses.replace(PI0, token_mask=dataclasses.replace(PI0.token_mask, groups_note=_STATE_IN_PROMPT))
# Pi0-FAST: the prefill fires first, then one firing per decoded token; the prefill is kept. Its prompt
# holds the discretized state too (processor_pi0_fast.py:69-75), so its language group does.
PI0_FAST = dataclasses.replace(
    PI0,
    firings=None,
    token_mask=TokenMask(
        "model.embed_prefix_fast", _prefix_padding_mask, _pi0_fast_image_tokens, groups_note=_STATE_IN_PROMPT
    ),
    fixes=("action_tokenizer_config",),
)
GROOT = HookSpec(
    module_path="_groot_model.action_head.vl_self_attention",
    category=Category.VLA,
    layout=_TOKENS,
    token_mask=TokenMask(
        "_groot_model.backbone.forward",
        _backbone_attention_mask,
        _backbone_image_mask,
        groups_note="The language group holds the chat template's tokens (the vision start and end tokens "
        "included) beside the instruction's.",
    ),
    attends_padding=True,
    fixes=("groot_backbone_processor",),
    # The Qwen3-VL text decoder, cut at select_layer; its tokens are the backbone's.
    layer_path=_decoder_layer_inputs("_groot_model.backbone.model.model.language_model"),
)

_CLIP_VISION = "observation_encoder.vision_encoder"
MULTI_TASK_DIT = HookSpec(
    module_path=_CLIP_VISION,
    category=Category.IL,
    layout="(b s n) f -> b s (n f)",
    reads_state=False,
    # CLIP's pre-norm encoder layers, read at their layer_norm1 input (the residual stream entering
    # each layer) and averaged over all their tokens; the last layer's output is the CLS returned.
    layer_path=_children(
        f"{_CLIP_VISION}.model.vision_model.encoder.layers", suffix="layer_norm1", read="input"
    ),
)
"""Multi-task DiT: the CLIP vision encoder's CLS token, per camera, of the current step.

The DiT's condition is one flat vector built by ``observation_encoder.encode`` (a method, so no
hook sees it whole): per observation step ``[state, CLS of each camera, projected CLIP text
pooler]`` (modeling_multi_task_dit.py:337-386), handed to ``noise_predictor`` as a keyword at
every denoising step. Of its three parts only the camera part is feat A:

* the state is feat B itself, verbatim: with it in feat A, alignment with the state would be
  high by construction;
* the text part is one vector per instruction (a frozen CLIP text tower and a linear map), the
  same for every frame of an episode, so it carries nothing about where the robot is; across
  tasks it would only add the instruction's identity to the distances;
* the CLS of each camera is what the condition holds about the observation, the counterpart of
  Diffusion Policy's ``rgb_encoder`` output (the rows of its shared encoder: the cameras of every
  queued observation step in one call). So the category is IL, vision only, and the tower never
  sees the state (a policy of another robot replays on the cameras alone).

With ``use_separate_rgb_encoder_per_camera`` (not lerobot 0.6's default) the encoders are
``observation_encoder.vision_encoders.*`` and this entry does not fit: name one with
``--cknna.hook_path``.
"""

_QWEN3_VL_TEXT = "model.qwen.model.model.language_model"


def _embodied_action_tokens(policy, args, qwen_inputs) -> torch.Tensor:
    """``build_inputs`` -> its input ids: the embodied-action tokens.

    The id is the tokenizer's (the Qwen3-VL interface's, ``policy.model.qwen``) for
    ``config.embodied_action_token``, as ``expand_tokenizer`` found it (qwen_interface.py:69-71) and
    ``_encode_qwen`` selects the head's rows with it (modeling_vla_jepa.py:196).
    """
    qwen = policy.model.qwen
    token_id = qwen.processor.tokenizer.convert_tokens_to_ids(qwen.config.embodied_action_token)
    return qwen_inputs["input_ids"] == token_id


VLA_JEPA = HookSpec(
    module_path=f"{_QWEN3_VL_TEXT}.layers.-1",
    category=Category.VLA,
    layout=_TOKENS,
    token_mask=TokenMask(
        "model.qwen.build_inputs",
        _embodied_action_tokens,
        groups_note="feat A is the mean of its embodied-action tokens' rows, the only rows the action head "
        "reads; they are neither image nor language tokens (each attends to both), so feat A does not split "
        "into an image part and a language part",
        with_policy=True,
    ),
    reads_state=False,
    layer_path=_decoder_layer_inputs(_QWEN3_VL_TEXT),
)
"""VLA-JEPA: the last Qwen3-VL decoder layer's output, pre-final-norm, averaged over the embodied-action rows.

The action head's only view of the observation is ``embodied_action_tokens``: the rows of the
last decoder layer's output, before the final RMSNorm, at the ``<|embodied_action|>`` tokens
(32 per sample, appended to the prompt after the images, the instruction and the action
placeholders), which ``_encode_qwen`` gathers with a forward hook of its own on that layer and
hands to the DiT as its cross-attention context (modeling_vla_jepa.py:154-212, 321-324). So that
layer is feat A's module (``layers.-1``: its last child, whatever the checkpoint's depth), and feat
A is the mean of exactly those rows, the mask read off ``build_inputs``'s input ids with the id
``expand_tokenizer`` gave the token:

* a mean over all valid tokens would add the image and prompt rows, which the head never reads:
  what it gets of the cameras and the instruction, it gets through the embodied rows' attention
  (the decoder is causal, and they follow the images and the instruction);
* no token groups: the rows pooled are neither image nor language tokens, so feat A is no
  weighted mean of an image group and a language group; the prompt's own image and language rows
  are rows the head does not read, and are not feat A's. ``--cknna.token_groups`` is refused;
* the layer fires once per inference: one Qwen forward (``lm_head`` included, its logits unused),
  then the head's denoising steps. LeRobot's hook on the same layer is registered after this
  package's, so encode-only stops before it runs;
* the Qwen never sees the state (the prompt holds none; the state goes to the head's
  ``state_encoder``), hence ``reads_state=False``. Left padding is masked (the rotary positions
  come from the attention mask), so a sample's vector does not depend on its batch.

Layer taps: the residual stream entering each Qwen3-VL text decoder layer, pooled over the same
embodied rows.
"""


def _evo1_attended_tokens(policy, args, attention_mask) -> torch.Tensor:
    """``_mask_absent_image_tokens(input_ids, attention_mask, ...)`` -> the tokens EVO1's action head attends to.

    Its return is the context mask of the fused tokens (internvl3_embedder.py:343-355), the head's
    ``key_padding_mask`` (flow_matching.py:320): the prompt's tokens without the padding and without
    the image tokens of absent views. With ``return_cls_only`` the head gets the last of them alone
    (internvl3_embedder.py:356-363).
    """
    kept = attention_mask.bool()
    if not policy.config.return_cls_only:
        return kept
    last = (kept.long() * torch.arange(kept.shape[1], device=kept.device)).argmax(dim=1)
    return torch.nn.functional.one_hot(last, kept.shape[1]).bool()


def _evo1_image_tokens(policy, args, attention_mask) -> torch.Tensor:
    """The prompt's ``<IMG_CONTEXT>`` tokens (``input_ids``, the first argument), which InternVL fills with image features.

    Raises:
        ValueError: ``return_cls_only``: the head reads one pooled token, with no image tokens apart.
    """
    if policy.config.return_cls_only:
        raise ValueError(
            "EVO1 with return_cls_only=true conditions its action head on one token, the prompt's last, so its "
            "feat A has no image tokens and language tokens apart. Drop --cknna.token_groups."
        )
    return args[0] == policy.model.embedder.img_context_token_id


_INTERNVL_TEXT = "model.embedder.model.language_model"
EVO1 = HookSpec(
    module_path=f"{_INTERNVL_TEXT}.norm",
    category=Category.VLA,
    layout=_TOKENS,
    token_mask=TokenMask(
        "model.embedder._mask_absent_image_tokens",
        _evo1_attended_tokens,
        _evo1_image_tokens,
        groups_note='The language group holds the prompt\'s view labels ("Image-1: ") and the <img> and </img> '
        "tokens around each view's image tokens beside the instruction's.",
        with_policy=True,
    ),
    reads_state=False,
    blank_cameras=True,
    # InternVL3's Qwen2 text model, cut to vlm_num_layers (internvl3_embedder.py:169-173).
    layer_path=_decoder_layer_inputs(_INTERNVL_TEXT),
)
"""EVO1: the fused vision-language tokens of InternVL3, its Qwen2 text model's final norm.

The embedder writes every view's image placeholders and the instruction into one prompt,
tokenizes it inside the model (internvl3_embedder.py:323-329), and runs InternVL3 with the text
model cut to ``vlm_num_layers``; the action head's context is ``outputs.hidden_states[-1]``
(:354), which transformers 5 ties to the last hidden state, the final norm's output. The head
cross-attends to those tokens with the embedder's mask as ``key_padding_mask``
(flow_matching.py:320): that mask is feat A's token mask, so the padding and the image tokens of
absent view slots (``max_views`` beyond the cameras, zero images) stay out of the mean. The
state reaches the head as one more context token after these (flow_matching.py:313-318), so the
norm never sees it (``reads_state=False``). With ``return_cls_only`` (not the default) the head
gets the last valid token alone, and so does feat A.
"""


def _eo1_prefix(arguments: dict) -> slice:
    """The prefix EO1 encodes before denoising: the prompt up to its first action token, ``act_start``.

    As ``sample_actions`` finds it (modeling_eo1.py:476-504): the action placeholders are the
    tokens holding ``action_token_id``, at the same positions in every left-padded row.
    """
    actions = arguments["input_ids"][0] == arguments["action_token_id"]
    return slice(None, int(actions.int().argmax()))


def _eo1_prefix_tokens(policy, arguments: dict, result: None) -> torch.Tensor:
    """``sample_actions``'s arguments -> the prefix's tokens, without the left padding and the state token.

    The prefill (modeling_eo1.py:519-529) attends with ``attention_mask[:, :act_start]``, the
    processor's mask, left-padded at inference (processor_eo1.py:187). The ``<|state_pad|>``
    token (``state_token_id``, as ``get_placeholder_mask`` finds it, :231) holds the projected
    state in place of its embedding (``embed_prefix``, :277-309): feat B itself, so it is left out.
    """
    prefix = _eo1_prefix(arguments)
    tokens = arguments["input_ids"][:, prefix]
    return arguments["attention_mask"][:, prefix].bool() & (tokens != arguments["state_token_id"])


def _eo1_image_tokens(policy, arguments: dict, result: None) -> torch.Tensor:
    """The prefix's tokens holding Qwen2.5-VL's ``image_token_id``, which it fills with the cameras' features."""
    tokens = arguments["input_ids"][:, _eo1_prefix(arguments)]
    return tokens == policy.model.vlm_backbone.config.image_token_id


_QWEN2_5_VL_TEXT = "model.vlm_backbone.model.language_model"
EO1 = HookSpec(
    module_path=f"{_QWEN2_5_VL_TEXT}.norm",
    category=Category.VLA,
    layout=_TOKENS,
    # The prefill, then one firing per denoising step over the action tokens alone: the prefill is kept.
    firings=None,
    token_mask=TokenMask(
        "model.sample_actions",
        _eo1_prefix_tokens,
        _eo1_image_tokens,
        groups_note="The language group holds the chat template's tokens (system message, role headers, vision "
        "start and end tokens, EO1's state start and end markers, <|vla|> and <|action_start|>) beside the "
        "instruction's. The state token is left out, but the tokens after it (the instruction, <|vla|> and the "
        "assistant header) attend to it; the image tokens come before it and do not.",
        with_policy=True,
        by_name=True,
    ),
    layer_path=_decoder_layer_inputs(_QWEN2_5_VL_TEXT),
)
"""EO1: the prefix of its Qwen2.5-VL, the text model's final norm in the prefill.

EO1 has no action expert: the action tokens are more tokens of the same Qwen2.5-VL. Its prompt
(processor_eo1.py:108-133) is a chat of a system message, the user's camera images, the state
placeholder between ``<|state_start|>`` and ``<|state_end|>``, the instruction and ``<|vla|>``, then
the assistant's ``<|action_start|>``, the action placeholders and ``<|action_end|>``.
``sample_actions`` encodes the prefix, everything before the first action placeholder, once
with a KV cache (modeling_eo1.py:519-529); each Euler step then runs the action tokens alone
against that cache (:538-558). So the prefill's last hidden states, the final norm's output,
are what every action token reads: its first firing is feat A (later firings hold the action
tokens and are dropped).

The token mask is the prefill's attention mask (left padding off) without the state token,
read from ``sample_actions``'s own arguments as the call starts (it runs the prefill inside).
The state enters the prefix as that one token, projected by ``state_proj`` (``reads_state``);
the tokens after it attend to it causally.
"""


def _molmoact2_prompt_tokens(policy, args, model_inputs) -> torch.Tensor:
    """``_model_inputs(batch)`` -> the prompt's tokens the action expert attends to, without the state tokens.

    The mask is MolmoAct2's own for the action expert's cross-attention,
    ``_get_encoder_attention_mask(input_ids, attention_mask)`` (molmoact2_hf_model/modeling_molmoact2.py:2783,
    called by ``generate_actions_from_inputs`` at :3036): the processor's attention mask (left padding
    off), and for a checkpoint trained with ``action_mode="both"`` without its end-of-sequence tokens.
    The discretized state's tokens, strictly between ``<state_start>`` and ``<state_end>`` (the
    config's ``state_start_token_id`` and ``state_end_token_id``), are left out: one token per state
    dimension, whose embedding is a lookup of the state's bin (processor_molmoact2.py:342-350), feat B
    itself, coarsely.

    Raises:
        ValueError: the checkpoint's config names no state start or end token.
    """
    model = policy._backbone()  # MolmoAct2Model, under LoRA's wrapper too
    input_ids = model_inputs["input_ids"]
    kept = model._get_encoder_attention_mask(input_ids, model_inputs.get("attention_mask"))
    start_id, end_id = model.config.state_start_token_id, model.config.state_end_token_id
    if start_id is None or end_id is None:
        raise ValueError(
            "MolmoAct2: the checkpoint's config names no state_start_token_id or state_end_token_id, so the "
            "discretized state's tokens cannot be found by id and left out of feat A."
        )
    inside_state = (input_ids == start_id).int().cumsum(dim=1) - (input_ids == end_id).int().cumsum(dim=1)
    return kept & ~((inside_state > 0) & (input_ids != start_id))


def _molmoact2_image_tokens(policy, args, model_inputs) -> torch.Tensor:
    """The prompt's ``<im_patch>`` tokens (the config's ``image_patch_id``), the ones a camera's pooled features are added to.

    ``build_input_embeddings`` (molmoact2_hf_model/modeling_molmoact2.py:3402-3428) adds one pooled
    patch feature to each of them; the image start, column and end tokens around them hold none.
    """
    return model_inputs["input_ids"] == policy._backbone().config.image_patch_id


_MOLMOACT2_TEXT = "model.model.transformer"
MOLMOACT2 = HookSpec(
    module_path=f"{_MOLMOACT2_TEXT}.ln_f",
    category=Category.VLA,
    layout=_TOKENS,
    # Continuous inference: once. Discrete inference: the prefill, then once per decoded token; the prefill is kept.
    firings=None,
    token_mask=TokenMask(
        "_model_inputs",
        _molmoact2_prompt_tokens,
        _molmoact2_image_tokens,
        groups_note='The language group holds the prompt\'s image labels ("Image 1"), the image start, column '
        "and end tokens, the chat's role markers, the setup and control clauses and the state markers beside "
        "the instruction's. The state's own tokens are left out, but the tokens after them (the rest of the "
        "question and the assistant's header) attend to them; the image tokens come before them and do not.",
        with_policy=True,
    ),
    # Each decoder block's input: the residual stream whose key and value projections that layer's
    # action-expert block reads (pre-norm blocks normalize it first; post-norm ones attend to it as it is).
    layer_path=_children(f"{_MOLMOACT2_TEXT}.blocks", read="input"),
)
"""MolmoAct2: the final norm of its Molmo text model over the prompt, without the state's tokens.

MolmoAct2's prompt (processor_molmoact2.py:353-378) is each camera's image tokens (``Image 1``, the
pooled patches between ``<im_start>`` and ``<im_end>``), then a user turn with the instruction,
the setup, the discretized state (one ``<state_N>`` token per dimension, ``num_state_tokens``
bins, :342-350) and the control mode, and the assistant's ``<action_output>``. In continuous
inference ``generate_actions_from_inputs`` runs the VLM once over that prompt with a KV cache and
its action expert, one block per text-model layer, cross-attends to each layer's keys and values
(molmoact2_hf_model/modeling_molmoact2.py:3021-3035, ``_extract_kv_states`` :2741) at every
flow-matching step. No single module outputs that per-layer condition, so, as for SmolVLA and the
Pi family whose experts read the prefix's per-layer KV cache too, feat A is the prompt's last hidden
states, the text model's final norm ``ln_f`` (``MolmoAct2RMSNorm``), which fires once per inference;
the layer taps are each block's input, the residual stream that block's keys and values are
projected from, so the sweep walks the condition layer by layer.

The token mask is the one the action expert's cross-attention uses (``_get_encoder_attention_mask``,
read off ``_model_inputs``'s return, the batch's model inputs, before the VLM runs), without the
discretized state's tokens, as EO-1's and SmolVLA's state tokens are left out: they are feat B,
binned, and in feat A they would make alignment with the state high by construction. The state
still reaches feat A through the tokens after them (``reads_state``), as the action expert gets it.
Left padding is masked; the rotary positions are not shifted back, but the valid tokens' relative
positions are the same, so a sample's vector does not depend on its batch (to float rounding).

With ``inference_action_mode="discrete"`` the actions are decoded as tokens instead, one more
text-model forward per token after the same prefill (``_generate_discrete_actions_from_inputs``,
modeling_molmoact2.py:1430-1460), so the module's later firings are dropped and the prefill kept,
as for Pi0-FAST. With LoRA on the VLM (``enable_lora_vlm``) peft wraps the model
(``_hf_model()``): the token mask follows it (``_backbone()``), the module path does not; name the
norm under the wrapper, ``model.base_model.model.model.transformer.ln_f``, with ``--cknna.hook_path``.
"""


def _lingbot_va_cache_writing_step(config) -> int:
    """The firing, in a chunk from a reset policy, of the video loop's last step: the one that writes the KV cache.

    ``_infer`` runs ``num_inference_steps`` denoising steps and one more at t = 0 (the timesteps padded
    with 0), cut to the first ``video_exec_step`` when that is not -1 (modeling_lingbot_va.py:763-765);
    its last call has ``update_cache=1`` (:779-784).
    """
    steps = config.num_inference_steps + 1
    return (steps if config.video_exec_step == -1 else min(steps, config.video_exec_step)) - 1


_WAN_BLOCKS = "transformer.blocks"
LINGBOT_VA = HookSpec(
    module_path=f"{_WAN_BLOCKS}.-1",
    category=Category.VLA,
    # Classifier-free guidance runs the prompt's rows, then the negative prompt's: the prompt's are kept.
    layout="(g b) f -> b g f",
    kept_row=0,
    read="input",
    firings=None,
    kept_firing=_lingbot_va_cache_writing_step,
    reads_state=False,
    why_no_token_groups="feat A pools LingBot-VA's video tokens, the chunk's latent patches of the cameras, "
    "which read the prompt by cross-attention; no token is a language token",
    episode_calls=EpisodeCalls(
        why="LingBot-VA keeps a KV cache across the model calls of an episode: from its second chunk on, the "
        "video tokens its action stream reads were computed with the episode's earlier frames and its own "
        "executed actions, which encode-only of one observation cannot reproduce, so features captured along "
        "a rollout would not be the ones replay computes and replay parity could not hold",
        continues=lambda policy: policy._started,
    ),
    # The residual stream entering each earlier block, at the same step: what that block's cached keys and
    # values are computed from.
    layer_path=_children(_WAN_BLOCKS, read="input", drop_last=True),
)
"""LingBot-VA: the video tokens its action stream attends to, entering the last transformer block.

LingBot-VA is a world-action model, with no vision-language backbone: one dual-stream Wan
transformer first denoises the chunk's video latents (the observation's VAE latent as frame 0,
later frames generated), then, in the same blocks, the chunk's actions, with the UMT5 prompt as
cross-attention context in both streams. The action stream's only view of the observation is
the self-attention KV cache: the video loop's last call (t = 0, ``update_cache=1``,
modeling_lingbot_va.py:779-784) writes each block's keys and values of the denoised video
tokens, and every action step attends to them (utils.py:634-665). The output of that call is
discarded (with the default ``video_exec_step=-1`` its noise prediction is not used, :785), and
the last block's output reaches the action stream nowhere else. So feat A is taken where
the cache is written: the input of the last block (``blocks.-1``) at that call, the residual
stream its cached keys and values are projected from (after ``norm1`` and the step's
modulation), mean-pooled over all the chunk's video tokens (every frame, both cameras side by
side; all valid, no mask). That call is the ``num_inference_steps + 1``-th firing of a chunk
from a reset policy (``kept_firing``); the action loop's firings after it are dropped.

* The video tokens of the denoised chunk depend on the noise the video loop starts from
  (``torch.randn`` at :756), and attention spreads it to frame 0 too: every captured call is
  seeded (``EpisodeCalls.noise_seed``), so that a sample's feat A is a function of its
  observation, the same in encode-only and in a real ``select_action``;
* with classifier-free guidance the blocks see the prompt's rows, then the negative prompt's; the
  action stream uses the prompt's (its guidance scale is 1 by default), which are kept;
* one sample per call (``_infer`` draws noise for one, the prompt is ``task[0]``, :483), and
  state across calls (the prompt's embedding, the KV cache of fed-back frames and executed
  actions, :717-747): encode-only runs each sample from a reset policy, a capture refuses a batch
  of several or a call that continues an episode, and simulation is refused (``EpisodeCalls``);
* the state never reaches the model (``reads_state=False``): LingBot-VA reads the cameras and the
  prompt only.

Layer taps: the residual stream entering each earlier block at the same call, pooled alike.
"""


_MOT_LAYERS = "model.mot.layers"
_VIDEO_NORM1 = "blocks.video.norm1"
FASTWAM = HookSpec(
    module_path=f"{_MOT_LAYERS}.-1.{_VIDEO_NORM1}",
    category=Category.VLA,
    layout=_TOKENS,
    per_sample=True,
    why_no_token_groups="feat A pools FastWAM's first-frame video tokens, each a latent patch of the cameras "
    "that has read the instruction by cross-attention; no token is a language token",
    fixes=("fastwam_vae_repo",),
    layer_path=_children(_MOT_LAYERS, suffix=_VIDEO_NORM1, drop_last=True),
)
"""FastWAM: the first-frame video tokens its action tokens attend to, normalized as the last MoT layer reads them.

FastWAM is a world-action model with no VLM output for an action head to read: a Wan2.2 video
DiT and an action DiT, mixed layer by layer (MoT). Its inference (``infer_action``,
modular.py:1787-1871) encodes the first frame (the cameras side by side) with the Wan VAE and
prefills its latent patches once through the video expert (``mot.prefill_video_cache``,
:695-735), every layer cross-attending to the UMT5 instruction with a proprio token appended
(``_prepare_infer_context``, :1621-1638, 1039-1058). Each denoising step then runs the action
tokens alone: in every layer they attend to the cached keys and values of those video tokens
(``_forward_action_cached``, :560-597; the mask lets actions see the first frame's tokens only,
:1233, and the first frame is all the prefill holds) and cross-attend to the same context.

So what the action stream takes of the observation is, in each layer, keys and values
projected from the video tokens entering that layer after the layer's ``norm1`` (a LayerNorm
without weights) and the timestep's modulation (:375-377), a fixed affine map here, since the
first frame's timestep is always 0. Feat A is the deepest of these: the output of the last
layer's video ``norm1`` (a module call, so hooked; ``layers.-1``, whatever the depth), averaged
over the first-frame tokens:

* not the last layer's output (``MoTLayer`` output 0 in ``video_prefill`` mode): the prefill
  computes it, and nothing reads it (only each layer's keys and values are kept);
* not the keys or values themselves: both are linear maps of this output after the fixed
  modulation (the keys RMS-normalized and rotated by their token position), so this output is
  what the action tokens read at that depth, before the head-specific projections;
* no token mask: every token of the prefill is a first-frame latent patch, none is padding, and
  the mask lets every action token attend to all of them (a test checks it on the mask itself);
* no token groups (refused, with the reason): the instruction is not among these tokens, it
  enters every one of them through cross-attention;
* the state is read (``reads_state``): the proprio token is part of the context every video
  layer cross-attends to;
* ``predict_action_chunk`` runs its batch one sample at a time (modeling_fastwam.py:220-231)
  and the video blocks run only in the prefill (the denoising steps run the action blocks
  alone), so this norm fires once per sample, in batch order (``per_sample``); encode-only stops
  at the last sample's, before any denoising step of it.

Layer taps: the same ``norm1`` output of every shallower MoT layer: the first-frame tokens whose
keys and values the action tokens attend to at that depth.
"""


def _wall_x_prompt_tokens(policy, args, model_inputs) -> torch.Tensor:
    """``preprocess_inputs`` -> Wall-X's model inputs: the prompt's tokens but the action and proprioception ones.

    Its ``attention_mask`` is the tokenizer's (padding off), ``moe_token_types`` marks the
    ``<|action|>`` tokens (modeling_wall_x.py:2024-2025), the prompt's last valid tokens
    (utils.py:526), and the ``<|propri|>`` token (the id ``define_action_token_id`` found,
    :559-581) holds the projected state in place of its embedding (:1246-1254): feat B itself,
    so it is left out.
    """
    propri_token_id = policy.model.action_token_id_set["propri_token_id"]
    kept = model_inputs["attention_mask"].bool() & ~model_inputs["moe_token_types"].bool()
    return kept & (model_inputs["input_ids"] != propri_token_id)


def _wall_x_image_tokens(policy, args, model_inputs) -> torch.Tensor:
    """The prompt's tokens holding Qwen2.5-VL's ``image_token_id``, which Wall-X fills with the cameras' features."""
    return model_inputs["input_ids"] == policy.model.config.image_token_id


_WALL_X_TEXT = "model.model"
WALL_X = HookSpec(
    module_path=f"{_WALL_X_TEXT}.norm",
    category=Category.VLA,
    layout=_TOKENS,
    # One firing per Euler step, each over the whole sequence; the prompt's rows are the same in every one.
    firings=None,
    token_mask=TokenMask(
        "preprocess_inputs",
        _wall_x_prompt_tokens,
        _wall_x_image_tokens,
        groups_note="The language group holds the chat template's tokens (system message, role headers, the "
        "cameras' names, vision start and end tokens, the fixed 'Predict the next action in robot action.' and "
        "'Proprioception:' lines) beside the instruction's. The proprioception token is left out, but the "
        "tokens after it (the end of the user turn and the assistant header) attend to it; the image tokens "
        "and the instruction come before it and do not.",
        with_policy=True,
    ),
    layer_path=_decoder_layer_inputs(_WALL_X_TEXT),
)
"""Wall-X: the prompt's rows of its Qwen2.5-VL-MoE text model's final norm, in the first Euler step.

Wall-X has no action expert of its own: the action tokens are the last tokens of the same
Qwen2.5-VL prompt (utils.py:448-530: a system message, the cameras' images, the instruction,
``Proprioception: <|propri|>``, then the assistant header and one ``<|action|>`` per chunk step),
routed to their own expert MLP in each decoder layer (``moe_token_types``). There is no KV
cache: each of the ten Euler steps (``predict``'s ``num_inference_timesteps``, which the policy
does not pass) writes the noisy actions into the action tokens' embeddings and reruns the whole
sequence (modeling_wall_x.py:1425-1482). The mask is causal but for the action tokens, which
also attend to each other (the action "islands", qwen2_5_vl_moe.py:346-353). So the prompt's
rows come before every action token and never see them: they are the same in every step
(tested, bit for bit), and they are what each action token reads. The final norm's output over
those rows is feat A, kept from the first firing (later firings repeat them beside new action
rows; with right padding, the padding rows after the action tokens change too).

The token mask is the tokenizer's attention mask without the action tokens and without the
``<|propri|>`` token, read from what ``preprocess_inputs`` (which tokenizes inside the policy)
returns, before the model runs. The state enters the prompt as that one token, projected by the
action head's ``propri_proj`` (``reads_state``); the tokens after it attend to it causally.
"""


def _diffusion(config) -> HookSpec:
    return (
        DIFFUSION_ENCODER_PER_CAMERA
        if config.use_separate_rgb_encoder_per_camera
        else DIFFUSION_SHARED_ENCODER
    )


HOOK_TABLE: dict[str, HookSpec | Callable[[object], HookSpec]] = {
    "act": ACT,
    "diffusion": _diffusion,
    "vqbet": VQBET,
    "gaussian_actor": GAUSSIAN_ACTOR,
    "tdmpc": TDMPC,
    "smolvla": SMOLVLA,
    "xvla": XVLA,
    "pi0": PI0,
    "pi05": PI05,
    "pi0_fast": PI0_FAST,
    "groot": GROOT,
    "multi_task_dit": MULTI_TASK_DIT,
    "evo1": EVO1,
    "eo1": EO1,
    "vla_jepa": VLA_JEPA,
    "molmoact2": MOLMOACT2,
    "lingbot_va": LINGBOT_VA,
    "fastwam": FASTWAM,
    "wall_x": WALL_X,
}

# Used for a --cknna.hook_path on a policy type the table does not know.
GENERIC_SPEC = HookSpec(
    module_path="",
    category=Category.UNKNOWN,
    layout=_TOKENS,
    full_forward="a module of your choice may fire again later in the forward, which is an error",
)


def check_simulation(spec: HookSpec, policy_type: str) -> None:
    """Check that ``policy_type``'s features can be captured along simulated episodes.

    Raises:
        ValueError: naming the type and why not (its ``episode_calls``), before anything is loaded.
    """
    if spec.episode_calls is None:
        return
    raise ValueError(
        f"Policy type {policy_type!r} cannot be measured in simulation: {spec.episode_calls.why}. "
        "Replay a dataset instead (--dataset.repo_id=...): each frame is encoded from a reset policy."
    )


def blank_camera_keys(spec: HookSpec, config) -> set[str]:
    """The camera keys the policy fills with blank images itself (none unless the entry says it does)."""
    if not spec.blank_cameras:
        return set()
    return {f"{OBS_IMAGES}.empty_camera_{index}" for index in range(getattr(config, "empty_cameras", 0))}


def spec_for(policy_type: str, hook_path: str | None = None, config=None) -> HookSpec:
    """The table entry for ``policy_type``, with ``hook_path`` overriding the module when given.

    Args:
        policy_type: the registered type (``config.type``).
        hook_path: a module of your choice, expected to fire once per forward.
        config: the policy's config, for entries that depend on it (Diffusion's encoder layout).

    Raises:
        ValueError: unknown type and no ``hook_path`` to fall back on.
    """
    if policy_type in HOOK_TABLE:
        entry = HOOK_TABLE[policy_type]
        spec = entry if isinstance(entry, HookSpec) else entry(config)
    elif hook_path:
        spec = GENERIC_SPEC
    else:
        raise ValueError(
            f"No hook entry for policy type {policy_type!r} (known: {', '.join(sorted(HOOK_TABLE))}). "
            "Pass --cknna.hook_path=<dotted.module.path> to capture a module of your choice."
        )
    if hook_path and hook_path != spec.module_path:
        return dataclasses.replace(
            spec,
            module_path=hook_path,
            layout=GENERIC_SPEC.layout,
            output_key=None,
            firings=GENERIC_SPEC.firings,
            layer_path=None,
            full_forward=GENERIC_SPEC.full_forward,
        )
    return spec
