"""Task success against CKNNA across runs: each run's success rate, where it came from, and the correlation.

A run's success rate is, first that applies:

1. its row in ``--success FILE.csv`` (it replaces a simulation's own rate, and says so);
2. a simulation run's ``source.data.pc_success`` in ``cknna.json``: LeRobot's own count over the
   evaluation's episodes (``eval_info.json``'s ``overall.pc_success``, recorded when the run was
   scored, so a copied run directory without ``eval_info.json`` keeps it);
3. a simulation run that recorded no overall rate (the evaluation stopped early and the episodes
   kept were scored): the share of its scored episodes in the ``outcome`` breakdown's
   ``success`` group.

A replay run has no success rate of its own: its features come from a dataset, not from the
policy's rollouts. The correlation takes each run's headline CKNNA (at the run's own k) against
its success rate, over the runs that have one, with Pearson and Spearman coefficients and
percentile bootstrap intervals over runs (:mod:`lerobot_cknna.results.correlation`). It needs
at least :data:`MIN_RUNS` runs; with fewer, the comparison says so and gives no coefficient.

The ``--success`` file is CSV (UTF-8, comma-separated) with a header row naming at least these
columns, in any order (other columns are ignored)::

    run,success_rate
    outputs/cknna/2026-11-24/10-00-00_act,0.62
    11-00-00_smolvla,0.875

* ``run``: a run directory as given on the command line, by its path (relative to the current
  directory, or absolute) or by its name when no other run has that name;
* ``success_rate``: the share of successful episodes, a fraction in [0, 1] (0.62, not 62).

A run may appear once; a row naming no run being compared is an error.
"""

import csv
from dataclasses import dataclass, field
from pathlib import Path

from lerobot_cknna.results.correlation import BootstrapCorrelation, bootstrap_correlations
from lerobot_cknna.results.plots import SUCCESS_FILE
from lerobot_cknna.results.report import markdown_table, metric_cell, number, text_cell

MIN_RUNS = 4
CSV_COLUMNS = ("run", "success_rate")
SIMULATION = "simulation"
SYMBOLS = {"pearson": "Pearson r", "spearman": "Spearman ρ"}


@dataclass(frozen=True)
class RunSuccess:
    """One run's point: its headline CKNNA record and its success rate, with where that came from.

    Attributes:
        label: the run's label in the comparison.
        cknna: the run's ``headline.cknna`` record (value, interval, null).
        k: the k of that headline.
        category: the policy category (VLA, IL, RL) from the run's source.
        success_rate: the share of successful episodes in [0, 1], or ``None``.
        origin: where the rate came from, or why there is none.
    """

    label: str
    cknna: dict
    k: int
    category: str
    success_rate: float | None
    origin: str


@dataclass(frozen=True)
class SuccessComparison:
    """Every run's success rate and, when at least :data:`MIN_RUNS` have one, the correlation with CKNNA.

    Attributes:
        runs: one entry per scored run, in the comparison's given order.
        correlations: ``{"pearson": ..., "spearman": ...}``, or ``None`` when there is none.
        no_correlation: why there is none (``None`` when there is).
        notes: what a reader must know before trusting the correlation.
    """

    runs: list[RunSuccess]
    correlations: dict[str, BootstrapCorrelation] | None
    no_correlation: str | None
    notes: list[str] = field(default_factory=list)

    @property
    def rated(self) -> list[RunSuccess]:
        """The runs with a success rate."""
        return [run for run in self.runs if run.success_rate is not None]

    def summary(self) -> str:
        """One line for the log: the coefficients with their intervals, or why there are none."""
        if self.correlations is None:
            return f"Task success: no correlation. {self.no_correlation}"
        return f"Task success across {len(self.rated)} runs: {correlation_text(self.correlations)}"


def simulated(record: dict) -> bool:
    """Whether the record's features come from the policy's own rollouts in simulation."""
    return record["source"].get("mode") == SIMULATION


