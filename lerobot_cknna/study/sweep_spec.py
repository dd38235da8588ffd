"""What ``lerobot-cknna-sweep`` runs: a sweep file listing runs, each a small per-policy YAML.

``--policy.path`` is a command-line-only argument of LeRobot's parser (a draccus config file
cannot set it), so a run is described by the ``lerobot-cknna`` arguments it passes, not by a
draccus file. A **run file** (``configs/study/smolvla.yaml``)::

    name: smolvla                       # the run's directory and row label
    policy_type: smolvla                # the LeRobot policy type (tiny runs build it)
    args:                               # lerobot-cknna arguments of this policy
      - --policy.path=HuggingFaceVLA/smolvla_libero
    weights: finetuned on target        # passed as --cknna.weights (finetuned on target / other domain / random)
    provenance: >-                      # where the weights come from and how that was checked
      LeRobot's LIBERO fine-tune of smolvla_base ...
    python: /path/to/python             # optional: this run's interpreter (default: the sweep's)
    tiny: false                         # optional: run the tiny offline build of policy_type instead

A **sweep file** (``configs/study/sweep.yaml``) lists the runs and what every run shares::

    runs: [act.yaml, smolvla.yaml]      # run files (relative to the sweep file) or inline run mappings
    common_args:                        # appended to every run: the same samples for every policy
      - --dataset.repo_id=HuggingFaceVLA/libero
      - --dataset.episodes=[0,1,2,3]
    offline_assets: outputs/cknna/tiny_assets # tiny policies and the recorded dataset, made once
    record_libero: {task_ids: [0, 1], episodes_per_task: 2, n_steps: 10}  # optional, needs offline_assets

A run may not set an argument that ``common_args`` sets: every run must see the same samples.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lerobot_cknna.drivers.libero.record import RECORDED_REPO_ID
from lerobot_cknna.results.provenance import parse_weights


@dataclass
class RunSpec:
    """One policy of a sweep: a ``lerobot-cknna`` invocation."""

    name: str
    policy_type: str
    args: list[str] = field(default_factory=list)
    weights: str | None = None
    provenance: str = ""
    python: str | None = None
    tiny: bool = False

    def __post_init__(self) -> None:
        parse_weights(self.weights, f"Run {self.name!r}: weights")
        if self.tiny and any(arg.startswith(("--policy.path=", "--policy.type=")) for arg in self.args):
            raise ValueError(
                f"Run {self.name!r}: a tiny run builds its own policy; drop --policy.* from args."
            )


@dataclass
class LiberoRecording:
    """The LIBERO dataset a sweep records from the simulator (``record_libero``), once per assets dir."""

    task_ids: list[int] = field(default_factory=lambda: [0, 1])
    episodes_per_task: int = 2
    n_steps: int = 10

    def directory(self, assets: Path) -> Path:
        """Where this recording is kept under ``assets`` (its settings are in the name)."""
        tasks = "-".join(map(str, self.task_ids))
        return Path(assets) / f"libero_spatial_tasks{tasks}_{self.episodes_per_task}x{self.n_steps}"


@dataclass
class SweepSpec:
    """A sweep: its runs and what every run shares."""

    runs: list[RunSpec]
    common_args: list[str] = field(default_factory=list)
    offline_assets: Path | None = None
    record_libero: LiberoRecording | None = None

    def __post_init__(self) -> None:
        names = [run.name for run in self.runs]
        if len(set(names)) != len(names):
            raise ValueError(f"Run names must be unique in a sweep; got {names}.")
        needs_assets = self.record_libero is not None or any(run.tiny for run in self.runs)
        if needs_assets and self.offline_assets is None:
            raise ValueError("Tiny runs and record_libero need offline_assets: DIR in the sweep file.")
        common_keys = {_key(arg) for arg in self.common_args}
        for run in self.runs:
            clash = sorted(common_keys & {_key(arg) for arg in run.args})
            if clash:
                raise ValueError(
                    f"Run {run.name!r} sets {', '.join(clash)}, which common_args sets for every run; every "
                    "run must see the same samples. Remove it from the run or from common_args."
                )

    def interpreter(self, run: RunSpec, python: str) -> Path:
        """The Python that runs ``run``: its own, else the sweep's ``python``."""
        return Path(run.python or python)

    def run_args(self, run: RunSpec) -> list[str]:
        """The run's ``lerobot-cknna`` arguments before its ``--policy.path`` and ``--output_dir``."""
        weights = [f"--cknna.weights={run.weights}"] if run.weights else []
        return [*run.args, *weights, *self.common_args, *self.recorded_dataset_args()]

    def recorded_dataset_args(self) -> list[str]:
        """The ``--dataset.*`` arguments of the recorded dataset, when the sweep records one."""
        if self.record_libero is None:
            return []
        root = self.record_libero.directory(self.offline_assets).resolve()
        return [f"--dataset.repo_id={RECORDED_REPO_ID}", f"--dataset.root={root}"]


