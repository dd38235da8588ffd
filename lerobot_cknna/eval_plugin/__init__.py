r"""One flag turns an existing ``lerobot-eval`` into an alignment study.

Add ``--env.discover_packages_path=lerobot_cknna.eval_plugin`` to a ``lerobot-eval`` command::

    lerobot-eval --policy.path=HuggingFaceVLA/smolvla_libero --env.type=libero \\
        --env.task=libero_spatial --eval.n_episodes=10 \\
        --env.discover_packages_path=lerobot_cknna.eval_plugin

LeRobot imports this package before parsing its flags (its plugin loading). Importing it
makes the running ``lerobot-eval`` capture features during the evaluation and write
``features.safetensors``, ``cknna.json``, ``report.md`` and the plots beside
``eval_info.json``, with the default ``--cknna.*`` settings (use ``lerobot-cknna`` to change
them). It also applies this package's fixes for LeRobot defects (loading old checkpoints,
preprocessors), lets LIBERO run offline from the installed asset packages and picks a MuJoCo
backend that renders. Importing ``lerobot_cknna`` itself changes nothing; only this package does.
"""

import contextlib
import logging
import sys

from lerobot_cknna.compat import fixed_config_loading
from lerobot_cknna.configs.cknna import CKNNARunConfig
from lerobot_cknna.drivers.libero.offline import prepare_libero, select_mujoco_backend
from lerobot_cknna.drivers.simulation import instrument_lerobot_eval

# Kept open for the life of the lerobot-eval process.
_INSTALLED = contextlib.ExitStack()


def _install() -> None:
    prepare_libero()
    try:
        select_mujoco_backend()
    except RuntimeError as error:
        logging.warning(f"lerobot_cknna.eval_plugin: {error}")
    _INSTALLED.enter_context(fixed_config_loading())
    running = [sys.modules.get("lerobot.scripts.lerobot_eval"), sys.modules.get("__main__")]
    for module in {id(m): m for m in running if m is not None and hasattr(m, "eval_policy_all")}.values():
        stack, _ = instrument_lerobot_eval(module, CKNNARunConfig())
        _INSTALLED.enter_context(stack)
        logging.info(f"lerobot_cknna.eval_plugin: capturing features in {module.__name__}.eval_policy_all")


_install()
