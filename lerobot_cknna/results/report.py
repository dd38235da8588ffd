"""``report.md``: a run's ``cknna.json`` as tables and sentences a person reads first.

The headline table has the columns of the original multi-model study (policy, type,
category, feat A dim, CKNNA and mutual kNN at k, hook path, weights) plus what that table
lacked: N, the calibrated score (first: CKNNA read against its permutation null, see
:mod:`lerobot_cknna.metrics.calibration`), the interval and the null. Then the scores over k,
the per-task / per-suite / success-vs-failure tables, the scores over horizons and over sample
size (when asked for), the per-layer scores (when the run has layer taps), the token groups' scores
(when the run has them), the figures, and the caveats in words.
Every number is the record's, rounded for reading; ``cknna.json`` keeps full precision.
"""

from pathlib import Path

from lerobot_cknna.results.provenance import Weights
from lerobot_cknna.utils.io import write_text_atomic

REPORT_FILE = "report.md"
MISSING = "n/a"
HEADLINE_COLUMNS = (
    "Policy",
    "Type",
    "Category",
    "feat A dim",
    "N (episodes)",
    "k",
    "Calibrated",
    "p",
    "CKNNA [interval]",
    "Null threshold",
    "Null mean ± std",
    "Mutual kNN [interval]",
    "Hook path",
    "Weights",
)
HEADLINE_METRICS = ("cknna", "mutual_knn")
SCORE_COLUMNS = (
    "Calibrated",
    "p",
    "CKNNA [interval]",
    "Null threshold",
    "Null mean ± std",
    "Mutual kNN [interval]",
)
BREAKDOWN_TITLES = {
    "task": "By task",
    "task_suite": "By task suite",
    "outcome": "Successful vs failed episodes",
}


def number(value: float | None, spec: str = ".3f") -> str:
    """``value`` formatted with ``spec``; ``n/a`` when there is none."""
    return MISSING if value is None else format(value, spec)


def metric_cell(result: dict | None) -> str:
    """``0.732 [0.672, 0.792]``: a metric's value and, when computed, its interval."""
    if result is None:
        return MISSING
    text = number(result["value"])
    if result["interval"]:
        text += f" [{number(result['interval']['low'])}, {number(result['interval']['high'])}]"
    return text


def null_and_value_cells(result: dict) -> list[str]:
    """One metric's calibrated score, p, value [interval], null threshold and null mean ± std."""
    null = result["null"] or {}
    return [
        number(null.get("calibrated")),
        number(null.get("p_value"), ".3g"),
        metric_cell(result),
        number(null.get("threshold")),
        f"{number(null['mean'])} ± {number(null['std'])}" if null else MISSING,
    ]


def score_cells(results: dict) -> list[str]:
    """The :data:`SCORE_COLUMNS` cells of ``{"cknna": ..., "mutual_knn": ...}`` records at one k."""
    return [*null_and_value_cells(results["cknna"]), metric_cell(results["mutual_knn"])]


def other_metrics_section(record: dict) -> list[str]:
    """The ``--cknna.metrics`` beyond CKNNA and mutual kNN, one row each, with their own null and interval."""
    rows = [
        [metric, MISSING if result["k"] is None else str(result["k"]), *null_and_value_cells(result)]
        for metric, result in record["headline"].items()
        if metric not in HEADLINE_METRICS
    ]
    if not rows:
        return []
    notes = [
        f"- {metric}: {warning}"
        for metric, result in record["headline"].items()
        if metric not in HEADLINE_METRICS
        for warning in result["warnings"]
    ]
    svcca = record["headline"].get("svcca")
    kept = [f"SVCCA kept {svcca['components']} directions per side (it has no k)."] if svcca else []
    return [
        "Scored on the same samples with the same null and interval as the headline "
        "(platonic-rep's definitions). " + " ".join(kept),
        "",
        *markdown_table(
            ("Metric", "k", "Calibrated", "p", "Value [interval]", "Null threshold", "Null mean ± std"), rows
        ),
        *([""] + notes if notes else []),
    ]


