"""The ``--cknna.*`` option group: what to compute from paired features, and how."""

import functools
from dataclasses import dataclass, field

import torch

from lerobot_cknna.metrics.alignment import DEFAULT_METRICS, check_metric_names
from lerobot_cknna.metrics.feature_prep import FeaturePrep
from lerobot_cknna.metrics.knn import NeighborExclusion
from lerobot_cknna.results.provenance import parse_weights

TARGETS = ("state", "trajectory")
SAMPLINGS = ("all", "one_per_episode")


@dataclass
class CKNNAConfig:
    """Alignment options shared by every lerobot-cknna command (the ``--cknna.*`` group)."""

    # Headline neighbourhood size (10 in the reference and the original study).
    k: int = 10
    # Further k values reported beside it; those that do not fit N are dropped with a warning.
    k_sweep: list[int] = field(default_factory=lambda: [5, 10, 20, 50])
    # Metrics to report: cknna and mutual_knn, plus any of cycle_knn, lcs_knn, edit_distance_knn, svcca.
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    # Feature prep of feat A: none, l2 (reference), center_l2, standardize, standardize_l2.
    prep_a: str = "l2"
    # Feature prep of feat B (proprioceptive state); same choices.
    prep_b: str = "l2"
    # The reference's optional outlier clamp (e.g. 0.95), applied to both sides before prep.
    clamp_quantile: float | None = None
    # Permutation-null draws; 0 turns the null off.
    n_permutations: int = 200
    # episode: re-pair whole trajectories (right for robot data); row: for comparison only.
    null_unit: str = "episode"
    # Level of the jackknife interval over episodes; null for none.
    interval_level: float | None = 0.95
    # Neighbours must come from other episodes.
    exclude_same_episode: bool = False
    # Instead: exclude same-episode neighbours within this many frames.
    exclude_window: int | None = None
    # CKNNA denominator constant (1e-6 in the reference).
    eps: float = 1e-6
    # Seed of the permutation draws.
    seed: int = 0
    # Level of the null's threshold: the calibrated score is 0 for what chance reaches with this probability.
    alpha: float = 0.05
    # Where the metrics run: auto (CUDA when torch sees a GPU, else CPU), cpu, cuda or cuda:N.
    device: str = "auto"
    # Feat B: state (the state at the same step) or trajectory (the states t..t+window stacked).
    target: str = "state"
    # Steps beyond t that the trajectory target stacks (needs --cknna.target=trajectory).
    window: int | None = None
    # Also score feat B h steps later, for each h here (e.g. [0,5,10,15]); samples without one are dropped.
    horizons: list[int] = field(default_factory=list)
    # Which samples are scored: all, or one_per_episode (one random frame per episode, as S² does).
    sampling: str = "all"
    # Also score nested subsets of whole episodes holding at least these many samples (CKNNA against N).
    n_curve: list[int] = field(default_factory=list)

    def __post_init__(self):
        self.feature_prep_a = FeaturePrep(self.prep_a, self.clamp_quantile)
        self.feature_prep_b = FeaturePrep(self.prep_b, self.clamp_quantile)
        if self.exclude_same_episode and self.exclude_window is not None:
            raise ValueError(
                "Choose one of --cknna.exclude_same_episode and --cknna.exclude_window, not both."
            )
        if self.n_permutations < 0:
            raise ValueError(f"--cknna.n_permutations must be >= 0, got {self.n_permutations}.")
        if self.interval_level is not None and not 0 < self.interval_level < 1:
            raise ValueError(f"--cknna.interval_level must be in (0, 1), got {self.interval_level}.")
        if not 0 < self.alpha < 1:
            raise ValueError(
                f"--cknna.alpha must be in (0, 1), got {self.alpha}: it is the level of the null's threshold "
                "(0.05: the calibrated score is 0 for what chance reaches 5% of the time)."
            )
        parse_metrics_device(self.device)
        check_metric_names(self.metrics, "--cknna.metrics")
        self._check_targets_and_sampling()

    def _check_targets_and_sampling(self):
        if self.target not in TARGETS:
            raise ValueError(f"--cknna.target must be one of {', '.join(TARGETS)}, got {self.target!r}.")
        if self.target == "trajectory" and (self.window is None or self.window < 1):
            raise ValueError(
                f"--cknna.target=trajectory needs --cknna.window=W >= 1 (states t..t+W), got {self.window}."
            )
        if self.target != "trajectory" and self.window is not None:
            raise ValueError(
                "--cknna.window applies to --cknna.target=trajectory only; drop it or set the target."
            )
        if any(h < 0 for h in self.horizons) or len(set(self.horizons)) != len(self.horizons):
            raise ValueError(
                f"--cknna.horizons must be distinct steps >= 0, e.g. [0,5,10,15]; got {self.horizons}."
            )
        if self.sampling not in SAMPLINGS:
            raise ValueError(
                f"--cknna.sampling must be one of {', '.join(SAMPLINGS)}, got {self.sampling!r}."
            )
        if any(n <= self.k for n in self.n_curve) or len(set(self.n_curve)) != len(self.n_curve):
            raise ValueError(
                f"--cknna.n_curve must be distinct sample sizes above k={self.k}, e.g. [500,1000,2000]; "
                f"got {self.n_curve}."
            )

    @functools.cached_property
    def metrics_device(self) -> torch.device:
        """The device the metrics run on (``--cknna.device`` against the GPUs torch sees here).

        Raises:
            ValueError: ``--cknna.device`` names a GPU this machine does not have.
        """
        return resolve_metrics_device(self.device, torch.cuda.device_count())

    def exclusion(self, episode_index, frame_index) -> NeighborExclusion | None:
        """The neighbour exclusion these options ask for, over the given samples."""
        if self.exclude_same_episode:
            return NeighborExclusion(episode_index)
        if self.exclude_window is not None:
            return NeighborExclusion(episode_index, frame_index, self.exclude_window)
        return None


