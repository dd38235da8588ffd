"""Pi0, Pi0.5 and Pi0-FAST run only with openpi's patched transformers, in a second environment.

LeRobot 0.4.4 builds these policies only when ``transformers.models.siglip.check`` exists
(PyPI's ``transformers-openpi``). That distribution installs the ``transformers`` import
name, so it cannot share an environment with the transformers the other VLAs need:
``make setup-pi`` builds ``.venv-pi/`` for them.
"""

import importlib.util

PI_FAMILY = ("pi0", "pi05", "pi0_fast")
PI_ENV_DIR = ".venv-pi"
PI_ENV_SETUP_COMMAND = "make setup-pi"


class PiEnvironmentError(ValueError):
    """A Pi-family policy was asked for in an environment without openpi's transformers."""


def has_openpi_transformers() -> bool:
    """Whether this environment has openpi's patched transformers (what Pi-family models check for)."""
    return importlib.util.find_spec("transformers.models.siglip.check") is not None


def require_pi_environment(policy_type: str) -> None:
    """Refuse a Pi-family ``policy_type`` here, saying how to build and use the environment it needs.

    Raises:
        PiEnvironmentError: ``policy_type`` is Pi0, Pi0.5 or Pi0-FAST and this environment lacks
            openpi's transformers.
    """
    if policy_type in PI_FAMILY and not has_openpi_transformers():
        raise PiEnvironmentError(
            f"Policy type {policy_type!r} needs openpi's patched transformers (transformers-openpi), "
            "which cannot share an environment with the transformers installed here. Build the second "
            f"environment with `{PI_ENV_SETUP_COMMAND}` (it creates {PI_ENV_DIR}/), then run the same "
            f"command from it, e.g. `{PI_ENV_DIR}/bin/lerobot-cknna --policy.type={policy_type} ...`."
        )