def text_cell(value) -> str:
    """A free-text table cell: ``n/a`` when empty, pipes escaped."""
    return MISSING if value in (None, "") else str(value).replace("|", "\\|").replace("\n", " ")


def weights_text(source: dict) -> str:
    """Weights provenance with its free-text note, e.g. ``other domain (pusht)``."""
    weights = source.get("weights")
    note = source.get("weights_note")
    if weights and note:
        return f"{weights} ({note})"
    return weights or note or MISSING


def headline_cells(record: dict) -> list[str]:
    """One row of :data:`HEADLINE_COLUMNS` for a ``cknna.json`` record."""
    source = record["source"]
    hook = source.get("hook_path")
    return [
        text_cell(source.get("policy")),
        text_cell(source.get("policy_type")),
        text_cell(source.get("category")),
        str(record["feat_a_dim"]),
        f"{record['n']} ({record['n_episodes']})",
        str(record["k"]),
        *score_cells(record["headline"]),
        f"`{hook}`" if hook else MISSING,
        text_cell(weights_text(source)),
    ]


def markdown_table(columns, rows: list[list[str]]) -> list[str]:
    """A GitHub-flavoured markdown table of ``rows`` under ``columns``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def reading(record: dict) -> str:
    """One or two sentences: the calibrated score first, then CKNNA with its interval and its null."""
    result = record["headline"]["cknna"]
    null = result["null"]
    scope = f"At k={record['k']} over N={record['n']} samples ({record['n_episodes']} episodes), "
    value = f"CKNNA is {number(result['value'])}"
    if result["interval"]:
        interval = result["interval"]
        value += (
            f" ({100 * interval['level']:.0f}% interval {number(interval['low'])} to "
            f"{number(interval['high'])}, jackknife over episodes)"
        )
    if not null:
        return scope + value + ". No permutation null was computed, so there is no reference for chance."
    verdict = "above chance" if null["calibrated"] > 0 else "not distinguishable from chance"
    return (
        scope
        + f"the calibrated CKNNA is {number(null['calibrated'])} (p = {number(null['p_value'], '.3g')}; "
        f"0: no higher than chance reaches with probability {null['alpha']:g}, 1: identical "
        f"neighbourhoods): {verdict} at the {100 * null['alpha']:g}% level. "
        + value
        + f", against a {null['unit']}-permutation null of {number(null['mean'])} ± {number(null['std'])} "
        f"whose threshold is {number(null['threshold'])}."
    )


def _settings_lines(record: dict) -> list[str]:
    head = record["headline"]["cknna"]
    lines = [
        f"- Feature prep: feat A `{record['feature_prep']['feat_a']}`, "
        f"feat B (state, {record['feat_b_dim']}-D) `{record['feature_prep']['feat_b']}`",
        f"- Neighbour exclusion: {record['exclusion'] or 'none (self only)'}; CKNNA eps {record['eps']:g}",
        f"- Metrics computed on: {record.get('metrics_device', 'cpu')}",
    ]
    if head["null"]:
        null = head["null"]
        kind = "every ordering (exact)" if null["exact"] else "random draws"
        lines.append(
            f"- Null: {len(null['samples'])} {null['unit']} permutations, {kind}; threshold at "
            f"alpha = {null['alpha']:g}"
        )
    if head["interval"]:
        lines.append(f"- Interval: {head['interval']['method']}, {head['interval']['groups']} groups")
    if "target" in record:
        target = record["target"]
        lines.append(f"- Feat B: {target['feat_b']}; {target['n_dropped']} samples dropped for lacking it")
        lines.append(f"- Sampling: {record['sampling']}")
    if record.get("samples_digest"):
        lines.append(f"- Samples digest: `{record['samples_digest'][:16]}`")
    return lines


def _over_k_table(record: dict) -> list[str]:
    rows = [
        [str(cknna["k"]), *score_cells({"cknna": cknna, "mutual_knn": mutual})]
        for cknna, mutual in zip(record["k_sweep"]["cknna"], record["k_sweep"]["mutual_knn"], strict=True)
    ]
    return markdown_table(("k", *SCORE_COLUMNS), rows)


def subset_table(heading: str, labels: list[str], subsets: list[dict]) -> list[str]:
    """One row per separately scored set of samples (a group, a horizon, a sample size), skipped ones with why."""
    rows = []
    for label, subset in zip(labels, subsets, strict=True):
        counts = [text_cell(label), str(subset["n"]), str(subset["n_episodes"])]
        if subset["skipped"]:
            rows.append(
                counts + [f"skipped: {text_cell(subset['skipped'])}"] + [""] * (len(SCORE_COLUMNS) - 1)
            )
        else:
            rows.append(counts + score_cells(subset))
    return markdown_table((heading, "N", "Episodes", *SCORE_COLUMNS), rows)


def group_table(groups: list[dict]) -> list[str]:
    """A breakdown's table: one row per group, skipped groups with their reason."""
    return subset_table("Group", [group["name"] for group in groups], groups)


