"""Local stand-ins for the Hub assets that VLA policies load by name: tokenizers and VLM configs.

SmolVLA calls ``AutoConfig`` / ``AutoProcessor`` on ``vlm_model_name``, X-VLA's processor
loads a tokenizer by name, GR00T N1.7 reads a Qwen3-VL config and processor, EVO1 loads
an InternVL3 (weights and tokenizer), MolmoAct2 and Wall-X a whole checkpoint (config, processor,
tokenizer, weights), and LingBot-VA and FastWAM a Wan2.2 base (UMT5 encoder, T5 tokenizer, VAE).
Pointing those names at a directory written here lets the real loading code run with no
network. The word-level tokenizer is a vocabulary of every word in LIBERO's task descriptions
(read from hf-libero's BDDL file names, without importing LIBERO), so every LIBERO instruction
tokenizes without unknown words; the Qwen-VL models' and InternVL3's is a byte-level BPE trained
on the same descriptions.
"""

import importlib.util
import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast, Qwen2TokenizerFast

SMOLVLM_SPECIAL_TOKENS = {
    "fake_image_token": "<fake_token_around_image>",
    "image_token": "<image>",
    "global_image_token": "<global-img>",
    "end_of_utterance_token": "<end_of_utterance>",
}
BASE_SPECIAL_TOKENS = {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"}


def libero_task_descriptions(suite: str = "*") -> list[str]:
    """LIBERO task descriptions of ``suite`` (all suites by default), from hf-libero's BDDL file names."""
    spec = importlib.util.find_spec("libero")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("hf-libero is not installed; install lerobot[libero].")
    bddl_root = Path(spec.submodule_search_locations[0]) / "libero" / "bddl_files"
    return sorted(path.stem.replace("_", " ") for path in bddl_root.glob(f"{suite}/*.bddl"))


def libero_words() -> list[str]:
    """Every word of every LIBERO task description, sorted."""
    return sorted({word.lower() for task in libero_task_descriptions() for word in task.split()})


def word_tokenizer(
    extra_special_tokens: dict[str, str] | None = None, extra_words: Iterable[str] = ()
) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over LIBERO's vocabulary (lower-cased, punctuation split off).

    Args:
        extra_special_tokens: named special tokens a processor expects as tokenizer attributes
            (e.g. SmolVLM's ``fake_image_token``); each also gets an ``<name>_id`` attribute.
        extra_words: words beyond LIBERO's that a policy's prompt template adds.
    """
    extra_special_tokens = extra_special_tokens or {}
    specials = [*BASE_SPECIAL_TOKENS.values(), *extra_special_tokens.values()]
    punctuation = list(".,;:!?'\"\n")
    words = sorted({*libero_words(), *extra_words})
    vocab = {token: index for index, token in enumerate([*specials, *punctuation, *words])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=BASE_SPECIAL_TOKENS["unk_token"]))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    bos, eos = BASE_SPECIAL_TOKENS["bos_token"], BASE_SPECIAL_TOKENS["eos_token"]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, vocab[bos]), (eos, vocab[eos])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=512,
        extra_special_tokens=extra_special_tokens,
        additional_special_tokens=list(extra_special_tokens.values()),
        **BASE_SPECIAL_TOKENS,
    )


def write_tiny_smolvlm(directory: Path, image_size: int = 512) -> Path:
    """Write a tiny SmolVLM (config + processor) that ``SmolVLMWithExpertModel`` loads offline.

    The module tree and classes are SmolVLM's (SigLIP vision tower, pixel-shuffle connector,
    Llama text model); widths and depths are tiny. With the default 512 x 512 input, 16 x 16
    patches and a scale factor of 4, each camera gives 64 image tokens, as in SmolVLA.

    Returns:
        ``directory``, to use as ``SmolVLAConfig.vlm_model_name``.
    """
    from transformers import (
        SmolVLMConfig,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )

    directory = Path(directory)
    tokenizer = word_tokenizer(SMOLVLM_SPECIAL_TOKENS)
    image_token_id = tokenizer.convert_tokens_to_ids(SMOLVLM_SPECIAL_TOKENS["image_token"])
    config = SmolVLMConfig(
        image_token_id=image_token_id,
        scale_factor=4,
        vision_config={
            "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
            "image_size": image_size, "patch_size": 16,
        },
        text_config={
            "model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": len(tokenizer),
            "pad_token_id": tokenizer.pad_token_id,
        },
    )  # fmt: skip
    config.save_pretrained(directory)
    image_seq_len = (image_size // 16) ** 2 // config.scale_factor**2
    processor = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(
            size={"longest_edge": image_size}, max_image_size={"longest_edge": image_size}
        ),
        tokenizer=tokenizer,
        video_processor=SmolVLMVideoProcessor(),
        image_seq_len=image_seq_len,
    )
    processor.save_pretrained(directory)
    return directory


def write_word_tokenizer(directory: Path, extra_words: Iterable[str] = ()) -> PreTrainedTokenizerFast:
    """Save :func:`word_tokenizer` to ``directory``, loadable with ``AutoTokenizer`` (X-VLA's ``tokenizer_name``)."""
    tokenizer = word_tokenizer(extra_words=extra_words)
    tokenizer.save_pretrained(directory)
    return tokenizer


def tiny_florence_config(tokenizer: PreTrainedTokenizerFast, width: int = 32) -> dict:
    """A tiny Florence-2 config for X-VLA, in transformers' native format (``XVLAConfig.florence_config``).

    DaViT with strides (4, 2, 2, 2) on 256 x 256 gives an 8 x 8 map: 64 spatial tokens and one
    temporal token per camera. The vision ``projection_dim`` must equal the BART ``d_model``:
    image tokens are concatenated with the text embeddings.
    """
    special_ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    return {
        "vision_config": {
            "embed_dim": [8, 16, 16, width], "num_heads": [1, 2, 2, 4], "num_groups": [1, 2, 2, 4],
            "depths": [1, 1, 1, 1], "window_size": 4, "projection_dim": width, "drop_path_rate": 0.0,
        },
        "text_config": {
            "vocab_size": len(tokenizer), "d_model": width, "encoder_layers": 2, "decoder_layers": 1,
            "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 64,
            "decoder_ffn_dim": 64, "max_position_embeddings": 256, "dropout": 0.0,
            "decoder_start_token_id": tokenizer.eos_token_id, **special_ids,
        },
        **special_ids,
    }  # fmt: skip


QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# Qwen3-VL's chat template, trimmed to what GR00T's processor renders: one
# <|vision_start|><|image_pad|><|vision_end|> per image, which the processor expands to one
# <|image_pad|> per merged patch.
QWEN3_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def byte_level_bpe_tokenizer(
    vocab_size: int = 600, padding_side: str = "right", extra_texts: Iterable[str] = ()
) -> Qwen2TokenizerFast:
    """A Qwen2 byte-level BPE tokenizer trained on LIBERO's task descriptions, with Qwen3-VL's special tokens.

    Any text tokenizes (byte-level); LIBERO words mostly become single tokens, and so do the words of
    ``extra_texts`` (a prompt template a policy writes around the instruction), trained on too.
    ``padding_side`` is saved with it.
    """
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(QWEN_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(
        [*libero_task_descriptions(), "Perform the task.", "user assistant", *extra_texts], trainer
    )
    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=backend,
        unk_token=None,
        bos_token=None,
        pad_token=QWEN_SPECIAL_TOKENS[0],
        eos_token="<|im_end|>",
        model_max_length=4096,
        padding_side=padding_side,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS[1:])})
    tokenizer.chat_template = QWEN3_VL_CHAT_TEMPLATE
    return tokenizer


