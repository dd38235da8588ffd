"""Run-time fixes for defects of lerobot 0.4.4 that stand between a policy and its feat A.

Each fix lives in its own module with a ``PATCH``, the upstream-ready diff in ``patches/``.

* Policy fixes (:data:`RUNTIME_FIXES`) have ``is_present(policy)`` (tries the defect, so an
  upstream release that fixed it is left alone) and ``apply(policy)`` (changes that policy
  instance only, never LeRobot's classes); :func:`apply_runtime_fixes` applies those whose
  defect is present.
* Checkpoint fixes act before loading: :func:`stale_config_keys.without_stale_keys`,
  :func:`action_tokenizer_config.preprocessor_overrides`, or on saving:
  :func:`groot_processor_assets.record_assets_repo`.
* Construction fixes (:func:`construction_fixes`) are active while a block builds or loads
  policies, for defects that stop a policy from being built at all.
* Import-time fixes act before LeRobot's modules are imported: :mod:`transformers_fork`
  (applied by ``lerobot_cknna/__init__.py``).
"""

import contextlib
import logging
from collections.abc import Iterator

from lerobot_cknna.fixes import (
    direct_forward_calls,
    eagle_flash_attention,
    sac_policy_kwargs,
    tdmpc_image_key,
)

RUNTIME_FIXES = (tdmpc_image_key, direct_forward_calls)


def apply_runtime_fixes(policy) -> list[str]:
    """Apply every fix whose defect this policy shows; returns the names of those applied."""
    applied = []
    for fix in RUNTIME_FIXES:
        if fix.is_present(policy):
            fix.apply(policy)
            logging.warning(
                f"Applied run-time fix for a lerobot 0.4.4 defect: {fix.DESCRIPTION} ({fix.PATCH})"
            )
            applied.append(fix.__name__.rsplit(".", 1)[-1])
    return applied


@contextlib.contextmanager
def construction_fixes() -> Iterator[None]:
    """While the block runs, policies whose construction a LeRobot defect breaks can be built.

    Wrap every place that builds or loads a policy (``make_policy``, ``from_pretrained``, a
    policy class called on a config). Each fix acts only where its defect is present.
    """
    with eagle_flash_attention.sdpa_vision_tower(), sac_policy_kwargs.sac_accepts_dataset_arguments():
        yield