def horizon_section(record: dict) -> list[str]:
    """The table of ``--cknna.horizons``: one row per horizon, with feat B and the samples it dropped."""
    horizons = record["horizons"]
    labels = [f"h={item['horizon']}: {item['feat_b']} ({item['n_dropped']} dropped)" for item in horizons]
    return [
        f"Feat A at step t against feat B h steps later in the same episode, at k={record['k']}. Samples "
        "without a state at every frame feat B needs are dropped; each row is scored on the samples it "
        "keeps, with its own null and interval.",
        "",
        *subset_table("Horizon", labels, horizons),
    ]


def n_curve_section(record: dict) -> list[str]:
    """The table of ``--cknna.n_curve``: one row per nested subset of whole episodes."""
    points = record["n_curve"]
    return [
        f"Nested subsets of whole episodes (one shuffle; each subset is the first episodes holding at least "
        f"the N asked), scored at k={record['k']}. At fixed k CKNNA moves with N: compare runs at the same N.",
        "",
        *subset_table("N asked", [str(point["n_requested"]) for point in points], points),
    ]


def _all_cknna_values(record: dict) -> list[float]:
    values = [result["value"] for result in record["k_sweep"]["cknna"]]
    for groups in record.get("groups", {}).values():
        values += [group["cknna"]["value"] for group in groups if group["cknna"] is not None]
    return values


def caveats(record: dict) -> list[str]:
    """What a reader must keep in mind, in words, for this record."""
    source = record["source"]
    above_one = [value for value in _all_cknna_values(record) if value > 1]
    notes = [
        (
            f"{len(above_one)} CKNNA value(s) in this report exceed 1 (up to {max(above_one):.3f}). "
            if above_one
            else "No CKNNA value in this report exceeds 1. "
        )
        + "A value above 1 is an artifact of the masked kernels (not positive semi-definite; often "
        "un-centred features such as raw state), not stronger-than-perfect alignment; prep "
        "`center_l2` or `standardize_l2` avoids it."
    ]
    null = record["headline"]["cknna"]["null"]
    chance = (
        f"Here the null mean is {null['mean']:.3f} at k/N = {record['k']}/{record['n']}. "
        if null
        else "No null was computed for this run. "
    )
    notes.append(
        "Chance is not 0: with k/N large, independent features score far above 0. "
        + chance
        + "Read the calibrated score, and compare runs only at the same k on the same samples."
    )
    notes.append(
        "Compare within a category only: a VLA's feat A holds vision and language, an IL or RL "
        "policy's feat A vision only, so a higher CKNNA across categories may reflect capacity, "
        f"not better alignment. This run's category: {source.get('category') or 'not recorded'}."
    )
    weights = source.get("weights")
    if weights is None:
        notes.append("The weights' provenance was not recorded: the number cannot be tied to a training.")
    elif weights == Weights.RANDOM:
        notes.append(
            "The weights are random: this number describes an untrained architecture and says "
            "nothing about a trained policy."
        )
    elif weights == Weights.OTHER_DOMAIN:
        notes.append(
            "The weights were trained on another domain than this data: the number says how that "
            "representation transfers, not how the policy would align after training on this task."
        )
    if record["exclusion"] is None:
        notes.append(
            "Neighbours may come from the same episode, where consecutive frames are near-duplicates; "
            "re-score with `--cknna.exclude_window` to ask whether the representations agree across "
            "episodes."
        )
    return notes