def _write_qwen_vl_processor(
    directory: Path,
    processor_class,
    video_processor_class,
    patch_size: int,
    tokenizer: Qwen2TokenizerFast,
    max_pixels: int = 512 * 512,
) -> dict[str, int]:
    """Save a Qwen-VL processor and ``tokenizer`` with its own chat template.

    Images and videos are resized to at most ``max_pixels`` pixels, cut into ``patch_size`` patches,
    merged 2 x 2, temporal patch 2, normalised to [-1, 1].

    Returns:
        The ids of :data:`QWEN_SPECIAL_TOKENS`.
    """
    from transformers import Qwen2VLImageProcessor

    geometry = {"patch_size": patch_size, "temporal_patch_size": 2, "merge_size": 2}
    pixels = {
        "size": {"shortest_edge": 64 * 64, "longest_edge": max_pixels},
        "image_mean": [0.5] * 3,
        "image_std": [0.5] * 3,
    }
    processor_class(
        image_processor=Qwen2VLImageProcessor(**geometry, **pixels),
        tokenizer=tokenizer,
        video_processor=video_processor_class(**geometry, **pixels),
        chat_template=QWEN3_VL_CHAT_TEMPLATE,
    ).save_pretrained(directory)
    tokenizer.save_pretrained(directory)  # GR00T reads the tokenizer's own chat template
    return {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_SPECIAL_TOKENS}


