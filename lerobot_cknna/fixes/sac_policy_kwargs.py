"""SAC cannot be built or loaded for a dataset: ``SACPolicy.__init__`` takes only the config.

LeRobot 0.4.4's ``make_policy`` passes ``dataset_stats`` and ``dataset_meta`` to every policy
class whenever it is given a dataset's metadata (policies/factory.py:475-480, for SARM), both to
the constructor and, through ``from_pretrained``, to a saved checkpoint's. ``SACPolicy.__init__``
(sac/modeling_sac.py:45) accepts neither, so replaying any SAC (``--policy.type=sac`` or
``--policy.path=DIR``) on a dataset stops with ``TypeError``. The fix is active while a block
builds policies: SAC's constructor drops those two arguments (SAC normalizes through its
processors; it never used them).
"""

import contextlib
import functools
import inspect
import logging
from collections.abc import Iterator

DESCRIPTION = "SACPolicy ignores the dataset_stats / dataset_meta that make_policy passes every policy"
PATCH = "patches/sac_policy_kwargs.diff"
DATASET_ARGUMENTS = ("dataset_stats", "dataset_meta")


def is_present() -> bool:
    """Whether ``SACPolicy`` would refuse the dataset arguments ``make_policy`` hands it."""
    # Imported here: importing LeRobot's policies before lerobot_cknna's import-time fixes breaks .venv-pi/.
    from lerobot.policies.sac.modeling_sac import SACPolicy

    parameters = inspect.signature(SACPolicy.__init__).parameters.values()
    takes_any = any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters)
    names = {parameter.name for parameter in parameters}
    return not takes_any and not set(DATASET_ARGUMENTS) <= names


@contextlib.contextmanager
def sac_accepts_dataset_arguments() -> Iterator[None]:
    """While the block runs, ``SACPolicy(config, dataset_stats=..., dataset_meta=...)`` builds (if needed)."""
    if not is_present():
        yield
        return
    from lerobot.policies.sac.modeling_sac import SACPolicy

    original_init = SACPolicy.__init__

    @functools.wraps(original_init)
    def init(self, config=None, **kwargs):
        dropped = [name for name in DATASET_ARGUMENTS if kwargs.pop(name, None) is not None]
        if dropped:
            logging.warning(f"Applied run-time fix for a lerobot 0.4.4 defect: {DESCRIPTION} ({PATCH})")
        original_init(self, config, **kwargs)

    SACPolicy.__init__ = init
    try:
        yield
    finally:
        SACPolicy.__init__ = original_init