def best_layer_sentence(layer_record: dict) -> str:
    """Which layer is best, said only through ``max_over_layers`` (the null of the maximum over layers)."""
    best = layer_record["max_over_layers"]["cknna"]
    if best is None:
        highest = max(layer_record["layers"], key=lambda layer: layer["cknna"]["value"])
        return (
            f"The highest CKNNA is at depth {highest['index']} (`{highest['path']}`): "
            f"{number(highest['cknna']['value'])}; without a null no layer is called best."
        )
    null = best["null"]
    against = (
        f"against the null of the maximum over layers (each pairing's highest layer): calibrated "
        f"{number(null['calibrated'])}, threshold {number(null['threshold'])}, "
        f"p = {number(null['p_value'], '.3g')}"
    )
    where = f"depth {best['layer']} (`{best['path']}`): {number(best['value'])}"
    if null["calibrated"] > 0:
        return (
            f"The best layer by CKNNA is {where}, above what the highest layer reaches by chance ({against})."
        )
    return (
        f"The highest CKNNA is at {where}, not above what the highest layer reaches by chance "
        f"({against}), so no layer is called best."
    )


def null_phrase(record: dict, pairing: str = "") -> str:
    """How a record's null was drawn, e.g. ``200 permutations``, with ``pairing`` said after it."""
    return (
        f"{record['n_permutations']} permutations{pairing}"
        if record["n_permutations"]
        else "no permutation null"
    )


def layer_section(layer_record: dict) -> list[str]:
    """The per-layer section: one row per layer of a ``layers.json`` record, and what it says."""
    rows = [
        [
            str(layer["index"]) + (" (feat A)" if layer["main_hook"] else ""),
            f"`{layer['path']}`",
            layer["read"],
            str(layer["feat_dim"]),
            *score_cells(layer),
        ]
        for layer in layer_record["layers"]
    ]
    null = null_phrase(layer_record)
    lines = [
        f"CKNNA and mutual kNN at k={layer_record['k']} at every layer along the path to the hooked module, "
        f"scored like the headline ({null}, the same feature prep and neighbour exclusion). `input` rows "
        "read the residual stream entering a decoder layer, `output` rows a module's output; token "
        "sequences are averaged over the same tokens as feat A, spatial maps over H x W. "
        + best_layer_sentence(layer_record),
        "",
    ]
    return lines + markdown_table(("Depth", "Module", "Read", "Dim", *SCORE_COLUMNS), rows)


def tokens_cell(counts: dict | None) -> str:
    """``36.5 (33-40)``: a token group's mean tokens per sample (fewest-most); ``n/a`` when not counted."""
    if counts is None:
        return MISSING
    return f"{number(counts['mean'], '.1f')} ({counts['min']}-{counts['max']})"


