"""``lerobot-cknna``'s configuration: every ``lerobot-eval`` flag, plus ``--cknna.*`` and ``--dataset.*``.

:class:`CKNNAPipelineConfig` subclasses LeRobot's ``EvalPipelineConfig``, so ``--policy.path``
(hub id or local directory), ``--env.*``, ``--eval.*``, ``--seed``, ``--rename_map``,
``--output_dir`` and ``--job_name`` mean exactly what they mean to ``lerobot-eval``.
Exactly one of ``--env.type=...`` (simulation) and ``--dataset.repo_id=...`` (replay)
selects the mode. In LIBERO simulation the env renders at the size the policy's cameras
expect, unless ``--env.observation_height/width`` say otherwise (then they must agree).
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
from lerobot.envs.configs import LiberoEnv

from lerobot_cknna.checkpoints import read_checkpoint_config
from lerobot_cknna.configs.cknna import CKNNAConfig

WEIGHTS_CHOICES = ("finetuned on target", "other domain", "random")
PARALLEL_TASKS_REFUSED = (
    "--env.max_parallel_tasks > 1 runs tasks in threads that share the policy, so captured "
    "features could not be paired with their observations. Use --env.max_parallel_tasks=1."
)


@dataclass
class CKNNARunConfig(CKNNAConfig):
    """The ``--cknna.*`` group of lerobot-cknna: what to capture, then how to score it."""

    # Dotted module path to capture instead of the hook table's (any policy, third-party ones too).
    hook_path: str | None = None
    # Replay: at most this many frames, evenly spaced over the selected episodes (all if unset).
    max_samples: int | None = None
    # Replay: frames per forward pass.
    batch_size: int = 16
    # Replay: DataLoader workers decoding frames.
    num_workers: int = 0
    # Weights provenance: finetuned on target, other domain or random. Read from the checkpoint if unset.
    weights: str | None = None
    # Seconds between writes of the gathered features to disk; a killed run keeps what was written.
    flush_every_s: float = 30.0
    # Write report.md and the PNG plots beside cknna.json.
    report: bool = True
    # Replay: also score every layer along the path to the hooked module (layers.json, layers.png).
    layers: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.weights is not None and self.weights not in WEIGHTS_CHOICES:
            raise ValueError(f"--cknna.weights must be one of {', '.join(map(repr, WEIGHTS_CHOICES))}.")
        if self.max_samples is not None and self.max_samples < 4:
            raise ValueError(f"--cknna.max_samples must be at least 4, got {self.max_samples}.")
        if self.batch_size < 1:
            raise ValueError(f"--cknna.batch_size must be at least 1, got {self.batch_size}.")


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


def policy_camera_size(policy_config) -> tuple[int, int] | None:
    """The (height, width) every camera of the policy expects, ``None`` if it declares none.

    Raises:
        ValueError: the cameras expect different sizes, which one LIBERO render cannot give.
    """
    sizes = {tuple(feature.shape[-2:]) for feature in policy_config.image_features.values()}
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
        if (self.env is None) == (self.dataset is None):
            raise ValueError(
                "Choose one mode: --env.type=libero (simulation through lerobot-eval's loop) or "
                "--dataset.repo_id=... (replay of a LeRobotDataset), not both and not neither."
            )
        if self.resume and self.env is not None:
            raise ValueError(
                "--resume=true continues replay runs only: lerobot-eval's loop cannot start mid-way "
                "through its episodes. The killed simulation's features are still in its directory "
                "(score them with lerobot-cknna-score DIR); start a new run for the rest."
            )
        if self.resume and not self.output_dir:
            raise ValueError("--resume=true continues the run in --output_dir=DIR; give that directory.")
        if self.cknna.layers and self.env is not None:
            raise ValueError(
                "--cknna.layers=true sweeps layers in replay only: the simulation capture (inside "
                "lerobot-eval's rollout) gathers feat A alone. Replay a LeRobotDataset of the same "
                "episodes (--dataset.repo_id=...) with --cknna.layers=true."
            )
        if self.cknna.layers and self.resume:
            raise ValueError(
                "--cknna.layers=true runs cannot be resumed (each layer streams on its own clock, so a "
                "killed run's layers may hold different samples); start a new run."
            )
        if self.env is not None and getattr(self.env, "max_parallel_tasks", 1) > 1:
            raise ValueError(PARALLEL_TASKS_REFUSED)
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
        if isinstance(self.env, LiberoEnv):
            self._render_libero_at_the_policys_size()
        if not job_name:
            mode = self.env.type if self.env is not None else "replay"
            self.job_name = f"{mode}_{self.policy.type}"
        if not output_dir:
            now = dt.datetime.now()
            self.output_dir = Path("outputs/cknna") / f"{now:%Y-%m-%d}/{now:%H-%M-%S}_{self.job_name}"

    def _render_libero_at_the_policys_size(self) -> None:
        """LIBERO renders 360 x 360 unless told: render at the size the policy's cameras expect.

        Raises:
            ValueError: ``--env.observation_height/width`` were given and differ from what the policy expects.
        """
        expected = policy_camera_size(self.policy)
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
