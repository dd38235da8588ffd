"""Put scored runs side by side: one table, one figure, and a ranking only where it means something.

Runs are ranked (by calibrated score when every run has a null, else by CKNNA; within each
policy category, VLA / IL / RL, since CKNNA is not comparable across them) only when
their numbers are comparable: replayed runs of the same samples (``samples_digest``: the
episode, frame and state of every sample), with the same k, feature prep, neighbour exclusion
and eps. Simulation runs never are (each policy's rollouts visit states of their own); they are
shown side by side with their success rates. Otherwise the
table keeps the order given and says why it is not ranked: CKNNA moves with N, k/N and the
data, so ordering such runs would rank the data, not the policies. A sweep also hands over the
runs that failed (a row each, with why) and the provenance it knows of each run's weights.
"""

import itertools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lerobot_cknna.results.compare_sets import layer_section, other_metrics_section, token_group_section
from lerobot_cknna.results.layer_scoring import LAYERS_FILE
from lerobot_cknna.results.plots import (
    COMPARISON_FILE,
    LAYER_CURVES_FILE,
    SUCCESS_FILE,
    TOKEN_GROUPS_PLOT_FILE,
    plot_comparison,
    plot_layer_curves,
    plot_success,
    plot_token_groups,
)
from lerobot_cknna.results.provenance import Weights
from lerobot_cknna.results.report import (
    HEADLINE_COLUMNS,
    headline_cells,
    markdown_table,
    number,
    text_cell,
    weights_text,
)
from lerobot_cknna.results.scoring import RESULTS_FILE
from lerobot_cknna.results.success import (
    SuccessComparison,
    compare_success,
    correlation_text,
    simulated,
    success_section,
)
from lerobot_cknna.results.token_groups import TOKEN_GROUPS_FILE
from lerobot_cknna.utils.io import write_text_atomic

COMPARISON_REPORT_FILE = "comparison.md"
SETTINGS = ("k", "feature_prep", "exclusion", "eps")
NOT_SCORED = "—"
SUCCESS_COLUMN = "Success"


@dataclass
class FailedRun:
    """A run that produced no ``cknna.json``: its label and why (exit status, last lines of its log)."""

    label: str
    reason: str


def load_record(run_dir: Path) -> dict:
    """The ``cknna.json`` record of ``run_dir``.

    Raises:
        FileNotFoundError: when the run has not been scored.
        ValueError: when the file is not a ``cknna.json`` record.
    """
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"No {RESULTS_FILE} in {run_dir}. Score the run first: lerobot-cknna-score {run_dir}"
        )
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); re-score the run.") from error
    if not isinstance(record, dict) or "headline" not in record:
        raise ValueError(f"{path} is not a lerobot-cknna results file; re-score the run.")
    return record


def ranking_obstacles(labels: list[str], records: list[dict]) -> list[str]:
    """Why these runs cannot be ranked against each other; empty when they can."""
    if len(records) < 2:
        return [f"Only {len(records)} run produced a score: there is nothing to rank it against."]
    simulation_runs = [label for label, record in zip(labels, records, strict=True) if simulated(record)]
    if simulation_runs:
        return [
            f"{', '.join(simulation_runs)}: simulation runs cannot be ranked. Each policy's own rollouts visit "
            "different states, so each scores different samples. Replay the same dataset episodes for "
            "every policy (--dataset.*) to rank them."
        ]
    reasons = []
    undigested = [
        label for label, record in zip(labels, records, strict=True) if not record.get("samples_digest")
    ]
    if undigested:
        reasons.append(
            f"{', '.join(undigested)}: no samples digest (scored before schema 2), so it is unknown whether "
            "the samples match; re-score with lerobot-cknna-score."
        )
    if len({record["n"] for record in records}) > 1:
        sizes = ", ".join(f"{label} N={record['n']}" for label, record in zip(labels, records, strict=True))
        reasons.append(
            f"The runs scored different numbers of samples ({sizes}). CKNNA moves with N at fixed k "
            "(--cknna.n_curve shows how far), so the order would rank sample sizes, not policies; "
            "score every run on the same samples."
        )
    elif not undigested and len({record["samples_digest"] for record in records}) > 1:
        digests = ", ".join(
            f"{label} {record['samples_digest'][:12]}" for label, record in zip(labels, records, strict=True)
        )
        reasons.append(
            "The runs scored different samples: their episodes, frames or states differ "
            f"(samples digest {digests}). Replay the same dataset episodes for every policy to rank them."
        )
    for setting in SETTINGS:
        if len({json.dumps(record.get(setting), sort_keys=True) for record in records}) > 1:
            values = ", ".join(
                f"{label} {record.get(setting)}" for label, record in zip(labels, records, strict=True)
            )
            reasons.append(
                f"The runs used different {setting} ({values}); re-score them with the same options."
            )
    return reasons