def simulation_success(record: dict) -> tuple[float, str] | None:
    """A simulation run's own success rate in [0, 1] and where it came from; ``None`` for other runs."""
    if not simulated(record):
        return None
    data = record["source"].get("data") or {}
    if data.get("pc_success") is not None:
        return data["pc_success"] / 100, (
            f"simulation: LeRobot's evaluation of {data.get('n_episodes')} episodes (pc_success)"
        )
    outcome = record.get("groups", {}).get("outcome")
    if not outcome:
        return None
    succeeded = sum(group["n_episodes"] for group in outcome if group["name"] == "success")
    scored = sum(group["n_episodes"] for group in outcome)
    return succeeded / scored, (
        f"simulation: {succeeded} of the {scored} scored episodes succeeded "
        "(cknna.json outcome groups; the evaluation recorded no overall rate)"
    )


def _runs_named(name: str, run_dirs: list[Path]) -> list[int]:
    """The runs a CSV ``run`` cell names: the same directory as a path, else the same directory name."""
    target = Path(name).resolve()
    by_path = [i for i, run_dir in enumerate(run_dirs) if Path(run_dir).resolve() == target]
    return by_path or [i for i, run_dir in enumerate(run_dirs) if Path(run_dir).name == name]


def _rate(text: str, where: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        raise ValueError(
            f"{where}: success_rate {text!r} is not a number; give a fraction in [0, 1]."
        ) from None
    if not 0 <= rate <= 1:
        hint = f" (a percentage? write {rate / 100:g} for {text}%)" if 1 < rate <= 100 else ""
        raise ValueError(f"{where}: success_rate {text} is outside [0, 1]{hint}.")
    return rate


def read_success_csv(path: Path, run_dirs: list[Path]) -> dict[int, float]:
    """The ``--success`` file's rates, by index into ``run_dirs`` (format in the module docstring).

    Args:
        path: the CSV file.
        run_dirs: the run directories being compared, as given on the command line.

    Returns:
        ``{run index: success rate}`` for the runs the file names.

    Raises:
        FileNotFoundError: no such file.
        ValueError: no header or rows, a missing column, a run named twice or not compared, a name
            that fits several runs, or a rate that is not a number in [0, 1].
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--success {path}: no such file.")
    rates, lines = {}, {}
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file, skipinitialspace=True)
        header = [name.strip() for name in reader.fieldnames or []]
        missing = [column for column in CSV_COLUMNS if column not in header]
        if missing:
            raise ValueError(
                f"--success {path}: no column {', '.join(missing)} in the header ({', '.join(header) or 'empty'}). "
                f"The first line must name the columns: {','.join(CSV_COLUMNS)}."
            )
        reader.fieldnames = header
        for row in reader:
            where = f"--success {path}, line {reader.line_num}"
            name = (row["run"] or "").strip()
            if not name:
                raise ValueError(f"{where}: the run is empty; give a run directory's path or name.")
            matches = _runs_named(name, run_dirs)
            if not matches:
                raise ValueError(
                    f"{where}: run {name!r} is none of the runs compared "
                    f"({', '.join(str(run_dir) for run_dir in run_dirs)}); name each by its path or directory name."
                )
            if len(matches) > 1:
                raise ValueError(
                    f"{where}: run {name!r} names {len(matches)} runs "
                    f"({', '.join(str(run_dirs[i]) for i in matches)}); give its path instead."
                )
            (index,) = matches
            if index in rates:
                raise ValueError(f"{where}: run {name!r} already has a success rate (line {lines[index]}).")
            rates[index] = _rate((row["success_rate"] or "").strip(), where)
            lines[index] = reader.line_num
    if not rates:
        raise ValueError(
            f"--success {path} has a header but no rows: add a line per run ({','.join(CSV_COLUMNS)})."
        )
    return rates


def _run_success(label: str, record: dict, from_csv: float | None, success_csv: Path | None) -> RunSuccess:
    own = simulation_success(record)
    if from_csv is not None:
        rate = from_csv
        origin = f"--success {success_csv}"
        if own is not None:
            origin += f" (replaces the simulation's {number(100 * own[0], '.1f')}%)"
    elif own is not None:
        rate, origin = own
    elif simulated(record):
        rate, origin = None, "none: the simulation recorded no success; give it with --success"
    else:
        rate, origin = None, "none: a replay run has no rollouts of its own; give its rate with --success"
    category = str(record["source"].get("category"))
    return RunSuccess(label, record["headline"]["cknna"], record["k"], category, rate, origin)


def _no_correlation(rated: list[RunSuccess]) -> str | None:
    """Why the rated runs give no correlation; ``None`` when they do."""
    if len(rated) < MIN_RUNS:
        return (
            f"Only {len(rated)} run{'s' if len(rated) != 1 else ''} with a success rate: a correlation "
            f"across runs needs at least {MIN_RUNS}. Simulation runs bring their own; give the others' "
            f"with --success FILE.csv (columns {', '.join(CSV_COLUMNS)})."
        )
    if len({run.success_rate for run in rated}) == 1:
        return f"Every run has the same success rate ({number(rated[0].success_rate)}): no correlation is defined."
    if len({run.cknna["value"] for run in rated}) == 1:
        return "Every run has the same CKNNA: no correlation is defined."
    return None


def _notes(rated: list[RunSuccess]) -> list[str]:
    notes = []
    categories = sorted({run.category for run in rated})
    if len(categories) > 1:
        notes.append(
            f"The runs span categories ({', '.join(categories)}): CKNNA is not comparable across them, "
            "so this correlation mixes scales."
        )
    ks = sorted({run.k for run in rated})
    if len(ks) > 1:
        notes.append(f"CKNNA was taken at different k ({', '.join(map(str, ks))}); it moves with k.")
    return notes


def compare_success(
    labels: list[str], run_dirs: list[Path], records: list[dict], success_csv: Path | None = None
) -> SuccessComparison | None:
    """Join every run's success rate to its headline CKNNA and correlate them across runs.

    Args:
        labels: the runs' labels in the comparison.
        run_dirs: their directories, as given on the command line (what ``--success`` rows name).
        records: their ``cknna.json`` records.
        success_csv: the ``--success`` file, if any.

    Returns:
        The comparison, or ``None`` when no run has a success rate and no file was given.

    Raises:
        FileNotFoundError, ValueError: a ``--success`` file that is missing or invalid
            (:func:`read_success_csv`).
    """
    from_csv = read_success_csv(success_csv, run_dirs) if success_csv is not None else {}
    runs = [
        _run_success(label, record, from_csv.get(i), success_csv)
        for i, (label, record) in enumerate(zip(labels, records, strict=True))
    ]
    rated = [run for run in runs if run.success_rate is not None]
    if not rated:
        return None
    reason = _no_correlation(rated)
    if reason is not None:
        return SuccessComparison(runs, None, reason)
    correlations = bootstrap_correlations(
        [run.cknna["value"] for run in rated], [run.success_rate for run in rated]
    )
    return SuccessComparison(runs, correlations, None, _notes(rated))


def correlation_text(correlations: dict[str, BootstrapCorrelation]) -> str:
    """``Pearson r = +0.717 [+0.210, +0.930], Spearman ρ = ...``: each coefficient with its interval."""
    parts = []
    for method, result in correlations.items():
        interval = "" if result.low is None else f" [{result.low:+.3f}, {result.high:+.3f}]"
        parts.append(f"{SYMBOLS[method]} = {result.value:+.3f}{interval}")
    return ", ".join(parts)


def success_section(success: SuccessComparison) -> list[str]:
    """The ``## Task success`` section of ``comparison.md``: the coefficients or why none, and every run's source."""
    lines = ["## Task success", ""]
    if success.correlations is None:
        lines.append(f"**No correlation.** {success.no_correlation}")
    else:
        pearson = success.correlations["pearson"]
        lines.append(
            f"Across the {len(success.rated)} runs with a success rate, headline CKNNA (at each run's k) and "
            f"task success correlate with {correlation_text(success.correlations)} "
            f"({100 * pearson.level:.0f}% percentile bootstrap over runs: {pearson.resamples} resamples, "
            f"seed {pearson.seed}; {pearson.dropped} dropped because every run drawn had the same CKNNA or the "
            "same success rate; Spearman ranks ties by their average)."
        )
    rows = [
        [run.label, f"{metric_cell(run.cknna)} (k={run.k})", number(run.success_rate), text_cell(run.origin)]
        for run in success.runs
    ]
    lines += ["", *markdown_table(("Run", "CKNNA", "Success rate", "From"), rows), ""]
    if success.correlations is not None:
        lines += [f"![success vs CKNNA]({SUCCESS_FILE})", ""]
    lines += [f"- {note}" for note in success.notes]
    return [*lines, ""] if success.notes else lines
