"""Local stand-ins for the Hub assets that VLA policies load by name: tokenizers and VLM configs.

SmolVLA calls ``AutoConfig`` / ``AutoProcessor`` on ``vlm_model_name`` and X-VLA's processor
loads a tokenizer by name. Pointing those names at a directory written here lets the real
loading code run with no network. The tokenizer is a word-level vocabulary of every word in
LIBERO's task descriptions (read from hf-libero's BDDL file names, without importing
LIBERO), so every LIBERO instruction tokenizes without unknown words.
"""

import importlib.util
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

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