def ranking_basis(records: list[dict]) -> str:
    """What the ranking sorts on: the calibrated score when every run has one, else CKNNA.

    Runs scored before schema 3 hold a mean-centred ``calibrated``, not the threshold-calibrated
    score, so they are ranked by CKNNA.
    """
    if all("threshold" in (record["headline"]["cknna"]["null"] or {}) for record in records):
        return "calibrated score"
    return "CKNNA"


def ranking_value(record: dict, basis: str) -> float:
    """A run's value on the :func:`ranking_basis`."""
    cknna = record["headline"]["cknna"]
    return cknna["null"]["calibrated"] if basis == "calibrated score" else cknna["value"]


def _overlapping_neighbours(labels: list[str], records: list[dict]) -> list[str]:
    notes = []
    for (label_a, a), (label_b, b) in itertools.pairwise(zip(labels, records, strict=True)):
        interval_a, interval_b = a["headline"]["cknna"]["interval"], b["headline"]["cknna"]["interval"]
        if (
            interval_a
            and interval_b
            and interval_a["low"] <= interval_b["high"]
            and interval_b["low"] <= interval_a["high"]
        ):
            notes.append(
                f"{label_a} and {label_b}: their CKNNA intervals overlap, so their order is not established."
            )
    return notes


def _success_cell(record: dict) -> str:
    """A simulation run's task success rate over its episodes, as LeRobot's evaluation counted it."""
    data = record["source"].get("data") or {}
    if not simulated(record) or data.get("pc_success") is None:
        return NOT_SCORED
    return f"{number(data['pc_success'], '.1f')}% of {data.get('n_episodes')} episodes"


def _failed_row(failure: FailedRun, width: int) -> list[str]:
    return [failure.label, f"**failed**: {text_cell(failure.reason)}", *[NOT_SCORED] * (width - 2)]


def _weights_section(
    labels: list[str], records: list[dict], failed: Sequence[FailedRun], provenance: dict[str, str]
) -> list[str]:
    lines = ["## Weights", ""]
    for label, record in zip(labels, records, strict=True):
        stated = provenance.get(label)
        lines.append(f"- {label}: {weights_text(record['source'])}" + (f". {stated}" if stated else ""))
    lines += [f"- {failure.label} (failed): {provenance[failure.label]}" for failure in failed
              if provenance.get(failure.label)]  # fmt: skip
    return [*lines, ""]


def _category(record: dict) -> str:
    return str(record["source"].get("category"))


