"""Local stand-ins for the Hub assets that VLA policies load by name: tokenizers and VLM configs.

SmolVLA calls ``AutoConfig`` / ``AutoProcessor`` on ``vlm_model_name`` and X-VLA's processor
loads a tokenizer by name. Pointing those names at a directory written here lets the real
loading code run with no network. The tokenizer is a word-level vocabulary of every word in
LIBERO's task descriptions (read from hf-libero's BDDL file names, without importing
LIBERO), so every LIBERO instruction tokenizes without unknown words. GR00T N1.5's Eagle
processor wants a byte-level BPE (``vocab.json`` + ``merges.txt``): one is trained here on the
same descriptions.
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


def write_word_tokenizer(directory: Path) -> PreTrainedTokenizerFast:
    """Save :func:`word_tokenizer` to ``directory``, loadable with ``AutoTokenizer`` (X-VLA's ``tokenizer_name``)."""
    tokenizer = word_tokenizer()
    tokenizer.save_pretrained(directory)
    return tokenizer


def tiny_florence_config(tokenizer: PreTrainedTokenizerFast, width: int = 32) -> dict:
    """A tiny Florence-2 config for X-VLA (DaViT: 64 patch tokens + 1 pooled token on 256 x 256).

    Florence's ``projection_dim``, the vision projection and the text width must be equal.
    """
    special_ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    return {
        "projection_dim": width, "vocab_size": len(tokenizer),
        "vision_config": {
            "model_type": "davit", "dim_embed": [8, 16, 16, width], "num_heads": [1, 2, 2, 4],
            "num_groups": [1, 2, 2, 4], "depths": [1, 1, 1, 1], "window_size": 4, "projection_dim": width,
            "drop_path_rate": 0.0,
        },
        "text_config": {
            "vocab_size": len(tokenizer), "d_model": width, "encoder_layers": 1, "decoder_layers": 1,
            "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 64,
            "decoder_ffn_dim": 64, "max_position_embeddings": 256, "dropout": 0.0,
            "decoder_start_token_id": tokenizer.eos_token_id, **special_ids,
        },
        **special_ids,
    }  # fmt: skip


EAGLE_SPECIAL_TOKENS = ("<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>")
EAGLE_PAD_TOKEN = "<|endoftext|>"
# Eagle 2.5's chat template: one <image-N> placeholder per image, which the processor expands into
# <img> + tokens_per_tile x <IMG_CONTEXT> + </img>.
EAGLE_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "{% set image_count.value = image_count.value + 1 %}<image-{{ image_count.value }}>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def byte_level_bpe_tokenizer(vocab_size: int = 600) -> Qwen2TokenizerFast:
    """A Qwen2 byte-level BPE tokenizer trained on LIBERO's task descriptions, with Eagle's special tokens.

    Any text tokenizes (byte-level); LIBERO words mostly become single tokens. It saves as
    ``vocab.json`` + ``merges.txt`` + ``added_tokens.json``, the files GR00T's Eagle processor expects.
    """
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EAGLE_PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator([*libero_task_descriptions(), "You are a helpful assistant."], trainer)
    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=backend,
        unk_token=None,
        bos_token=None,
        pad_token=EAGLE_PAD_TOKEN,
        eos_token="<|im_end|>",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(EAGLE_SPECIAL_TOKENS)})
    return tokenizer


def _add_auto_map(path: Path, auto_map: dict[str, str]) -> None:
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "auto_map": auto_map}, indent=2))


def write_tiny_eagle(directory: Path, tile_size: int = 112, patch_size: int = 14) -> Path:
    """Write tiny Eagle 2.5 assets (model config, processor, tokenizer) that GR00T N1.5 loads offline.

    The classes are LeRobot's vendored Eagle 2.5 ones (SigLIP vision tower, pixel-shuffle MLP
    connector, Qwen3 language model); widths and depths are tiny, except the language model's
    width, which GR00T's ``EagleBackbone`` hard-codes to 2048 (``nn.Linear(2048, project_to_dim)``).
    Each camera is one ``tile_size`` tile of ``(tile_size / patch_size)**2 / 4`` image tokens
    (16 by default). The directory holds every file ``ensure_eagle_cache_ready`` would otherwise
    download, plus the vendored code it copies, so nothing is fetched.

    Returns:
        ``directory``, to use as ``GrootConfig.tokenizer_assets_repo`` (an absolute path: LeRobot
        joins it onto ``HF_LEROBOT_HOME``, and joining an absolute path keeps it as it is).
    """
    from lerobot.policies.groot.eagle2_hg_model.configuration_eagle2_5_vl import Eagle25VLConfig
    from lerobot.policies.groot.eagle2_hg_model.image_processing_eagle2_5_vl_fast import (
        Eagle25VLImageProcessorFast,
    )
    from lerobot.policies.groot.eagle2_hg_model.processing_eagle2_5_vl import Eagle25VLProcessor
    from lerobot.policies.groot.groot_n1 import DEFAULT_VENDOR_EAGLE_PATH
    from lerobot.policies.groot.utils import ensure_eagle_cache_ready
    from transformers import GenerationConfig

    directory = Path(directory).resolve()
    tokenizer = byte_level_bpe_tokenizer()
    image_processor = Eagle25VLImageProcessorFast(
        size={"height": tile_size, "width": tile_size},
        min_dynamic_tiles=1,
        max_dynamic_tiles=1,
        use_thumbnail=False,
    )
    tokens_per_tile = (tile_size // patch_size) ** 2 // 4  # pixel shuffle with downsample_ratio 0.5
    processor = Eagle25VLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, tokens_per_tile=tokens_per_tile
    )
    processor.save_pretrained(directory)
    # ensure_eagle_cache_ready looks for chat_template.json (transformers now writes a .jinja file).
    (directory / "chat_template.json").write_text(json.dumps({"chat_template": EAGLE_CHAT_TEMPLATE}))
    _add_auto_map(
        directory / "processor_config.json", {"AutoProcessor": "processing_eagle2_5_vl.Eagle25VLProcessor"}
    )
    _add_auto_map(directory / "preprocessor_config.json", {
        "AutoProcessor": "processing_eagle2_5_vl.Eagle25VLProcessor",
        "AutoImageProcessor": "image_processing_eagle2_5_vl_fast.Eagle25VLImageProcessorFast",
    })  # fmt: skip
    Eagle25VLConfig(
        vision_config={
            "model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "image_size": tile_size, "patch_size": patch_size,
        },
        text_config={
            "architectures": ["Qwen3ForCausalLM"], "hidden_size": 2048, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
            "vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id,
        },
        select_layer=-1, downsample_ratio=0.5, use_pixel_shuffle=True, mlp_connector_layers=2,
        image_token_index=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"), _attn_implementation="sdpa",
        auto_map={
            "AutoConfig": "configuration_eagle2_5_vl.Eagle25VLConfig",
            "AutoModel": "modeling_eagle2_5_vl.Eagle25VLForConditionalGeneration",
        },
    ).save_pretrained(directory)  # fmt: skip
    GenerationConfig().save_pretrained(directory)
    ensure_eagle_cache_ready(DEFAULT_VENDOR_EAGLE_PATH, directory, assets_repo=str(directory))
    return directory
