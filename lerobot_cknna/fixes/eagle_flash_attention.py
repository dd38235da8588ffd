"""GR00T's vendored Eagle 2.5 model forces FlashAttention 2 on its SigLIP vision tower.

``Eagle25VLForConditionalGeneration.__init__`` sets
``config.vision_config._attn_implementation = "flash_attention_2"`` unconditionally
(eagle2_hg_model/modeling_eagle2_5_vl.py:107), whatever the config asks for. Without the
``flash_attn`` package (any CPU machine; lerobot[groot] needs nvcc to build it) transformers
refuses to build the tower, so no GR00T policy can be created or loaded at all. The fix is
active while a block builds policies: a SigLIP vision tower asked for FlashAttention 2 on a
machine without it is built with SDPA instead (same attention, exact, another kernel).
"""

import contextlib
import functools
import importlib
import inspect
import logging
from collections.abc import Iterator

from transformers.models.siglip import modeling_siglip
from transformers.utils import is_flash_attn_2_available

DESCRIPTION = "Eagle's SigLIP vision tower falls back to SDPA when FlashAttention 2 is not installed"
PATCH = "patches/eagle_flash_attention.diff"
FORCED = 'config.vision_config._attn_implementation = "flash_attention_2"'


@functools.cache
def _eagle_forces_flash_attention() -> bool:
    try:
        module = importlib.import_module("lerobot.policies.groot.eagle2_hg_model.modeling_eagle2_5_vl")
    except ImportError:  # GR00T's needs (peft, ...) are not installed: nothing to build.
        return False
    return FORCED in inspect.getsource(module)


def is_present() -> bool:
    """Whether building GR00T here would fail: Eagle forces FlashAttention 2 and it is not installed."""
    return _eagle_forces_flash_attention() and not is_flash_attn_2_available()


@contextlib.contextmanager
def sdpa_vision_tower() -> Iterator[None]:
    """While the block runs, SigLIP vision towers asked for FlashAttention 2 use SDPA (only if it is missing)."""
    if not is_present():
        yield
        return
    original_init = modeling_siglip.SiglipVisionModel.__init__

    @functools.wraps(original_init)
    def init(self, config, *args, **kwargs):
        if config._attn_implementation == "flash_attention_2":
            config._attn_implementation = "sdpa"
            logging.warning(f"Applied run-time fix for a lerobot 0.4.4 defect: {DESCRIPTION} ({PATCH})")
        original_init(self, config, *args, **kwargs)

    modeling_siglip.SiglipVisionModel.__init__ = init
    try:
        yield
    finally:
        modeling_siglip.SiglipVisionModel.__init__ = original_init