def render_comparison(
    labels: list[str],
    records: list[dict],
    obstacles: list[str],
    basis: str | None,
    failed: Sequence[FailedRun] = (),
    provenance: dict[str, str] | None = None,
    layer_curves: dict[str, dict] | None = None,
    success: SuccessComparison | None = None,
    token_groups: dict[str, dict] | None = None,
) -> str:
    """The markdown of ``comparison.md``; ``labels`` and ``records`` are already in ranked order if ranked.

    Args:
        labels: the scored runs' labels.
        records: their ``cknna.json`` records.
        obstacles: why they are not ranked (:func:`ranking_obstacles`); empty when ranked.
        basis: what the ranking sorts on when ranked.
        failed: runs without a score, listed after the others with the reason.
        provenance: per label, what is known of the weights beyond ``cknna.json`` (a sweep's
            run files state it).
        layer_curves: per label, the run's ``layers.json`` record, for runs with layer taps.
        success: the runs' success rates and their correlation with CKNNA, if any run has one.
        token_groups: per label, the run's ``token_groups.json`` record, for runs with token groups.
    """
    lines = ["# CKNNA comparison", ""]
    if obstacles:
        lines += ["**Not ranked.** These runs cannot be ordered against each other:", ""]
        lines += [f"- {reason}" for reason in obstacles]
        rows = [[label, *headline_cells(record)] for label, record in zip(labels, records, strict=True)]
        columns = ("Run", *HEADLINE_COLUMNS)
        if any(simulated(record) for record in records):
            rows = [[*row, _success_cell(record)] for row, record in zip(rows, records, strict=True)]
            columns = (*columns, SUCCESS_COLUMN)
        rows += [_failed_row(failure, len(columns)) for failure in failed]
    else:
        categories = [_category(record) for record in records]
        within = (
            f" within each category ({', '.join(dict.fromkeys(categories))})"
            if len(set(categories)) > 1
            else ""
        )
        lines.append(
            f"Ranked by {basis}{within}, highest first: every run scored the same {records[0]['n']} samples "
            f"(samples digest `{records[0]['samples_digest'][:12]}`) at k={records[0]['k']} with the same "
            "prep, exclusion and eps."
        )
        ranks = [categories[:i].count(category) + 1 for i, category in enumerate(categories)]
        rows = [
            [str(rank), label, *headline_cells(record)]
            for rank, label, record in zip(ranks, labels, records, strict=True)
        ]
        columns = ("Rank", "Run", *HEADLINE_COLUMNS)
        rows += [[NOT_SCORED, *_failed_row(failure, len(columns) - 1)] for failure in failed]
    if failed:
        lines += [
            "",
            f"**{len(failed)} run(s) failed** and have no score: {', '.join(f.label for f in failed)}.",
        ]
    lines += ["", *markdown_table(columns, rows), ""]
    if records:
        lines += [f"![comparison]({COMPARISON_FILE})", ""]
    lines += _weights_section(labels, records, failed, provenance or {})
    lines += other_metrics_section(labels, records)
    if layer_curves:
        lines += layer_section(layer_curves)
    if token_groups:
        lines += token_group_section(token_groups)
    if success:
        lines += success_section(success)
    lines += ["## Caveats", ""]
    notes = [] if obstacles else _overlapping_neighbours(labels, records)
    categories = sorted({_category(record) for record in records})
    if len(categories) > 1:
        notes.append(
            f"The runs span categories ({', '.join(categories)}): a VLA's feat A holds vision and language, "
            "an IL or RL policy's vision only; CKNNA is not comparable across categories."
        )
    random = [
        label
        for label, record in zip(labels, records, strict=True)
        if record["source"].get("weights") == Weights.RANDOM
    ]
    if random:
        notes.append(
            f"Random weights ({', '.join(random)}): these numbers say nothing about a trained policy."
        )
    notes.append(
        "Chance is not 0: read each CKNNA against its own null (mean "
        + ", ".join(
            f"{label} {number((record['headline']['cknna']['null'] or {}).get('mean'))}"
            for label, record in zip(labels, records, strict=True)
        )
        + "). Values above 1 are an artifact of the masked kernels, not stronger alignment."
    )
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _write_success_figure(success: SuccessComparison | None, path: Path) -> None:
    """The success-vs-CKNNA scatter when there is a correlation; otherwise no figure (nor a stale one)."""
    if success is None or success.correlations is None:
        path.unlink(missing_ok=True)
        if success is not None:
            logging.warning(success.summary())
        return
    logging.info(success.summary())
    rated = success.rated
    plot_success(
        [run.label for run in rated],
        [run.cknna for run in rated],
        [run.success_rate for run in rated],
        path,
        f"Task success vs CKNNA over {len(rated)} runs "
        f"({100 * success.correlations['pearson'].level:.0f}% bootstrap intervals over runs)\n"
        f"{correlation_text(success.correlations)}",
    )


