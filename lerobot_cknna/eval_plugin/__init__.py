r"""One flag turns an existing ``lerobot-eval`` into an alignment study.

Add ``--env.discover_packages_path=lerobot_cknna.eval_plugin`` to a ``lerobot-eval`` command::

    lerobot-eval --policy.path=HuggingFaceVLA/smolvla_libero --env.type=libero \\
        --env.task=libero_spatial --eval.n_episodes=10 --eval.batch_size=2 \\
        --env.discover_packages_path=lerobot_cknna.eval_plugin

LeRobot imports this package before parsing its flags (its plugin loading). Importing it
wraps ``eval_policy_all`` of the running ``lerobot-eval`` so that features are captured
during the evaluation and ``features.safetensors``, ``cknna.json``, ``report.md`` and the
plots are written beside ``eval_info.json``, with the default ``--cknna.*`` settings (use
``lerobot-cknna`` to change them). It also lets LIBERO run offline from the installed asset
packages and picks a MuJoCo backend that renders. Importing ``lerobot_cknna`` itself
changes nothing; only this package does.
"""

import logging
import sys

from lerobot_cknna.configs.pipeline import CKNNARunConfig
from lerobot_cknna.libero_offline import prepare_libero, select_mujoco_backend
from lerobot_cknna.simulation import instrument_eval_policy_all


def _install() -> None:
    prepare_libero()
    try:
        select_mujoco_backend()
    except RuntimeError as error:
        logging.warning(f"lerobot_cknna.eval_plugin: {error}")
    running = [sys.modules.get("lerobot.scripts.lerobot_eval"), sys.modules.get("__main__")]
    for module in {id(m): m for m in running if m is not None and hasattr(m, "eval_policy_all")}.values():
        if not hasattr(module.eval_policy_all, "__wrapped__"):
            module.eval_policy_all = instrument_eval_policy_all(module.eval_policy_all, CKNNARunConfig())
            logging.info(
                f"lerobot_cknna.eval_plugin: capturing features in {module.__name__}.eval_policy_all"
            )


_install()