def _qwen_vl_config(
    ids: dict[str, int],
    vocab_size: int,
    pad_token_id: int,
    eos_token_id: int,
    width: int,
    n_layers: int,
    rope: dict,
) -> dict:
    """The parts of a tiny Qwen-VL config that Qwen2.5-VL and Qwen3-VL share: token ids and the text model.

    Four heads of 16: the rotary sections of ``rope`` sum to 16 / 2.
    """
    return {
        "image_token_id": ids["<|image_pad|>"], "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"], "vision_end_token_id": ids["<|vision_end|>"],
        "tie_word_embeddings": True,
        "text_config": {
            "vocab_size": vocab_size, "hidden_size": width, "intermediate_size": 2 * width,
            "num_hidden_layers": n_layers, "num_attention_heads": 4, "num_key_value_heads": 2,
            "head_dim": 16, "max_position_embeddings": 4096, "tie_word_embeddings": True,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, **rope},
            "pad_token_id": pad_token_id, "bos_token_id": None, "eos_token_id": eos_token_id,
        },
    }  # fmt: skip


def write_tiny_qwen3_vl(directory: Path, width: int = 64, n_layers: int = 3, weights: bool = False) -> Path:
    """Write a tiny Qwen3-VL (config, tokenizer, image and video processors) that GR00T N1.7 loads offline.

    The module tree and classes are Qwen3-VL's; widths and depths are tiny. Images keep
    Qwen3-VL's geometry (patch 16, spatial merge 2, temporal patch 2), with one deepstack
    injection after text layer 0.

    Args:
        directory: where to write.
        width: the text width, which is GR00T's ``backbone_embedding_dim`` (N1.7 has no
            projection between the backbone and the action head).
        n_layers: text decoder layers (GR00T keeps those up to its ``select_layer``).
        weights: also write random weights of a ``Qwen3VLForConditionalGeneration``, for a model
            that loads them with ``from_pretrained`` (VLA-JEPA); GR00T builds its backbone from the
            config alone.

    Returns:
        ``directory``, absolute: the base checkpoint's ``model_name``.
    """
    from transformers import (
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    directory = Path(directory).resolve()
    tokenizer = byte_level_bpe_tokenizer()
    ids = _write_qwen_vl_processor(directory, Qwen3VLProcessor, Qwen3VLVideoProcessor, 16, tokenizer)
    # The rotary sections sum to head_dim / 2, as Cosmos-Reason2's [24, 20, 20] do to 128 / 2.
    rope = {"rope_theta": 5000000.0, "mrope_section": [4, 2, 2], "mrope_interleaved": True}
    config = Qwen3VLConfig(
        **_qwen_vl_config(ids, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, width, n_layers, rope),
        vision_config={
            "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
            "num_position_embeddings": 64, "out_hidden_size": width, "patch_size": 16,
            "spatial_merge_size": 2, "temporal_patch_size": 2, "deepstack_visual_indexes": [0],
        },
    )  # fmt: skip
    (Qwen3VLForConditionalGeneration(config) if weights else config).save_pretrained(directory)
    return directory


# Qwen2.5-VL's rotary sections, summing to the tiny head_dim / 2 (:func:`_qwen_vl_config`).
QWEN2_5_VL_ROPE = {"mrope_section": [4, 2, 2]}


def _qwen2_5_vl_vision_config(width: int) -> dict:
    """A tiny Qwen2.5-VL vision tower with Qwen2.5-VL's geometry, merging into ``width``-wide image tokens.

    Patch 14, spatial merge 2, temporal patch 2; window attention (112 px windows) in its first
    block and full attention in its second.
    """
    return {
        "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": width,
        "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
        "fullatt_block_indexes": [1],
    }  # fmt: skip


def write_tiny_qwen2_5_vl(
    directory: Path, extra_tokens: Iterable[str] = (), width: int = 64, n_layers: int = 3
) -> Path:
    """Write a tiny Qwen2.5-VL (weights, config, tokenizer, image and video processors) that EO1 loads offline.

    EO1 loads ``Qwen2_5_VLForConditionalGeneration.from_pretrained`` and the processor from one
    directory (its ``vlm_base``), and its processor adds its own special tokens to the tokenizer
    at run time (processor_eo1.py:178): as Qwen2.5-VL's vocabulary is larger than its
    tokenizer's, the tiny model's covers ``extra_tokens`` beyond the tokenizer's, so the ids the
    processor gives them exist. The vision tower is :func:`_qwen2_5_vl_vision_config`'s.

    Args:
        directory: where to write.
        extra_tokens: tokens a processor adds to the tokenizer (EO1's ``EO1_SPECIAL_TOKENS``).
        width: the text width, EO1's hidden size.
        n_layers: text decoder layers.

    Returns:
        ``directory``, absolute: EO1's ``vlm_base``.
    """
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLVideoProcessor,
    )

    directory = Path(directory).resolve()
    tokenizer = byte_level_bpe_tokenizer()
    ids = _write_qwen_vl_processor(directory, Qwen2_5_VLProcessor, Qwen2VLVideoProcessor, 14, tokenizer)
    vocab_size = len(tokenizer) + len(list(extra_tokens))
    config = _qwen_vl_config(
        ids, vocab_size, tokenizer.pad_token_id, tokenizer.eos_token_id, width, n_layers, QWEN2_5_VL_ROPE
    )
    Qwen2_5_VLForConditionalGeneration(
        Qwen2_5_VLConfig(**config, vision_config=_qwen2_5_vl_vision_config(width))
    ).save_pretrained(directory)
    return directory


