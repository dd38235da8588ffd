"""The comparison's sections on what each run scored beside its headline: layers, token groups, other metrics.

Each section shows only the runs that have it, one block of rows per run, and reads each run on
its own: a run's layers, token groups and other metrics are scored on that run's samples with
that run's null, so they compare within the run. Across runs they are as comparable as the
headlines are (``comparison.md`` says whether the runs can be ranked).
"""

from lerobot_cknna.results.plots import LAYER_CURVES_FILE, TOKEN_GROUPS_PLOT_FILE
from lerobot_cknna.results.report import (
    HEADLINE_METRICS,
    MISSING,
    SCORE_COLUMNS,
    markdown_table,
    null_and_value_cells,
    null_phrase,
    number,
    score_cells,
    tokens_cell,
)


def _best_layer_cell(record: dict) -> str:
    """The best layer by CKNNA, only where it beats the null of the maximum over layers."""
    best = record.get("max_over_layers", {}).get("cknna")
    if best is None:
        return "no null of the maximum over layers: none called best"
    null = best["null"]
    against = f"calibrated {number(null['calibrated'])}, p = {number(null['p_value'], '.3g')}"
    if null["calibrated"] == 0:
        return f"none above chance (highest `{best['path']}`, {against})"
    return (
        f"`{best['path']}` ({best['layer']}, depth {best['depth']:.2f}): {number(best['value'])}, {against}"
    )


def layer_section(layer_curves: dict[str, dict]) -> list[str]:
    """Which layer of each policy's path to the hooked module is best (if any), and the curves' figure.

    Args:
        layer_curves: run label -> its ``layers.json`` record.
    """
    rows = []
    for label, record in layer_curves.items():
        layers = record["layers"]
        hooked = layers[record["main_hook_index"]]
        rows.append([
            label,
            str(len(layers)),
            _best_layer_cell(record),
            f"`{hooked['path']}`: {number(hooked['cknna']['value'])}",
        ])  # fmt: skip
    return [
        "## Per-layer scores",
        "",
        "CKNNA at every layer on the path to the hooked module, one curve per policy (x: relative depth, "
        "0 = first layer, 1 = the hooked module, marked with a star). Read each curve on its own: depths "
        "of different architectures do not correspond. A layer is called best only when the highest "
        "CKNNA over the layers beats the null of that maximum (each pairing's highest layer).",
        "",
        *markdown_table(("Run", "Layers", "Best layer (max over layers)", "Hooked module"), rows),
        "",
        f"![layer curves]({LAYER_CURVES_FILE})",
        "",
    ]


def token_group_section(group_records: dict[str, dict]) -> list[str]:
    """Feat A, its image tokens and its language tokens, three rows per run with token groups, and their figure.

    Args:
        group_records: run label -> its ``token_groups.json`` record.
    """
    rows = [
        [
            label,
            group["group"] + (" (feat A)" if group["group"] == "both" else ""),
            tokens_cell(group.get("tokens_per_sample")),
            *score_cells(group),
        ]
        for label, record in group_records.items()
        for group in record["groups"]
    ]
    notes = [f"- {label}: {record['note']}" for label, record in group_records.items() if record["note"]]
    nulls = "; ".join(
        f"{label} {null_phrase(record, ', the same pairings for its three groups')}"
        for label, record in group_records.items()
    )
    return [
        "## Token groups",
        "",
        "Each run's hooked module averaged over its image tokens alone and over its language tokens "
        "alone, as the token mask the capture reads splits them (`both` is feat A), each scored like "
        f"the run's headline ({nulls}). Whether a run's image tokens align better than its language "
        "tokens is read within the run; across runs, only as far as their headlines compare.",
        "",
        *markdown_table(("Run", "Tokens", "Tokens per sample", *SCORE_COLUMNS), rows),
        *([""] + notes if notes else []),
        "",
        f"![token groups]({TOKEN_GROUPS_PLOT_FILE})",
        "",
    ]


def other_metrics_section(labels: list[str], records: list[dict]) -> list[str]:
    """The ``--cknna.metrics`` beyond CKNNA and mutual kNN, one row per run and metric; empty when no run has any.

    Args:
        labels: the runs' labels.
        records: their ``cknna.json`` records.
    """
    rows = [
        [label, metric, MISSING if result["k"] is None else str(result["k"]), *null_and_value_cells(result)]
        for label, record in zip(labels, records, strict=True)
        for metric, result in record["headline"].items()
        if metric not in HEADLINE_METRICS
    ]
    if not rows:
        return []
    columns = (
        "Run",
        "Metric",
        "k",
        "Calibrated",
        "p",
        "Value [interval]",
        "Null threshold",
        "Null mean ± std",
    )
    return [
        "## Other metrics",
        "",
        "The runs' other `--cknna.metrics` (platonic-rep's definitions), each scored on the run's samples "
        "with the run's null and interval, as its headline.",
        "",
        *markdown_table(columns, rows),
        "",
    ]
