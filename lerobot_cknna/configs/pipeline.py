"""``lerobot-cknna``'s configuration: every ``lerobot-eval`` flag, plus ``--cknna.*`` and ``--dataset.*``.

:class:`CKNNAPipelineConfig` subclasses LeRobot's ``EvalPipelineConfig``, so ``--policy.path``
(hub id or local directory), ``--env.*``, ``--eval.*``, ``--seed``, ``--rename_map``,
``--output_dir`` and ``--job_name`` mean exactly what they mean to ``lerobot-eval``.
``--env.type=...`` selects simulation and ``--dataset.repo_id=...`` replay
(:mod:`lerobot_cknna.configs.mode`); with neither, the run simulates the LIBERO suite the
checkpoint was trained or evaluated on (:func:`~lerobot_cknna.configs.checkpoints.libero_suite_of`)
with LeRobot's LIBERO defaults. In LIBERO simulation the env renders at the size the policy's
cameras expect, unless ``--env.observation_height/width`` say otherwise (then they must agree).
"""

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from lerobot import envs
from lerobot.configs import parser
from lerobot.configs.default import DatasetConfig
from lerobot.configs.eval import EvalPipelineConfig
from lerobot.configs.types import FeatureType
from lerobot.envs.configs import LiberoEnv

from lerobot_cknna.capture.hook_table import check_simulation, check_token_groups, spec_for
from lerobot_cknna.configs.checkpoints import libero_suite_of, read_checkpoint_config
from lerobot_cknna.configs.cknna import CKNNARunConfig
from lerobot_cknna.configs.mode import Mode, check_mode_options, choose_mode

# Fewer episodes give no jackknife interval over episodes (and one gives no episode null).
MIN_EPISODES_FOR_AN_INTERVAL = 3

PARALLEL_TASKS_REFUSED = (
    "--env.max_parallel_tasks > 1 runs tasks in threads that share the policy, so captured "
    "features could not be paired with their observations. Use --env.max_parallel_tasks=1."
)


LIBERO_SIZE_FLAGS = ("env.observation_height", "env.observation_width")


def _set_in_config_file(dotted: str) -> bool:
    """Whether the ``--config_path`` file, if any, sets ``dotted`` (e.g. ``env.observation_height``)."""
    config_path = parser.parse_arg("config_path")
    if not config_path or not Path(config_path).is_file():
        return False
    values = yaml.safe_load(Path(config_path).read_text()) or {}
    for part in dotted.split("."):
        if not isinstance(values, dict) or part not in values:
            return False
        values = values[part]
    return True


def _user_set(dotted: str) -> bool:
    return parser.parse_arg(dotted) is not None or _set_in_config_file(dotted)


def rendered_camera_size(policy_config, env_config) -> tuple[int, int] | None:
    """The (height, width) the policy expects of every camera the env renders, ``None`` if none is.

    Cameras the env does not render (the blank slots some VLAs declare, such as
    ``observation.images.empty_camera_0``) do not count.

    Raises:
        ValueError: the rendered cameras expect different sizes, which one LIBERO render cannot give.
    """
    rendered = set(env_config.features_map.values())
    sizes = {
        tuple(feature.shape[-2:])
        for key, feature in policy_config.input_features.items()
        if feature.type is FeatureType.VISUAL and key in rendered
    }
    if len(sizes) > 1:
        raise ValueError(
            f"The policy's cameras expect different image sizes {sorted(sizes)}, but LIBERO renders every "
            "camera at one size (--env.observation_height/width)."
        )
    return sizes.pop() if sizes else None