def token_group_section(group_record: dict) -> list[str]:
    """The token groups' section: feat A, its image tokens and its language tokens, one row each."""
    rows = [
        [
            group["group"] + (" (feat A)" if group["group"] == "both" else ""),
            str(group["feat_dim"]),
            tokens_cell(group.get("tokens_per_sample")),
            *score_cells(group),
        ]
        for group in group_record["groups"]
    ]
    null = null_phrase(group_record, ", the same pairings for every group")
    lines = [
        f"`{group_record['path']}` averaged over its image tokens alone (those holding a camera's "
        "embedding) and over its language tokens alone (every other token feat A averages), as the "
        f"token mask the capture reads splits them; `both` is feat A. Scored at k={group_record['k']} "
        f"like the headline ({null}, the same feature prep and neighbour exclusion).",
    ]
    if group_record["note"]:
        lines[0] += " " + group_record["note"]
    return [*lines, "", *markdown_table(("Tokens", "Dim", "Tokens per sample", *SCORE_COLUMNS), rows)]


def replay_parity_lines(parity: dict) -> list[str]:
    """The report's account of ``--cknna.check_replay``: replayed recorded frames against the simulation."""
    verdict = "agree" if parity["agrees"] else "do not agree"
    return [
        f"Every sample's recorded frame (`{parity['recording']}`) was sent again through the encode-only "
        f"path of replay. Over {parity['n']} samples, replay and simulation {verdict} within "
        f"{parity['tolerance']:.0e} relative: feat A differs by at most {parity['max_rel_diff_feat_a']:.2e} "
        f"of its norm (min cosine {parity['min_cosine_feat_a']:.6f}), feat B by at most "
        f"{parity['max_abs_diff_feat_b']:.2e}; {parity['missing']} samples had no recorded frame."
    ]


def render_report(
    record: dict, figures: list[Path] = (), layer_record: dict | None = None, group_record: dict | None = None
) -> str:
    """The markdown text of ``report.md`` for ``record``; ``figures`` are linked by file name.

    ``layer_record``, a ``layers.json`` record, adds the section on the layers; ``group_record``, a
    ``token_groups.json`` record, the section on the token groups.
    """
    source = record["source"]
    lines = [f"# CKNNA: {text_cell(source.get('policy'))}", "", reading(record), ""]
    lines += markdown_table(HEADLINE_COLUMNS, [headline_cells(record)])
    lines += ["", *_settings_lines(record), "", "## Where the features came from", ""]
    lines += [f"- {key}: {text_cell(value)}" for key, value in source.items()] or ["- not recorded"]
    lines += ["", "## Scores over k", "", *_over_k_table(record)]
    other_metrics = other_metrics_section(record)
    if other_metrics:
        lines += ["", f"## Other metrics (k={record['k']})", "", *other_metrics]
    for breakdown, groups in record.get("groups", {}).items():
        lines += ["", f"## {BREAKDOWN_TITLES.get(breakdown, breakdown)} (k={record['k']})", ""]
        lines += group_table(groups)
    if record.get("horizons"):
        lines += ["", "## Over horizons", "", *horizon_section(record)]
    if record.get("n_curve"):
        lines += ["", "## Over sample size", "", *n_curve_section(record)]
    if layer_record is not None:
        lines += ["", "## Per-layer scores", "", *layer_section(layer_record)]
    if group_record is not None:
        lines += ["", "## Token groups", "", *token_group_section(group_record)]
    if "replay_parity" in record:
        lines += ["", "## Replay parity", "", *replay_parity_lines(record["replay_parity"])]
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{Path(figure).stem}]({Path(figure).name})" for figure in figures]
    lines += ["", "## Caveats", "", *(f"- {note}" for note in caveats(record))]
    if record["warnings"]:
        lines += ["", "## Warnings", "", *(f"- {note}" for note in record["warnings"])]
    return "\n".join(lines) + "\n"


def write_report(
    run_dir: Path,
    record: dict,
    figures: list[Path] = (),
    layer_record: dict | None = None,
    group_record: dict | None = None,
) -> Path:
    """Write ``report.md`` for ``record`` into ``run_dir`` atomically; the other records as :func:`render_report`.

    Returns:
        The report's path.
    """
    path = Path(run_dir) / REPORT_FILE
    text = render_report(record, figures, layer_record, group_record)
    write_text_atomic(path, text)
    return path