def parse_metrics_device(name: str) -> torch.device | None:
    """The device ``--cknna.device=name`` names (``None`` for ``auto``), without asking what this machine has.

    Raises:
        ValueError: the name is not auto, cpu, cuda or cuda:N.
    """
    if name == "auto":
        return None
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"--cknna.device must be auto, cpu, cuda or cuda:N, got {name!r}.") from error
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--cknna.device must be auto, cpu, cuda or cuda:N, got {name!r}.")
    return device


def resolve_metrics_device(name: str, n_gpus: int) -> torch.device:
    """The device ``--cknna.device=name`` asks for on a machine where torch sees ``n_gpus`` GPUs.

    Raises:
        ValueError: the name is not a device, or names a GPU this machine does not have.
    """
    device = parse_metrics_device(name)
    if device is None:
        return torch.device("cuda" if n_gpus else "cpu")
    if device.type == "cuda" and (device.index or 0) >= n_gpus:
        raise ValueError(
            f"--cknna.device={name} but torch sees {n_gpus} CUDA device(s) here; "
            "use --cknna.device=auto (CUDA when there is one) or --cknna.device=cpu."
        )
    return device


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
    # Also score every layer along the path to the hooked module (layers.json, layers.png); one process.
    layers: bool = False
    # VLAs: also score feat A's image tokens alone and its language tokens alone (token_groups.json); one process.
    token_groups: bool = False
    # Simulation: record the rollouts losslessly, replay the recorded frames through the encode-only
    # path and write how far replay's features are from simulation's (replay_parity in cknna.json).
    check_replay: bool = False

    def __post_init__(self):
        super().__post_init__()
        parse_weights(self.weights)
        if self.max_samples is not None and self.max_samples < 4:
            raise ValueError(f"--cknna.max_samples must be at least 4, got {self.max_samples}.")
        if self.batch_size < 1:
            raise ValueError(f"--cknna.batch_size must be at least 1, got {self.batch_size}.")
