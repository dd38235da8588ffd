"""LeRobot reports openpi's transformers missing, so every Pi-family class binds its models to ``None``.

``lerobot.utils.import_utils`` sets ``_transformers_available`` from
``importlib.metadata.version("transformers")``: it looks up a *distribution* named
transformers. PyPI's openpi fork installs the ``transformers`` import package as the
distribution ``transformers-openpi``, so the flag is False although ``import transformers``
works, and ``modeling_pi0`` / ``modeling_pi05`` / ``modeling_pi0_fast`` (and the tokenizer
processor steps) bind ``PaliGemmaForConditionalGeneration``, ``AutoTokenizer``, ... to
``None``: building a policy fails with ``'NoneType' object is not callable``.

The flag is copied by each module when it is imported, so the fix has to run before them:
:mod:`lerobot_cknna` applies it when it is imported.
"""

import importlib.metadata
import sys

from lerobot.utils import import_utils

DESCRIPTION = (
    "transformers installed under another distribution name (transformers-openpi) counted as missing"
)
PATCH = "patches/transformers_fork.diff"
# LeRobot modules that copy the flag at import time (`from lerobot.utils.import_utils import ...`).
FLAG_READERS = (
    "lerobot.processor.tokenizer_processor",
    "lerobot.policies.pi0.modeling_pi0",
    "lerobot.policies.pi05.modeling_pi05",
    "lerobot.policies.pi0_fast.modeling_pi0_fast",
)


def is_present() -> bool:
    """Whether ``transformers`` is importable from some distribution but LeRobot counts it missing."""
    return not import_utils._transformers_available and bool(
        importlib.metadata.packages_distributions().get("transformers")
    )


def apply() -> None:
    """Count the fork's transformers as available, before any LeRobot module reads the flag.

    Raises:
        RuntimeError: a module that reads the flag was imported first (import lerobot_cknna first).
    """
    too_late = [name for name in FLAG_READERS if name in sys.modules]
    if too_late:
        raise RuntimeError(
            f"{', '.join(too_late)} imported before lerobot_cknna, with transformers counted missing "
            f"({DESCRIPTION}); import lerobot_cknna first."
        )
    import_utils._transformers_available = True
