"""Tiny offline builds of LeRobot's Pi0, Pi0.5 and Pi0-FAST (needs openpi's transformers, ``.venv-pi/``).

LeRobot hard-codes what a tiny build has to change: the Gemma sizes come from a two-entry
variant table (``get_gemma_config``: ``gemma_300m``, ``gemma_2b``; the configs accept no
other name), the SigLIP tower from ``CONFIG_MAPPING["paligemma"]()`` defaults, and the Pi0 /
Pi0.5 processors load the tokenizer ``google/paligemma-3b-pt-224`` from the Hub.
:func:`tiny_pi_build` swaps those three names in LeRobot's modules while a tiny policy (or
its processors) is built or loaded, and puts everything back after, so a real checkpoint
loaded later in the same process gets the real sizes.

What stays at full size because LeRobot sets it after the swapped config is made: the
PaliGemma vocabulary (257152) and the vision projection (2048, so the Gemma width that
image and text embeddings share is 2048 too): a 0.53B-parameter embedding. Everything
else is tiny (one layer, 2 heads of 16, 16 image tokens per camera).
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from lerobot.policies.pi0 import modeling_pi0, processor_pi0
from lerobot.policies.pi0_fast import modeling_pi0_fast
from lerobot.policies.pi05 import modeling_pi05, processor_pi05
from lerobot.processor import TokenizerProcessorStep
from transformers import PaliGemmaConfig
from transformers.models.auto import CONFIG_MAPPING

from lerobot_cknna.fast_action_processor import UniversalActionProcessor
from lerobot_cknna.tiny_assets import word_tokenizer

PALIGEMMA_TOKENIZER_ID = "google/paligemma-3b-pt-224"
PALIGEMMA_VOCAB_SIZE = 257152  # hard-coded in the models; Pi0-FAST maps action tokens to its last ids
PALIGEMMA_WIDTH = 2048  # = the hard-coded vision projection_dim, which image embeddings come out at
# Pi0.5 / Pi0-FAST prompts read "Task: ..., State: <one bin 0-255 per state dim>;\nAction: ".
PROMPT_WORDS = ["task", "state", "action", *map(str, range(256))]
_MODELING = (modeling_pi0, modeling_pi05, modeling_pi0_fast)
_PROCESSORS = (processor_pi0, processor_pi05)


def tiny_gemma_config(variant: str) -> modeling_pi0.GemmaConfig:
    """Tiny sizes under the two variant names LeRobot accepts (heads must match: layers attend jointly)."""
    width = {"gemma_2b": PALIGEMMA_WIDTH, "gemma_300m": 32}[variant]
    return modeling_pi0.GemmaConfig(
        width=width, depth=1, mlp_dim=64, num_heads=2, num_kv_heads=1, head_dim=16
    )


def tiny_paligemma_config() -> PaliGemmaConfig:
    """PaliGemma with a one-layer SigLIP: 224 x 224 images in 56 x 56 patches, 16 tokens per camera."""
    return PaliGemmaConfig(
        vision_config={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "patch_size": 56}
    )


def write_paligemma_tokenizer(directory: Path) -> Path:
    """Save a word-level stand-in for the PaliGemma tokenizer: LIBERO words plus the Pi prompt words.

    Unused tokens fill it to PaliGemma's vocabulary size, so every id the model can emit
    (Pi0-FAST decodes them as text) is a token.
    """
    n_words = len(word_tokenizer(extra_words=PROMPT_WORDS))
    unused = [f"<unused{index}>" for index in range(PALIGEMMA_VOCAB_SIZE - n_words)]
    word_tokenizer(extra_words=[*PROMPT_WORDS, *unused]).save_pretrained(directory)
    return directory


def write_fast_action_tokenizer(directory: Path, chunk_size: int, action_dim: int, seed: int = 0) -> Path:
    """Fit and save a FAST action tokenizer that ``AutoProcessor`` loads from ``directory``.

    The BPE is fitted on smooth random-walk chunks in normalized action units; the saved
    directory holds the processor's code (:mod:`lerobot_cknna.fast_action_processor`) and
    names it in ``auto_map``, as the Hub's ``physical-intelligence/fast`` does.
    """
    steps = np.random.default_rng(seed).normal(scale=0.1, size=(2000, chunk_size, action_dim))
    processor = UniversalActionProcessor.fit(np.cumsum(steps, axis=1), scale=10, vocab_size=256)
    UniversalActionProcessor.register_for_auto_class("AutoProcessor")
    processor.save_pretrained(directory)
    return directory


@contextlib.contextmanager
def _swapped(owner: object, name: str, value: object) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


@contextlib.contextmanager
def tiny_pi_build(assets: Path) -> Iterator[None]:
    """Within this block, LeRobot's Pi-family classes build tiny models and load the local tokenizer.

    Args:
        assets: directory holding (or receiving) the local PaliGemma tokenizer.
    """
    tokenizer_dir = Path(assets) / "paligemma_tokenizer"
    if not (tokenizer_dir / "tokenizer.json").exists():
        write_paligemma_tokenizer(tokenizer_dir)

    def local_tokenizer_step(**kwargs):
        if kwargs.get("tokenizer_name") == PALIGEMMA_TOKENIZER_ID:
            kwargs["tokenizer_name"] = str(tokenizer_dir)
        return TokenizerProcessorStep(**kwargs)

    tiny_config_mapping = {"paligemma": tiny_paligemma_config, "gemma": CONFIG_MAPPING["gemma"]}
    with contextlib.ExitStack() as stack:
        for module in _MODELING:
            stack.enter_context(_swapped(module, "get_gemma_config", tiny_gemma_config))
            stack.enter_context(_swapped(module, "CONFIG_MAPPING", tiny_config_mapping))
        for module in _PROCESSORS:
            stack.enter_context(_swapped(module, "TokenizerProcessorStep", local_tokenizer_step))
        yield