def _key(arg: str) -> str:
    return arg.split("=", 1)[0]


def _build(cls, values: object, where: str):
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping of {cls.__name__} keys, got {type(values).__name__}.")
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; the keys are {', '.join(sorted(known))}.")
    try:
        return cls(**values)
    except TypeError as error:
        raise ValueError(f"{where}: {error}") from error


def _read_yaml(path: Path) -> object:
    if not path.is_file():
        raise FileNotFoundError(f"No such sweep or run file: {path}. Give an existing YAML file.")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML: {error}") from error


def load_sweep(path: Path, offline_assets: Path | None = None) -> SweepSpec:
    """Read a sweep file and the run files it names (relative to it).

    Args:
        path: the sweep file.
        offline_assets: overrides the file's ``offline_assets``.

    Raises:
        FileNotFoundError: the sweep file or a run file is missing.
        ValueError: an unknown key, a bad value, or a run that would see other samples.
    """
    path = Path(path)
    values = _read_yaml(path)
    if not isinstance(values, dict) or not values.get("runs"):
        raise ValueError(f"{path}: a sweep file needs a non-empty `runs:` list.")
    if len(values["runs"]) < 2:
        # --only may still pick one run of a sweep file, e.g. to run again the one that failed.
        raise ValueError(
            f"{path}: a sweep compares runs: list at least two under runs:, got {values['runs']}."
        )
    runs = []
    for entry in values["runs"]:
        if isinstance(entry, str):
            run_path = path.parent / entry
            runs.append(_build(RunSpec, _read_yaml(run_path), str(run_path)))
        else:
            runs.append(_build(RunSpec, entry, f"{path} (inline run)"))
    values = {**values, "runs": runs}
    if offline_assets is not None:
        values["offline_assets"] = offline_assets
    if values.get("offline_assets") is not None:
        values["offline_assets"] = Path(values["offline_assets"])
    if values.get("record_libero") is not None:
        values["record_libero"] = _build(LiberoRecording, values["record_libero"], f"{path} record_libero")
    return _build(SweepSpec, values, str(path))


def missing_interpreters(sweep: SweepSpec, python: str) -> list[str]:
    """A line per interpreter the sweep's runs need that does not exist."""
    needed: dict[Path, list[RunSpec]] = {}
    for run in sweep.runs:
        needed.setdefault(sweep.interpreter(run, python), []).append(run)
    return [
        f"The interpreter {interpreter} (for {', '.join(run.name for run in runs)}) does not exist: "
        "give --python=PATH, or set python: in the run file."
        for interpreter, runs in needed.items()
        if not interpreter.is_file()
    ]


def select_runs(sweep: SweepSpec, names: list[str] | None) -> SweepSpec:
    """The sweep with only the runs ``names`` (all when ``None``).

    Raises:
        ValueError: a name the sweep does not have.
    """
    if not names:
        return sweep
    unknown = sorted(set(names) - {run.name for run in sweep.runs})
    if unknown:
        raise ValueError(f"--only names runs the sweep does not have: {unknown}.")
    return dataclasses.replace(sweep, runs=[run for run in sweep.runs if run.name in names])
