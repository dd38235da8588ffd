"""Running a sweep's policies: each ``lerobot-cknna`` run in its own process.

A run is ``PYTHON -m lerobot_cknna.scripts.lerobot_cknna ARGS --output_dir=SWEEP/runs/NAME``;
its stdout and stderr are kept in ``SWEEP/logs/NAME.{stdout,stderr}.log``. A run that fails is
recorded (exit status and the last lines of its stderr) and the sweep goes on. Tiny runs get
their policy saved first by :func:`lerobot_cknna.tiny_policies.save_tiny_policy`, in the run's
own interpreter, one process per interpreter.
"""

import dataclasses
import logging
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from lerobot_cknna.drivers.libero.record import record_once
from lerobot_cknna.results.compare import FailedRun, compare_runs
from lerobot_cknna.study.sweep_spec import RunSpec, SweepSpec

RUNS_DIR, LOGS_DIR = "runs", "logs"
STDERR_TAIL_LINES = 15
CKNNA_MODULE = "lerobot_cknna.scripts.lerobot_cknna"


@dataclass
class RunOutcome:
    """What became of one run of a sweep."""

    name: str
    command: list[str]
    returncode: int
    seconds: float
    run_dir: str
    stdout_log: str
    stderr_log: str
    stderr_tail: str

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0

    def failure(self) -> str:
        """Why it failed, in one line for a table cell: the exit status and the end of its stderr."""
        tail = " / ".join(line.strip() for line in self.stderr_tail.splitlines() if line.strip())
        return f"exit {self.returncode}; log {self.stderr_log}; stderr ends: {tail[-600:]}"

    def as_dict(self) -> dict:
        return {**asdict(self), "succeeded": self.succeeded}


def _tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_logged(name: str, command: list[str], sweep_dir: Path, run_dir: Path | None = None) -> RunOutcome:
    """Run ``command`` with its output in ``sweep_dir/logs/NAME.*.log``; never raises on failure."""
    logs = sweep_dir / LOGS_DIR
    logs.mkdir(parents=True, exist_ok=True)
    stdout_log, stderr_log = logs / f"{name}.stdout.log", logs / f"{name}.stderr.log"
    logging.info(f"[{name}] $ {' '.join(command)}")
    start = time.monotonic()
    with stdout_log.open("w") as stdout, stderr_log.open("w") as stderr:
        try:
            returncode = subprocess.run(command, stdout=stdout, stderr=stderr, check=False).returncode
        except OSError as error:  # the interpreter vanished or is not executable
            stderr.write(f"Could not start {command[0]}: {error}\n")
            returncode = 127
    outcome = RunOutcome(
        name=name,
        command=command,
        returncode=returncode,
        seconds=round(time.monotonic() - start, 1),
        run_dir=str(run_dir) if run_dir else "",
        stdout_log=str(stdout_log),
        stderr_log=str(stderr_log),
        stderr_tail=_tail(stderr_log),
    )
    if outcome.succeeded:
        logging.info(f"[{name}] done in {outcome.seconds:.0f} s")
    else:
        logging.error(f"[{name}] failed: {outcome.failure()}")
    return outcome


def tiny_policy_dir(sweep: SweepSpec, run: RunSpec) -> Path:
    """Where a tiny run's policy is saved (and reused by later sweeps)."""
    return (sweep.offline_assets / f"tiny_{run.policy_type}").resolve()


def save_tiny_policies(sweep: SweepSpec, python: str, sweep_dir: Path) -> dict[str, RunOutcome]:
    """Save the tiny policies the sweep's tiny runs need and do not have yet, per interpreter.

    Returns:
        For each run whose policy could not be saved, the outcome of the process that tried.
    """
    pending: dict[Path, list[RunSpec]] = {}
    for run in sweep.runs:
        if run.tiny and not (tiny_policy_dir(sweep, run) / "model.safetensors").is_file():
            pending.setdefault(sweep.interpreter(run, python), []).append(run)
    failures = {}
    for python, runs in pending.items():
        targets = {run.policy_type: str(tiny_policy_dir(sweep, run)) for run in runs}
        code = (
            "from lerobot_cknna.testing.tiny_policies import save_tiny_policy\n"
            f"for policy_type, directory in {targets!r}.items():\n"
            "    save_tiny_policy(policy_type, directory)\n"
        )
        label = "save_tiny_" + "_".join(targets)
        outcome = run_logged(label, [str(python), "-c", code], sweep_dir)
        if not outcome.succeeded:
            failures.update({run.name: outcome for run in runs})
    return failures


def run_command_line(sweep: SweepSpec, run: RunSpec, python: str, sweep_dir: Path) -> list[str]:
    """The full command of ``run``: interpreter, module, its arguments and its output directory."""
    policy = [f"--policy.path={tiny_policy_dir(sweep, run)}"] if run.tiny else []
    run_dir = sweep_dir / RUNS_DIR / run.name
    return [
        str(sweep.interpreter(run, python)),
        "-m",
        CKNNA_MODULE,
        *policy,
        *sweep.run_args(run),
        f"--output_dir={run_dir}",
    ]


def run_policy(sweep: SweepSpec, run: RunSpec, python: str, sweep_dir: Path) -> RunOutcome:
    """Run one policy of the sweep in its environment; the outcome says how it went."""
    command = run_command_line(sweep, run, python, sweep_dir)
    return run_logged(run.name, command, sweep_dir, run_dir=sweep_dir / RUNS_DIR / run.name)


def run_sweep(sweep: SweepSpec, sweep_dir: Path, python: str) -> list[RunOutcome]:
    """Prepare what the sweep records or builds offline, then run every policy; failures do not stop it."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if sweep.record_libero is not None:
        recording = sweep.record_libero
        logging.info(f"Recorded LIBERO dataset: {recording.directory(sweep.offline_assets)}")
        record_once(
            recording.directory(sweep.offline_assets),
            task_ids=recording.task_ids,
            episodes_per_task=recording.episodes_per_task,
            n_steps=recording.n_steps,
        )
    not_built = save_tiny_policies(sweep, python, sweep_dir)
    outcomes = []
    for run in tqdm(sweep.runs, desc="sweep", unit="run"):
        if run.name in not_built:
            outcomes.append(dataclasses.replace(not_built[run.name], name=run.name))
            continue
        outcomes.append(run_policy(sweep, run, python, sweep_dir))
    return outcomes


def write_comparison(sweep: SweepSpec, outcomes: list[RunOutcome], sweep_dir: Path) -> list[str]:
    """``comparison.md`` / ``comparison.png`` over the runs, failed ones as rows; returns why not ranked.

    A sweep of one run (``--only=NAME``) has nothing to compare: no comparison is written.
    """
    if len(outcomes) < 2:
        reason = "a single run: there is nothing to rank it against"
        logging.info(f"No comparison: {reason}.")
        return [reason]
    provenance = {run.name: run.provenance for run in sweep.runs if run.provenance}
    report, figure, obstacles = compare_runs(
        [Path(outcome.run_dir) for outcome in outcomes if outcome.succeeded],
        sweep_dir,
        failed=[FailedRun(outcome.name, outcome.failure()) for outcome in outcomes if not outcome.succeeded],
        provenance=provenance,
    )
    for reason in obstacles:
        logging.warning(f"Not ranked: {reason}")
    logging.info(f"Comparison: {report}" + (f" and {figure}" if figure else ""))
    return obstacles
