"""Run-time fixes for defects of lerobot 0.4.4 that stand between a policy and its feat A.

Each fix lives in its own module with a ``PATCH``, the upstream-ready diff in ``patches/``.

* Policy fixes (:data:`RUNTIME_FIXES`) have ``is_present(policy)`` (tries the defect, so an
  upstream release that fixed it is left alone) and ``apply(policy)`` (changes that policy
  instance only, never LeRobot's classes); :func:`apply_runtime_fixes` applies those whose
  defect is present.
* Checkpoint fixes act before loading: :func:`stale_config_keys.without_stale_keys`,
  :func:`action_tokenizer_config.preprocessor_overrides`.
* Import-time fixes act before LeRobot's modules are imported: :mod:`transformers_fork`
  (applied by ``lerobot_cknna/__init__.py``).
"""

import logging

from lerobot_cknna.fixes import direct_forward_calls, tdmpc_image_key

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
