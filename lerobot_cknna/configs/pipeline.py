"""``lerobot-cknna``'s configuration: every ``lerobot-eval`` flag, plus ``--cknna.*`` and ``--dataset.*``.

:class:`CKNNAPipelineConfig` subclasses LeRobot's ``EvalPipelineConfig``, so ``--policy.path``
(hub id or local directory), ``--env.*``, ``--eval.*``, ``--seed``, ``--rename_map``,
``--output_dir`` and ``--job_name`` mean exactly what they mean to ``lerobot-eval``.
Exactly one of ``--env.type=...`` (simulation) and ``--dataset.repo_id=...`` (replay)
selects the mode.
"""

import datetime as dt
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lerobot import envs
from lerobot.configs import parser
from lerobot.configs.default import DatasetConfig
from lerobot.configs.eval import EvalPipelineConfig

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.fixes.stale_config_keys import without_stale_keys

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


def _clean_policy_path_arg() -> Path | None:
    """Point ``--policy.path`` at a copy without stale config keys before LeRobot parses it.

    Returns:
        The path the user gave when it was replaced, else ``None``.
    """
    policy_path = parser.get_path_arg("policy")
    if not policy_path or not (Path(policy_path) / "config.json").is_file():
        return None
    cleaned = without_stale_keys(Path(policy_path), Path(tempfile.gettempdir()) / "lerobot_cknna_policies")
    if cleaned == Path(policy_path):
        return None
    sys.argv = [f"--policy.path={cleaned}" if arg.startswith("--policy.path=") else arg for arg in sys.argv]
    return Path(policy_path)


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
        if self.env is not None and self.eval.use_async_envs:
            raise ValueError(
                "--eval.use_async_envs=true does not work with lerobot 0.4.4's eval loop (it reads "
                "env.envs[0]); use --eval.batch_size=N for vectorized sync envs."
            )
        given_policy_path = _clean_policy_path_arg()
        job_name, output_dir = self.job_name, self.output_dir
        super().__post_init__()
        if self.policy is None:
            raise ValueError(
                "Give a policy: --policy.path=HUB_ID_OR_DIR (a trained policy), or --policy.type=act "
                "(built from config: random weights)."
            )
        if given_policy_path is not None:
            # The config is parsed; weights and processors load from the user's directory as they are.
            self.policy.pretrained_path = given_policy_path
        if not job_name:
            mode = self.env.type if self.env is not None else "replay"
            self.job_name = f"{mode}_{self.policy.type}"
        if not output_dir:
            now = dt.datetime.now()
            self.output_dir = Path("outputs/cknna") / f"{now:%Y-%m-%d}/{now:%H-%M-%S}_{self.job_name}"