# The placeholders of Wall-X's prompt (utils.py:448-530) that its model finds by id (modeling_wall_x.py:559-581):
# the proprioception token, which holds the projected state, and the action tokens, one per step of the chunk.
WALL_X_SPECIAL_TOKENS = ("<|propri|>", "<|action|>")


def write_tiny_wall_x(
    directory: Path, width: int = 64, n_layers: int = 2, action_dim: int = 20, state_dim: int = 20
) -> Path:
    """Write a tiny Wall-X base checkpoint (config, processor, random weights) that ``WallXPolicy`` loads offline.

    ``Qwen2_5_VLMoEForAction.from_pretrained`` reads Wall-X's own ``Qwen2_5_VLConfig``, an
    ``AutoProcessor`` and ``model.safetensors`` from one directory, its ``pretrained_name_or_path``
    (modeling_wall_x.py:372-469). The weights are the real class's, randomly initialised: a
    Qwen2.5-VL whose text decoder layers route each token to one of two expert MLPs by its type
    (prompt tokens to the first, action tokens to the second), and Wall-X's action head. The
    tokenizer is :func:`byte_level_bpe_tokenizer`, trained on Wall-X's prompt template too, with
    :data:`WALL_X_SPECIAL_TOKENS` added, padding on the right; the vision tower is :func:`_qwen2_5_vl_vision_config`'s.

    Args:
        directory: where to write.
        width: the text width (each expert's too).
        n_layers: text decoder layers.
        action_dim: the action head's action width, ``WallXConfig.max_action_dim`` (its ``dof_config``).
        state_dim: its proprioception width, ``WallXConfig.max_state_dim`` (its ``agent_pos_config``).

    Returns:
        ``directory``, absolute: Wall-X's ``pretrained_name_or_path``.
    """
    from lerobot.policies.wall_x.modeling_wall_x import Qwen2_5_VLMoEForAction
    from lerobot.policies.wall_x.qwen_model import Qwen2_5_VLConfig
    from lerobot.policies.wall_x.utils import get_wallx_normal_text
    from transformers import AutoProcessor, Qwen2_5_VLProcessor, Qwen2VLVideoProcessor

    directory = Path(directory).resolve()
    # Trained on Wall-X's own prompt template too, which would otherwise take a token per character or two.
    template, _ = get_wallx_normal_text({"instruction": ""}, action_chunk_size=1, frame_idx=0)
    tokenizer = byte_level_bpe_tokenizer(extra_texts=[template])
    tokenizer.add_special_tokens({"additional_special_tokens": list(WALL_X_SPECIAL_TOKENS)})
    # Wall-X hands the processor 252 x 252 images, which it shrinks to 112 x 112: 16 image tokens a camera.
    ids = _write_qwen_vl_processor(
        directory, Qwen2_5_VLProcessor, Qwen2VLVideoProcessor, 14, tokenizer, max_pixels=112 * 112
    )
    config = _qwen_vl_config(
        ids, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, width, n_layers, QWEN2_5_VL_ROPE
    )
    expert = {"hidden_size": width, "intermediate_size": 2 * width, "hidden_act": "silu"}
    config["text_config"] |= {
        "mlp_moe": True, "num_experts": 2, "experts": [expert, expert], "dim_inputs": (width, width),
        "dof_config": {"action": action_dim},
    }  # fmt: skip
    config = Qwen2_5_VLConfig(
        **config, vision_config=_qwen2_5_vl_vision_config(width), agent_pos_config={"state": state_dim}
    )
    processor = AutoProcessor.from_pretrained(directory)
    Qwen2_5_VLMoEForAction(config, processor=processor).save_pretrained(directory)
    return directory