@dataclass
class CKNNAPipelineConfig(EvalPipelineConfig):
    """lerobot-eval's options, the alignment options, and a dataset for replay."""

    env: envs.EnvConfig | None = None
    # Replay mode: the LeRobotDataset to run the policy on (--dataset.repo_id, --dataset.root, --dataset.episodes).
    dataset: DatasetConfig | None = None
    cknna: CKNNARunConfig = field(default_factory=CKNNARunConfig)
    # Replay: continue the run in --output_dir that was killed or interrupted, with the same settings.
    resume: bool = False

    def __post_init__(self) -> None:
        mode = choose_mode(self.env is not None, self.dataset is not None)
        check_mode_options(mode, self.cknna, self.resume, self.output_dir)
        policy_path = parser.get_path_arg("policy")
        if policy_path:
            read_checkpoint_config(policy_path)
        job_name, output_dir = self.job_name, self.output_dir
        super().__post_init__()
        if self.policy is None:
            raise ValueError(
                "Give a policy: --policy.path=HUB_ID_OR_DIR (a trained policy), or --policy.type=act "
                "(built from config: random weights)."
            )
        if self.cknna.token_groups:
            # The type is known from the config: refuse before the policy or the data is loaded.
            check_token_groups(
                spec_for(self.policy.type, self.cknna.hook_path, self.policy), self.policy.type
            )
        if mode is Mode.SIMULATION:
            # Refused before the policy, the envs or the data are loaded.
            check_simulation(spec_for(self.policy.type, self.cknna.hook_path, self.policy), self.policy.type)
        if mode is Mode.SIMULATION and self.env is None:
            self._simulate_the_checkpoints_libero_suite()
        if self.env is not None and getattr(self.env, "max_parallel_tasks", 1) > 1:
            raise ValueError(PARALLEL_TASKS_REFUSED)
        if isinstance(self.env, LiberoEnv):
            self._render_libero_at_the_policys_size()
        if mode is Mode.SIMULATION and self.eval.n_episodes < MIN_EPISODES_FOR_AN_INTERVAL:
            logging.warning(
                f"--eval.n_episodes={self.eval.n_episodes}: the score will have no jackknife interval over "
                f"episodes (it needs {MIN_EPISODES_FOR_AN_INTERVAL}); the result will say so."
            )
        if not job_name:
            self.job_name = f"{self.env.type if self.env is not None else 'replay'}_{self.policy.type}"
        if not output_dir:
            now = dt.datetime.now()
            self.output_dir = Path("outputs/cknna") / f"{now:%Y-%m-%d}/{now:%H-%M-%S}_{self.job_name}"

    def _simulate_the_checkpoints_libero_suite(self) -> None:
        """No ``--env.*`` and no ``--dataset.*``: LIBERO simulation of the checkpoint's suite, LeRobot's defaults."""
        suite, reason = libero_suite_of(self.policy.pretrained_path)
        logging.info(
            f"No --env.* or --dataset.*: simulating LIBERO {suite} ({reason}); choose with --env.type=libero "
            "--env.task=SUITE, or replay a dataset with --dataset.repo_id=..."
        )
        self.env = LiberoEnv(task=suite)

    def _render_libero_at_the_policys_size(self) -> None:
        """LIBERO renders 360 x 360 unless told: render at the size the policy's cameras expect.

        Raises:
            ValueError: ``--env.observation_height/width`` were given and differ from what the policy expects.
        """
        expected = rendered_camera_size(self.policy, self.env)
        rendered = (self.env.observation_height, self.env.observation_width)
        if expected is None or expected == rendered:
            return
        if any(_user_set(flag) for flag in LIBERO_SIZE_FLAGS):
            raise ValueError(
                f"LIBERO would render {rendered[0]}x{rendered[1]} images (--env.observation_height/width) but the "
                f"policy's cameras expect {expected[0]}x{expected[1]}. Drop those flags (LIBERO then renders at the "
                f"policy's size) or set --env.observation_height={expected[0]} --env.observation_width={expected[1]}."
            )
        logging.info(
            f"LIBERO renders at the policy's camera size, {expected[0]}x{expected[1]} (LeRobot's default is "
            f"{rendered[0]}x{rendered[1]}; set --env.observation_height/width to choose)."
        )
        self.env.observation_height, self.env.observation_width = expected
        self.env.__post_init__()