def _records_beside(labels: list[str], run_dirs: list[Path], name: str) -> dict[str, dict]:
    """Per label, the run's record ``name`` (``layers.json``, ``token_groups.json``), for the runs that have one."""
    return {
        label: json.loads((Path(run_dir) / name).read_text())
        for label, run_dir in zip(labels, run_dirs, strict=True)
        if (Path(run_dir) / name).is_file()
    }


def compare_runs(
    run_dirs: list[Path],
    output_dir: Path,
    failed: Sequence[FailedRun] = (),
    provenance: dict[str, str] | None = None,
    success_csv: Path | None = None,
) -> tuple[Path, Path | None, list[str]]:
    """Write ``comparison.md`` and ``comparison.png`` for ``run_dirs``.

    When runs have a task success rate (simulation runs their own, others from ``success_csv``),
    ``comparison.md`` gets a task success section (:mod:`lerobot_cknna.results.success`) and, with
    enough runs for a correlation, ``success_vs_cknna.png`` is written beside it.

    Args:
        run_dirs: scored runs (labelled by directory name, or full path when names repeat).
        output_dir: where the two files go.
        failed: runs that produced no score, shown as rows with the reason.
        provenance: per label, what is known of the run's weights beyond its ``cknna.json``.
        success_csv: success rates per run (format in :mod:`lerobot_cknna.results.success`).

    Returns:
        The two paths (no figure when no run was scored), and why the runs were not ranked
        (empty when they were).

    Raises:
        ValueError: fewer than two runs in all, a results file that cannot be read, or an
            invalid ``success_csv``.
        FileNotFoundError: a run without ``cknna.json``, or no ``success_csv`` file.
    """
    if len(run_dirs) + len(failed) < 2:
        raise ValueError(
            "Give at least two run directories to compare: lerobot-cknna-compare DIR_A DIR_B ..."
        )
    records = [load_record(run_dir) for run_dir in run_dirs]
    names = [Path(run_dir).name for run_dir in run_dirs]
    labels = names if len(set(names)) == len(names) else [str(run_dir) for run_dir in run_dirs]
    layer_curves = _records_beside(labels, run_dirs, LAYERS_FILE)
    token_groups = _records_beside(labels, run_dirs, TOKEN_GROUPS_FILE)
    success = compare_success(labels, run_dirs, records, success_csv)
    obstacles = ranking_obstacles(labels, records)
    basis = None
    if not obstacles:
        basis = ranking_basis(records)
        # CKNNA is not comparable across categories (VLA, IL, RL): each is ranked on its own.
        order = sorted(
            range(len(records)), key=lambda i: (_category(records[i]), -ranking_value(records[i], basis))
        )
        labels, records = [labels[i] for i in order], [records[i] for i in order]
    output_dir.mkdir(parents=True, exist_ok=True)
    report = output_dir / COMPARISON_REPORT_FILE
    text = render_comparison(
        labels, records, obstacles, basis, failed, provenance, layer_curves, success, token_groups
    )
    write_text_atomic(report, text)
    _write_success_figure(success, output_dir / SUCCESS_FILE)
    if not records:
        return report, None, obstacles
    figure_labels = [
        f"{record['source']['policy']} ({label})" if record["source"].get("policy") else label
        for label, record in zip(labels, records, strict=True)
    ]
    title = f"CKNNA, ranked by {basis}" if basis else "CKNNA (not ranked: see comparison.md)"
    figure = plot_comparison(figure_labels, records, output_dir / COMPARISON_FILE, title)
    if layer_curves:
        plot_layer_curves(layer_curves, output_dir / LAYER_CURVES_FILE)
    if token_groups:
        plot_token_groups(token_groups, output_dir / TOKEN_GROUPS_PLOT_FILE, "CKNNA by token group")
    return report, figure, obstacles
