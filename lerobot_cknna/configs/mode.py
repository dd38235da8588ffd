"""Which mode a ``lerobot-cknna`` command line asks for, checked before LeRobot or the simulator is imported.

``--env.*`` runs simulation, ``--dataset.*`` runs replay, and neither runs LIBERO simulation
(the suite is chosen from the checkpoint later, when the policy's files are read). Both is an
error. :func:`preflight` reads the mode and the ``--cknna.*`` group from the command line and
the ``--config_path`` file, so that a wrong flag of this package is reported in about the time
it takes to import torch, not after LeRobot's policies and the simulator are loaded::

    from lerobot_cknna.configs.mode import preflight

    mode = preflight(sys.argv[1:])        # raises ValueError / draccus errors on bad flags
"""

import enum
from dataclasses import dataclass, field
from pathlib import Path

import draccus
import yaml
from draccus.utils import ParsingError

from lerobot_cknna.configs.cknna import CKNNARunConfig


class Mode(enum.Enum):
    """Where the features come from."""

    SIMULATION = "simulation"
    REPLAY = "replay"


# The options that capture more than feat A in the same forwards: what each scores, and its unit.
EXTRA_CAPTURES = (("layers", "layer taps", "layer"), ("token_groups", "token groups", "token group"))

BOTH_MODES = (
    "Choose one mode: --env.type=... (simulation through lerobot-eval's loop) or --dataset.repo_id=... "
    "(replay of a LeRobotDataset), not both. With neither, lerobot-cknna runs LIBERO simulation."
)


def choose_mode(has_env: bool, has_dataset: bool) -> Mode:
    """The mode the given option groups select.

    Raises:
        ValueError: both ``--env.*`` and ``--dataset.*`` were given.
    """
    if has_env and has_dataset:
        raise ValueError(BOTH_MODES)
    return Mode.REPLAY if has_dataset else Mode.SIMULATION


def check_mode_options(mode: Mode, cknna: CKNNARunConfig, resume: bool, output_dir: object) -> None:
    """Refuse options that the mode cannot honour, saying what to do instead.

    Raises:
        ValueError: ``--resume`` in simulation or without ``--output_dir``; ``--cknna.layers`` or
            ``--cknna.token_groups`` with ``--resume``; ``--cknna.check_replay`` in replay.
    """
    if resume and mode is Mode.SIMULATION:
        raise ValueError(
            "--resume=true continues replay runs only: lerobot-eval's loop cannot start mid-way "
            "through its episodes. The killed simulation's features are still in its directory "
            "(score them with lerobot-cknna-score DIR); start a new run for the rest."
        )
    if resume and not output_dir:
        raise ValueError("--resume=true continues the run in --output_dir=DIR; give that directory.")
    if cknna.check_replay and mode is Mode.REPLAY:
        raise ValueError(
            "--cknna.check_replay=true compares a simulation with a replay of its own recorded frames: "
            "run it in simulation (--env.type=libero, or no --env.* and no --dataset.*), not with --dataset.*."
        )
    for flag, _, unit in EXTRA_CAPTURES:
        if getattr(cknna, flag) and resume:
            raise ValueError(
                f"--cknna.{flag}=true runs cannot be resumed (each {unit} streams on its own clock, so a "
                f"killed run's {unit}s may hold different samples); start a new run."
            )


@dataclass
class _OwnOptions:
    """The options of ``lerobot-cknna`` that LeRobot's ``lerobot-eval`` does not have."""

    cknna: CKNNARunConfig = field(default_factory=CKNNARunConfig)
    resume: bool = False
    output_dir: str | None = None


def _config_file_values(args: list[str]) -> dict:
    """The ``--config_path`` file's options (empty without one).

    Raises:
        FileNotFoundError: the file does not exist.
    """
    paths = [arg.split("=", 1)[1] for arg in args if arg.startswith("--config_path=")]
    if not paths:
        return {}
    path = Path(paths[-1])
    if not path.is_file():
        raise FileNotFoundError(f"--config_path={path}: no such file.")
    return yaml.safe_load(path.read_text()) or {}


def _given(group: str, args: list[str], file_values: dict) -> bool:
    return file_values.get(group) is not None or any(arg.startswith(f"--{group}.") for arg in args)


def _own_args(args: list[str], file_values: dict) -> list[str]:
    """The config file's own options as flags, then the command line's (which win)."""
    from_file = [
        f"--cknna.{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"
        for key, value in (file_values.get("cknna") or {}).items()
    ]
    from_file += [
        f"--{key}={file_values[key]}" for key in ("resume", "output_dir") if file_values.get(key) is not None
    ]
    own = [arg for arg in args if arg.startswith(("--cknna.", "--resume", "--output_dir"))]
    return from_file + own


def preflight(args: list[str]) -> Mode:
    """Check the mode and this package's own options on a ``lerobot-cknna`` command line.

    Args:
        args: the command line, without the program name.

    Returns:
        The mode the command line selects.

    Raises:
        ValueError: both modes, or options the mode cannot honour, or a bad ``--cknna.*`` value.
        FileNotFoundError: a ``--config_path`` that does not exist.
        draccus.utils.ParsingError: a ``--cknna.*`` value of the wrong type.
        SystemExit: an unknown ``--cknna.*`` option (argparse's usage message, exit status 2).
    """
    file_values = _config_file_values(args)
    mode = choose_mode(_given("env", args, file_values), _given("dataset", args, file_values))
    try:
        own = draccus.parse(_OwnOptions, args=_own_args(args, file_values))
    except ParsingError as error:
        if isinstance(error.__cause__, ValueError):
            raise error.__cause__ from None
        raise
    check_mode_options(mode, own.cknna, own.resume, own.output_dir)
    return mode