def write_tiny_clip(directory: Path, image_size: int = 224, width: int = 32) -> Path:
    """Write a tiny CLIP (vision and text towers, word-level tokenizer) that Multi-task DiT loads offline.

    ``CLIPVisionModel.from_pretrained`` and ``CLIPTextModel.from_pretrained`` each read their own
    tower from one ``CLIPModel`` checkpoint, and the preprocessor's ``TokenizerProcessorStep``
    loads the tokenizer from the same directory. With 32 x 32 patches a 224 x 224 crop gives 49
    patch tokens and the CLS token. The text tower's pooled output is the hidden state at the
    first end-of-text token, which :func:`word_tokenizer` appends to every instruction.

    Args:
        directory: where to write; its name must contain ``clip`` (Multi-task DiT checks it).
        image_size: the vision tower's input size (Multi-task DiT's ``image_crop_shape``).
        width: both towers' hidden size.

    Returns:
        ``directory``, absolute: ``vision_encoder_name`` and ``text_encoder_name``.
    """
    from transformers import CLIPConfig, CLIPModel

    directory = Path(directory).resolve()
    tokenizer = write_word_tokenizer(directory)
    towers = {
        "hidden_size": width,
        "intermediate_size": 2 * width,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
    }
    CLIPModel(
        CLIPConfig(
            vision_config={**towers, "image_size": image_size, "patch_size": 32},
            text_config={
                **towers, "vocab_size": len(tokenizer), "max_position_embeddings": 64,
                "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
                "eos_token_id": tokenizer.eos_token_id,
            },
            projection_dim=width,
        )
    ).save_pretrained(directory)  # fmt: skip
    return directory


# InternVL's image placeholders, as EVO1's embedder writes them into its prompt (internvl3_embedder.py:37-39).
INTERNVL_SPECIAL_TOKENS = ("<img>", "</img>", "<IMG_CONTEXT>")


