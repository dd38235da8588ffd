"""Tiny offline builds of LeRobot's Pi0, Pi0.5 and Pi0-FAST: the real classes at a few hundred thousand parameters.

LeRobot builds the Pi models from hard-coded sizes, so :func:`tiny_pi_build` swaps a few
names in LeRobot's modules while a tiny policy (or its processors) is built or loaded, and
puts them back after, so that a real checkpoint loaded later in the same process gets the real
sizes:

* ``get_gemma_config``: a two-entry variant table (``gemma_300m``, ``gemma_2b``; the configs
  accept no other name), answered with tiny sizes under those names;
* ``PaliGemmaForConditionalGenerationWithPiGemma`` and ``PiGemmaForCausalLM``: LeRobot writes
  full sizes into the PaliGemma config after making it (a 257152-token vocabulary, a
  4304-wide SigLIP MLP, a 2048-wide projection), so the tiny build shrinks that config at the
  construction call and then builds the real class from it;
* ``TokenizerProcessorStep`` in the Pi0 and Pi0.5 processors, which hard-code the Hub's
  ``google/paligemma-3b-pt-224``: pointed at a local stand-in. A saved pipeline stores the local
  path, so loading it back needs no swap. Pi0-FAST names both its tokenizers in its config.

The stand-in PaliGemma tokenizer is word-level (LIBERO's words, the Pi prompt words "Task",
"State", "Action", the state bins 0-255), keeps PaliGemma's special-token ids and is filled with
unused tokens to the tiny vocabulary, so every id the model can emit is a token (Pi0-FAST
decodes its ids as text). The FAST action tokenizer is :mod:`lerobot_cknna.testing.fast_action_processor`.
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from lerobot.policies.pi0 import modeling_pi0, processor_pi0
from lerobot.policies.pi0_fast import modeling_pi0_fast
from lerobot.policies.pi05 import modeling_pi05, processor_pi05
from lerobot.policies.pi_gemma import PaliGemmaForConditionalGenerationWithPiGemma, PiGemmaForCausalLM
from lerobot.processor import TokenizerProcessorStep
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from lerobot_cknna.testing.fast_action_processor import UniversalActionProcessor
from lerobot_cknna.testing.tiny_assets import libero_task_descriptions
from lerobot_cknna.utils.patching import patched

PALIGEMMA_TOKENIZER_ID = "google/paligemma-3b-pt-224"
# PaliGemma's ids for these: pad 0, eos 1, bos 2, unk 3.
PALIGEMMA_SPECIAL_TOKENS = {
    "pad_token": "<pad>",
    "eos_token": "<eos>",
    "bos_token": "<bos>",
    "unk_token": "<unk>",
}
# Pi0.5 / Pi0-FAST prompts read "Task: ..., State: <one bin 0-255 per state dim>;\nAction: ".
PROMPT_WORDS = ["Task", "State", "Action", *map(str, range(256))]
VOCAB_SIZE = 1024  # the tiny PaliGemma vocabulary, = the stand-in tokenizer's size
# Joint attention concatenates PaliGemma's and the expert's heads, so both share depth, heads and
# head_dim; the training path reshapes to 8 heads.
DEPTH, HEADS, KV_HEADS, HEAD_DIM = 2, 8, 1, 8
WIDTHS = {"gemma_2b": (64, 128), "gemma_300m": (32, 64)}  # (width, mlp_dim): PaliGemma, action expert
# A one-layer SigLIP: 224 x 224 images in 56 x 56 patches, 16 tokens per camera.
VISION = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
          "patch_size": 56}  # fmt: skip
_MODELING = (modeling_pi0, modeling_pi05, modeling_pi0_fast)


def tiny_gemma_config(variant: str) -> modeling_pi0.GemmaConfig:
    """Tiny sizes under the two variant names LeRobot accepts."""
    width, mlp_dim = WIDTHS[variant]
    return modeling_pi0.GemmaConfig(
        width=width, depth=DEPTH, mlp_dim=mlp_dim, num_heads=HEADS, num_kv_heads=KV_HEADS, head_dim=HEAD_DIM
    )


def tiny_paligemma(config) -> PaliGemmaForConditionalGenerationWithPiGemma:
    """The real PaliGemma with LeRobot's hard-coded vocabulary, SigLIP and projection sizes made tiny."""
    text, vision = config.text_config, config.vision_config
    text.vocab_size = config.vocab_size = VOCAB_SIZE
    config.hidden_size = config.projection_dim = vision.projection_dim = text.hidden_size
    for name, value in VISION.items():
        setattr(vision, name, value)
    text.num_image_tokens = (vision.image_size // vision.patch_size) ** 2
    return PaliGemmaForConditionalGenerationWithPiGemma(config=config)


def tiny_expert(config) -> PiGemmaForCausalLM:
    """The real Pi0 / Pi0.5 action expert with the tiny vocabulary (its LM head is unused)."""
    config.vocab_size = VOCAB_SIZE
    return PiGemmaForCausalLM(config=config)


def paligemma_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level, case-preserving PaliGemma stand-in of exactly :data:`VOCAB_SIZE` tokens."""
    words = {word for task in libero_task_descriptions() for word in task.split()}
    words |= {word.lower() for word in words} | set(PROMPT_WORDS)
    tokens = [*PALIGEMMA_SPECIAL_TOKENS.values(), *".,;:!?'\"|-_()", *sorted(words)]
    tokens += [f"<unused{index}>" for index in range(VOCAB_SIZE - len(tokens))]
    vocab = {token: index for index, token in enumerate(tokens)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=PALIGEMMA_SPECIAL_TOKENS["unk_token"]))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    # transformers rebuilds the post-processor from these flags; Pi0-FAST reloads the tokenizer
    # with add_eos_token=True, add_bos_token=False.
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=512,
        add_bos_token=True,
        add_eos_token=False,
        **PALIGEMMA_SPECIAL_TOKENS,
    )


def write_paligemma_tokenizer(directory: Path) -> Path:
    """Save :func:`paligemma_tokenizer` to ``directory`` (loadable with ``AutoTokenizer``)."""
    paligemma_tokenizer().save_pretrained(directory)
    return Path(directory)


def write_fast_action_tokenizer(directory: Path, chunk_size: int, action_dim: int, seed: int = 0) -> Path:
    """Fit and save a FAST action tokenizer that ``AutoProcessor`` loads from ``directory``.

    The BPE is fitted on smooth random-walk chunks in normalized action units; the saved
    directory holds the processor's code (:mod:`lerobot_cknna.testing.fast_action_processor`) and
    names it in ``auto_map``, as the Hub's FAST tokenizer does.
    """
    steps = np.random.default_rng(seed).normal(scale=0.1, size=(2000, chunk_size, action_dim))
    processor = UniversalActionProcessor.fit(np.cumsum(steps, axis=1), scale=10, vocab_size=256)
    UniversalActionProcessor.register_for_auto_class("AutoProcessor")
    processor.save_pretrained(directory)
    return Path(directory)


@contextlib.contextmanager
def tiny_pi_build(assets: Path) -> Iterator[None]:
    """Within this block, LeRobot's Pi-family classes build tiny models and their processors a local tokenizer.

    Args:
        assets: directory holding (or receiving) the local PaliGemma tokenizer.
    """
    tokenizer_dir = Path(assets).resolve() / "paligemma_tokenizer"
    if not (tokenizer_dir / "tokenizer.json").exists():
        write_paligemma_tokenizer(tokenizer_dir)

    def local_tokenizer_step(**kwargs):
        if kwargs.get("tokenizer_name") == PALIGEMMA_TOKENIZER_ID:
            kwargs["tokenizer_name"] = str(tokenizer_dir)
        return TokenizerProcessorStep(**kwargs)

    with contextlib.ExitStack() as stack:
        for module in _MODELING:
            stack.enter_context(patched(module, "get_gemma_config", tiny_gemma_config))
            stack.enter_context(
                patched(module, "PaliGemmaForConditionalGenerationWithPiGemma", tiny_paligemma)
            )
        for module in (modeling_pi0, modeling_pi05):
            stack.enter_context(patched(module, "PiGemmaForCausalLM", tiny_expert))
        for module in (processor_pi0, processor_pi05):
            stack.enter_context(patched(module, "TokenizerProcessorStep", local_tokenizer_step))
        yield
