r"""``lerobot-cknna``: how well does a LeRobot policy's condition embedding line up with proprioception?

Takes every ``lerobot-eval`` flag, plus ``--cknna.*`` and ``--dataset.*``. Simulation, through
LeRobot's own evaluation loop, in the LIBERO suite the checkpoint was trained on (else
libero_spatial), with LeRobot's LIBERO defaults::

    lerobot-cknna --policy.path=HuggingFaceVLA/smolvla_libero

or in the env and suite you name::

    lerobot-cknna --policy.path=HuggingFaceVLA/smolvla_libero \\
        --env.type=libero --env.task=libero_spatial --eval.n_episodes=10 --eval.batch_size=2

Replay of a LeRobotDataset (hub id, or a local copy with ``--dataset.root``)::

    lerobot-cknna --policy.path=HuggingFaceVLA/smolvla_libero \\
        --dataset.repo_id=HuggingFaceVLA/libero --dataset.episodes='[0,1,2]' --cknna.max_samples=2000

``--cknna.layers=true`` also scores every layer along the path to the hooked module
(``layers.json``, ``layers.png``, a section in ``report.md``); for a VLA,
``--cknna.token_groups=true`` also scores feat A's image tokens and its language tokens apart
(``token_groups.json``, ``token_groups.png``, a section in ``report.md``). Both work in replay
and in simulation, in one process.

Writes ``features.safetensors``, ``cknna.json``, ``report.md`` and plots into
``outputs/cknna/DATE/TIME_JOB/`` (or ``--output_dir``); simulation also writes LeRobot's
``eval_info.json`` there. ``--config_path=configs/....yaml`` reads the options from a file.
"""

import sys

from lerobot_cknna.configs.mode import preflight
from lerobot_cknna.utils.cli import run_command


def main():
    """Console entry point."""
    run_command(_main)


def _main() -> None:
    # This package's own flags are checked before LeRobot's policies and the simulator load.
    preflight(sys.argv[1:])
    from lerobot.configs import parser

    from lerobot_cknna.compat import fixed_config_loading
    from lerobot_cknna.configs.checkpoints import refuse_removed_policy_type
    from lerobot_cknna.configs.pipeline import CKNNAPipelineConfig
    from lerobot_cknna.drivers.pipeline import run_pipeline

    @parser.wrap()
    def cknna_main(cfg: CKNNAPipelineConfig) -> None:
        run_pipeline(cfg)

    refuse_removed_policy_type(parser.get_type_arg("policy"))
    with fixed_config_loading():
        cknna_main()


if __name__ == "__main__":
    main()