def write_tiny_internvl(directory: Path, image_size: int = 64, width: int = 64, n_layers: int = 3) -> Path:
    """Write a tiny InternVL3 (transformers' native ``InternVLModel``: weights, config, tokenizer) that EVO1 loads offline.

    EVO1's embedder calls ``AutoTokenizer`` and ``AutoModel.from_pretrained`` on ``vlm_model_name``
    and writes the image placeholders into its prompt itself, so no processor is saved. The tower
    sees ``image_size`` x ``image_size`` images (EVO1's ``image_resolution`` must equal it) in 8 x 8
    patches; the CLS token is dropped and the pixel shuffle (downsample ratio 0.5) merges 2 x 2
    patches, so each image is ``(image_size / 16)²`` tokens, the config's ``image_seq_length``
    (16 at 64 x 64). The tokenizer is :func:`byte_level_bpe_tokenizer` with InternVL's
    ``<img>``, ``</img>`` and ``<IMG_CONTEXT>`` added, padding on the right as EVO1 expects
    (its pooled token is the last valid one, internvl3_embedder.py:357-363).

    Args:
        directory: where to write.
        image_size: the vision tower's input size (EVO1's ``image_resolution``).
        width: the Qwen2 text width (EVO1's ``embed_dim``).
        n_layers: text decoder layers (EVO1 keeps the first ``vlm_num_layers``).

    Returns:
        ``directory``, absolute: EVO1's ``vlm_model_name``.
    """
    from transformers import InternVLConfig, InternVLModel

    directory = Path(directory).resolve()
    tokenizer = byte_level_bpe_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": list(INTERNVL_SPECIAL_TOKENS)})
    tokenizer.padding_side = "right"
    tokenizer.save_pretrained(directory)
    patch_size = 8
    InternVLModel(
        InternVLConfig(
            image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
            image_seq_length=(image_size // patch_size // 2) ** 2,
            vision_config={
                "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                "image_size": image_size, "patch_size": patch_size,
            },
            text_config={
                "model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": width,
                "intermediate_size": 2 * width, "num_hidden_layers": n_layers, "num_attention_heads": 4,
                "num_key_value_heads": 2, "max_position_embeddings": 1024, "pad_token_id": tokenizer.pad_token_id,
                "bos_token_id": None, "eos_token_id": tokenizer.eos_token_id,
            },
        )
    ).save_pretrained(directory)  # fmt: skip
    return directory


def molmoact2_special_tokens() -> list[str]:
    """The tokens MolmoAct2's processor and prompt need as single tokens, in the order their ids are given.

    The image tokens its processor writes (``IMAGE_TOKENS``) and the image and video placeholders, the
    prompt's role markers, the action, state, setup and control markers (processor_molmoact2.py:138-148),
    and one ``<state_N>`` token per state bin (``num_state_tokens``, 256 by default).
    """
    from lerobot.policies.molmoact2 import processor_molmoact2 as molmo
    from lerobot.policies.molmoact2.molmoact2_hf_model import processing_molmoact2 as processing

    markers = [
        molmo.ACTION_OUTPUT_TOKEN, molmo.ACTION_START_TOKEN, molmo.ACTION_END_TOKEN, molmo.STATE_START_TOKEN,
        molmo.STATE_END_TOKEN, molmo.SETUP_START_TOKEN, molmo.SETUP_END_TOKEN, molmo.CONTROL_START_TOKEN,
        molmo.CONTROL_END_TOKEN,
    ]  # fmt: skip
    states = [
        f"{molmo.STATE_TOKEN_PREFIX}{index}>" for index in range(molmo.MolmoAct2Config.num_state_tokens)
    ]
    placeholders = [processing.IMAGE_PROMPT, processing.VIDEO_PROMPT]
    return [*processing.IMAGE_TOKENS, *placeholders, *markers, *states]


def write_tiny_molmoact2(directory: Path, image_size: int = 56, width: int = 32, n_layers: int = 2) -> Path:
    """Write a tiny MolmoAct2 checkpoint (weights, config, tokenizer, processor config) that LeRobot loads offline.

    LeRobot's MolmoAct2 reads everything from one directory, its ``checkpoint_path``
    (modeling_molmoact2.py:69-93, 551-606; processor_molmoact2.py:229-270): the model's config, its
    weights as ``model.safetensors`` (checked key by key against the model), ``processor_config.json``
    and the tokenizer. The model is LeRobot's own ``MolmoAct2ForConditionalGeneration`` with random
    weights: a one-layer SigLIP-style tower on ``image_size`` x ``image_size`` images in 14 x 14
    patches, pooled 2 x 2 into ``(image_size / 28)²`` tokens per camera (4 at 56 x 56, one crop:
    ``crop_mode="resize"``), a ``n_layers``-layer text model of width ``width`` and the action expert
    with one block per text layer, as MolmoAct2 requires. ``max_action_dim`` is 32, as LeRobot checks.
    The tokenizer is :func:`byte_level_bpe_tokenizer` with :func:`molmoact2_special_tokens`, padding on
    the left as MolmoAct2's processor expects (its ``insert_bos`` finds each row's first valid token by
    the mask and, with right padding, would mark the padding after it valid too); its chat template (``chat_template.jinja``, Qwen3-VL's trimmed one) is loaded but never
    rendered, since LeRobot writes MolmoAct2's prompt itself (``_build_robot_text``).

    Returns:
        ``directory``, absolute: MolmoAct2's ``checkpoint_path``.
    """
    from lerobot.policies.molmoact2.molmoact2_hf_model import configuration_molmoact2 as hf
    from lerobot.policies.molmoact2.molmoact2_hf_model.modeling_molmoact2 import (
        MolmoAct2ForConditionalGeneration,
    )
    from lerobot.policies.molmoact2.processor_molmoact2 import ACTION_END_TOKEN, STATE_TOKEN_PREFIX

    directory = Path(directory).resolve()
    tokenizer = byte_level_bpe_tokenizer(padding_side="left")
    tokenizer.add_special_tokens({"additional_special_tokens": molmoact2_special_tokens()})
    tokenizer.save_pretrained(directory)
    ids = tokenizer.convert_tokens_to_ids
    patch_size, heads = 14, 2
    vision = {"num_attention_heads": heads, "num_key_value_heads": heads, "head_dim": width // heads}
    config = hf.MolmoAct2Config(
        vit_config=hf.MolmoAct2VitConfig(
            hidden_size=width, intermediate_size=2 * width, num_hidden_layers=1, **vision,
            image_default_input_size=(image_size, image_size), image_patch_size=patch_size,
            image_num_pos=(image_size // patch_size) ** 2,
        ),
        adapter_config=hf.MolmoAct2AdapterConfig(
            vit_layers=(-1,), hidden_size=width, intermediate_size=2 * width, text_hidden_size=width, **vision,
        ),
        text_config=hf.MolmoAct2TextConfig(
            hidden_size=width, num_attention_heads=heads, num_key_value_heads=1, head_dim=width // heads,
            vocab_size=len(tokenizer), additional_vocab_size=None, num_hidden_layers=n_layers,
            intermediate_size=2 * width, max_position_embeddings=1024,
        ),
        action_expert_config=hf.MolmoAct2ActionExpertConfig(
            hidden_size=width, num_layers=n_layers, num_heads=heads, ffn_multiple_of=16, timestep_embed_dim=16,
        ),
        image_start_token_id=ids("<im_start>"), low_res_image_start_token_id=ids("<low_res_im_start>"),
        image_end_token_id=ids("<im_end>"), image_low_res_id=ids("<im_low>"), image_patch_id=ids("<im_patch>"),
        image_col_id=ids("<im_col>"), frame_start_token_id=ids("<frame_start>"), frame_end_token_id=ids("<frame_end>"),
        action_mode="continuous", max_action_dim=32, flow_matching_num_steps=2,
        action_output_token_id=ids("<action_output>"), action_start_token_id=ids("<action_start>"),
        action_end_token_id=ids(ACTION_END_TOKEN), state_start_token_id=ids("<state_start>"),
        state_end_token_id=ids("<state_end>"), state_token_start_id=ids(f"{STATE_TOKEN_PREFIX}0>"),
        num_state_tokens=256, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    MolmoAct2ForConditionalGeneration(config).save_pretrained(directory)
    image_processor = {
        "size": {"height": image_size, "width": image_size}, "crop_mode": "resize", "max_crops": 1,
        "patch_size": patch_size, "pooling_size": [2, 2], "image_mean": [0.5] * 3, "image_std": [0.5] * 3,
    }  # fmt: skip
    processor_config = {
        "image_processor": image_processor,
        "video_processor": {"size": {"height": image_size, "width": image_size}, "patch_size": patch_size},
        "image_use_col_tokens": True,
        "use_single_crop_col_tokens": None,
        "use_single_crop_start_token": True,
    }
    (directory / "processor_config.json").write_text(json.dumps(processor_config, indent=2))
    return directory


# Wan2.2's VAE latents: 48 channels, which LingBot-VA (modeling_lingbot_va.py:756) and FastWAM
# (adapters.py:38) hard-code.
WAN_LATENT_CHANNELS = 48


def write_tiny_wan(directory: Path, text_width: int = 16, extra_words: Iterable[str] = ()) -> Path:
    """Write a tiny Wan2.2 base in diffusers' layout (VAE, UMT5 text encoder, T5 tokenizer).

    Both world-action models load their frozen parts from one such folder:
    ``AutoencoderKLWan`` from ``vae/``, ``UMT5EncoderModel`` from ``text_encoder/`` and the
    tokenizer from ``tokenizer/``. LingBot-VA reads it at ``wan_pretrained_path`` on its first
    inference (modeling_lingbot_va.py:107-138); FastWAM names it by ``text_encoder_model_id`` and
    ``tokenizer_model_id`` (the folder and its ``tokenizer/``), and its VAE, hard-coded to the Hub's
    ``Wan-AI/Wan2.2-TI2V-5B-Diffusers``, comes from the same folder under the ``fastwam_vae_repo``
    fix. The VAE is Wan2.2's layout (residual blocks, 2 x 2 input patches, 16x spatial and 4x
    temporal compression, 48 latent channels) with 8 base channels; its latents are standardised
    with mean 0 and standard deviation 1. The tokenizer is T5's, as Wan's UMT5 is (a unigram model
    over SentencePiece pieces, ``</s>`` appended) with LIBERO's words as its pieces; the models
    have random weights.

    Args:
        directory: where to write.
        text_width: the UMT5 width (LingBot-VA's and FastWAM's ``text_dim``).
        extra_words: words beyond LIBERO's that a policy's prompt template adds.

    Returns:
        ``directory``, absolute.
    """
    from diffusers import AutoencoderKLWan
    from transformers import T5TokenizerFast, UMT5Config, UMT5EncoderModel

    directory = Path(directory).resolve()
    # T5's first pieces, then one piece per word (SentencePiece marks a word's start with "▁").
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    words = sorted({*libero_words(), *extra_words})
    tokenizer = T5TokenizerFast(vocab=pieces + [(f"▁{word}", -1.0) for word in words], extra_ids=0)
    tokenizer.save_pretrained(directory / "tokenizer")
    UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer), d_model=text_width, d_kv=8, d_ff=2 * text_width, num_layers=1,
            num_heads=2, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        )
    ).save_pretrained(directory / "text_encoder")  # fmt: skip
    AutoencoderKLWan(
        base_dim=8, decoder_base_dim=8, z_dim=WAN_LATENT_CHANNELS, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
        temperal_downsample=[False, True, True], is_residual=True, in_channels=12, out_channels=12, patch_size=2,
        scale_factor_spatial=16, latents_mean=[0.0] * WAN_LATENT_CHANNELS, latents_std=[1.0] * WAN_LATENT_CHANNELS,
    ).save_pretrained(directory / "vae")  # fmt: skip
    return directory
