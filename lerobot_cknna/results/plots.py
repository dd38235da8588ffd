"""Figures of a run (PNG, rendered with matplotlib's Agg canvas; needs the ``plots`` extra).

* ``cknna_k_sweep.png``: CKNNA and mutual kNN over k, each with its interval and the band
  where the permutation null puts chance;
* ``cknna_groups.png``: one row per task (and task suite, and successful vs failed
  episodes), the value with its interval against the group's own null band;
* ``cknna_horizons.png`` (with ``--cknna.horizons``): CKNNA and mutual kNN over the horizon h,
  each with its interval and null band;
* ``cknna_n_curve.png`` (with ``--cknna.n_curve``): CKNNA with its interval and null band, and
  the null record's calibrated score, over N on nested subsets of episodes;
* ``feat_a_projection.png``: feat A's first two principal components, each sample coloured
  by the state dimension with the largest variance, with feat B's beside it for comparison;
* ``success_vs_cknna.png`` (``lerobot-cknna-compare``): task success rate over headline CKNNA,
  one labelled point per run;
* ``layers.png`` (with ``--cknna.layers=true``): CKNNA and mutual kNN at every layer along
  the path to the hooked module; :func:`plot_layer_curves` draws several policies' sweeps
  in one figure over relative depth;
* ``token_groups.png`` (with ``--cknna.token_groups=true``, and in ``lerobot-cknna-compare``):
  CKNNA of feat A, its image tokens and its language tokens, one row each per run, against
  their nulls.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with an Agg canvas, never
through ``pyplot``, so importing this module leaves the caller's matplotlib backend alone.
"""

import textwrap
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from lerobot_cknna.results.features_io import SavedFeatures
from lerobot_cknna.results.report import BREAKDOWN_TITLES
from lerobot_cknna.utils.io import write_atomic

K_SWEEP_FILE = "cknna_k_sweep.png"
GROUPS_FILE = "cknna_groups.png"
PROJECTION_FILE = "feat_a_projection.png"
COMPARISON_FILE = "comparison.png"
SUCCESS_FILE = "success_vs_cknna.png"
LAYERS_PLOT_FILE = "layers.png"
HORIZONS_FILE = "cknna_horizons.png"
N_CURVE_FILE = "cknna_n_curve.png"
LAYER_CURVES_FILE = "layer_curves.png"
TOKEN_GROUPS_PLOT_FILE = "token_groups.png"
DPI = 150
NULL_LEVEL = 0.95
MIN_SAMPLES_FOR_QUANTILES = 20
NULL_BAND_LABEL = (
    f"null: central {100 * NULL_LEVEL:.0f}% (mean ± 2 std below {MIN_SAMPLES_FOR_QUANTILES} draws)"
)
VALUE_COLOR = "#1f5fa6"
NULL_COLOR = "#9aa0a6"
THRESHOLD_LABEL = "null threshold (calibrated score 0 at or below)"
GROUP_COLORS = {"success": "#2e8b57", "failure": "#c0392b"}
TOKEN_GROUP_COLORS = {"both": VALUE_COLOR, "image": "#d35400", "language": "#6c3483"}
METRIC_TITLES = {"cknna": "CKNNA", "mutual_knn": "Mutual kNN"}


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=DPI))
    return path


def null_band(null: dict) -> tuple[float, float]:
    """Where chance lies: the central 95% of the null samples, or mean ± 2 std when there are few."""
    if len(null["samples"]) >= MIN_SAMPLES_FOR_QUANTILES:
        tail = (1 - NULL_LEVEL) / 2
        low, high = np.quantile(null["samples"], [tail, 1 - tail])
        return float(low), float(high)
    return null["mean"] - 2 * null["std"], null["mean"] + 2 * null["std"]


def _error(result: dict) -> list[list[float]] | None:
    interval = result["interval"]
    if not interval:
        return None
    return [[result["value"] - interval["low"]], [interval["high"] - result["value"]]]


def _title(record: dict) -> str:
    source = record["source"]
    name = source.get("policy") or "features"
    details = ", ".join(str(source[key]) for key in ("policy_type", "category", "weights") if source.get(key))
    return f"{name} ({details})" if details else name


def _draw_metric_curve(ax, xs: np.ndarray, results: list[dict], metric: str) -> np.ndarray:
    """One metric's values over ``xs``: the null band, mean and threshold, the values with their intervals.

    Each value is labelled with its calibrated score first (``cal.``), the value in brackets.

    Returns:
        The values drawn.
    """
    values = np.array([result["value"] for result in results])
    nulls = [result["null"] for result in results]
    if all(nulls):
        bands = np.array([null_band(null) for null in nulls])
        # One point only: widen the band so it shows.
        band_xs = xs if len(xs) > 1 else np.array([xs[0] / 1.2, xs[0] * 1.2])
        band = bands if len(xs) > 1 else np.repeat(bands, 2, axis=0)
        ax.fill_between(band_xs, band[:, 0], band[:, 1], color=NULL_COLOR, alpha=0.3, label=NULL_BAND_LABEL)
        ax.plot(xs, [null["mean"] for null in nulls], "--", color=NULL_COLOR, label="null mean")
        ax.plot(xs, [null["threshold"] for null in nulls], ":", color="black", lw=1, label=THRESHOLD_LABEL)
    errors = [_error(result) for result in results]
    if all(errors):
        ax.errorbar(
            xs,
            values,
            yerr=np.hstack(errors),
            fmt="o-",
            color=VALUE_COLOR,
            capsize=4,
            lw=2,
            label=f"{METRIC_TITLES[metric]} with {100 * results[0]['interval']['level']:.0f}% interval",
        )
    else:
        ax.plot(xs, values, "o-", color=VALUE_COLOR, lw=2, label=METRIC_TITLES[metric])
    for x, value, null in zip(xs, values, nulls, strict=True):
        text = f"cal. {null['calibrated']:.2f} ({value:.3f})" if null else f"{value:.3f}"
        ax.annotate(text, (x, value), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_ylabel(METRIC_TITLES[metric])
    ax.grid(alpha=0.3)
    return values


def plot_k_sweep(record: dict, path: Path) -> Path:
    """CKNNA and mutual kNN over k: value, interval, null band, with the headline k marked.

    Other metrics of ``--cknna.metrics`` are in ``cknna.json`` only.
    """
    figure = _figure(12, 4.8)
    axes = figure.subplots(1, 2)
    for ax, metric in zip(axes, METRIC_TITLES, strict=True):
        results = record["k_sweep"][metric]
        ks = np.array([result["k"] for result in results], dtype=float)
        _draw_metric_curve(ax, ks, results, metric)
        ax.axvline(record["k"], color="black", lw=0.8, ls=":", label=f"headline k={record['k']}")
        ax.set_xscale("log")
        ax.set_xticks(ks, [f"{k:g}" for k in ks])
        ax.minorticks_off()
        ax.set_xlabel("k (neighbours per sample)")
        ax.set_title(f"{METRIC_TITLES[metric]} over k")
        ax.legend(fontsize=8, loc="best")
    figure.suptitle(f"{_title(record)}: N={record['n']} samples, {record['n_episodes']} episodes")
    return _save(figure, path)


def plot_layers(record: dict, path: Path) -> Path:
    """CKNNA and mutual kNN at every layer of a ``layers.json`` record, depth on x, the hooked module marked."""
    layers = record["layers"]
    figure = _figure(max(12, 0.45 * len(layers)), 5.2)
    axes = figure.subplots(1, 2)
    depths = np.array([layer["index"] for layer in layers], dtype=float)
    main = record["main_hook_index"]
    for ax, metric in zip(axes, METRIC_TITLES, strict=True):
        values = _draw_metric_curve(ax, depths, [layer[metric] for layer in layers], metric)
        ax.plot(
            depths[main], values[main], "*", color="black", ms=14, zorder=3, label="hooked module (feat A)"
        )
        ax.set_xticks(depths, [f"{int(depth)}" for depth in depths], fontsize=7)
        ax.set_xlabel(f"depth along the path to {layers[main]['path']}")
        ax.set_title(f"{METRIC_TITLES[metric]} at k={record['k']} by layer")
        ax.legend(fontsize=8, loc="best")
    title = f"{_title(record)}: layer taps, N={record['n']} samples, {record['n_episodes']} episodes"
    best = record["max_over_layers"]["cknna"]
    if best:
        title += (
            f"\nbest layer by CKNNA, calibrated against the null of the maximum over layers: "
            f"{best['layer']}, calibrated {best['null']['calibrated']:.2f}, p={best['null']['p_value']:.2g}"
        )
    figure.suptitle(title)
    return _save(figure, path)


def plot_layer_curves(curves: dict[str, dict], path: Path) -> Path:
    """Several policies' per-layer curves in one figure: CKNNA over relative depth (0 to 1), one curve each.

    Args:
        curves: label -> ``layers.json`` record.
        path: the PNG to write.

    Returns:
        ``path``.
    """
    figure = _figure(10, 5.6)
    ax = figure.subplots()
    for label, record in curves.items():
        layers = record["layers"]
        depths = np.array([layer["depth"] for layer in layers])
        results = [layer["cknna"] for layer in layers]
        values = np.array([result["value"] for result in results])
        errors = [_error(result) for result in results]
        line = ax.errorbar(
            depths,
            values,
            yerr=np.hstack(errors) if all(errors) else None,
            fmt="o-",
            ms=4,
            capsize=3,
            lw=1.5,
            label=f"{label} ({len(layers)} layers, k={record['k']}, N={record['n']})",
        )
        main = record["main_hook_index"]
        ax.plot(depths[main], values[main], "*", color=line.lines[0].get_color(), ms=14, mec="black")
    ax.plot([], [], "*", color="white", mec="black", ms=12, label="hooked module (feat A)")
    ax.set_xlabel("relative depth along the path to the hooked module (0 = first layer, 1 = feat A)")
    ax.set_ylabel("CKNNA")
    ax.set_xlim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    figure.suptitle("CKNNA by layer")
    return _save(figure, path)


def draw_score_rows(ax, labels: list[str], results: list[dict | None], notes: list[str], colors: list[str]):
    """One row per label: null band, mean and threshold, value with interval; ``notes`` where there is no value.

    A row with a null is labelled with its calibrated score and p-value first, the value in brackets.

    Args:
        ax: the axes to draw on; rows go top to bottom.
        labels: row labels.
        results: a CKNNA record per row (``value``, ``interval``, ``null``), or ``None``.
        notes: text shown on rows without a result (e.g. why the group was skipped).
        colors: marker colour per row.

    Returns:
        Whether any row has a null band.
    """
    rows = np.arange(len(labels))[::-1]
    has_null = False
    for row, result, note, color in zip(rows, results, notes, colors, strict=True):
        if result is None:
            ax.text(
                0.01,
                row,
                note,
                transform=ax.get_yaxis_transform(),
                va="center",
                fontsize=8,
                style="italic",
                color="dimgray",
            )
            continue
        text = f"{result['value']:.3f}"
        if result["null"]:
            null = result["null"]
            low, high = null_band(null)
            has_null = True
            ax.barh(row, high - low, left=low, height=0.6, color=NULL_COLOR, alpha=0.35)
            ax.plot([null["mean"]] * 2, [row - 0.3, row + 0.3], color="dimgray", lw=1)
            ax.plot([null["threshold"]] * 2, [row - 0.3, row + 0.3], ":", color="black", lw=1)
            text = f"calibrated {null['calibrated']:.2f}, p={null['p_value']:.2g} (value {text})"
        ax.errorbar(result["value"], row, xerr=_error(result), fmt="o", color=color, capsize=4, ms=7, lw=2)
        ax.annotate(
            text, (result["value"], row), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8
        )
    ax.set_yticks(rows, labels)
    ax.set_ylim(-0.7, len(labels) - 0.3)
    ax.grid(axis="x", alpha=0.3)
    return has_null


def _legend(figure: Figure, has_null: bool, extra: list | None = None):
    """One legend for the whole figure, below the plots."""
    handles = [Line2D([], [], marker="o", color=VALUE_COLOR, lw=2, label="value with interval")]
    if has_null:
        handles.append(Patch(color=NULL_COLOR, alpha=0.35, label=f"{NULL_BAND_LABEL}; tick: mean"))
        handles.append(Line2D([], [], ls=":", color="black", lw=1, label=THRESHOLD_LABEL))
    figure.legend(handles=handles + (extra or []), fontsize=8, loc="outside lower center", ncols=3)


def _row_label(name: str, n: int, n_episodes: int) -> str:
    return f"{textwrap.shorten(name, 45, placeholder='...')} (N={n}, {n_episodes} ep)"


def plot_groups(record: dict, path: Path) -> Path | None:
    """Per-task, per-suite and success/failure CKNNA rows; ``None`` when the record has no groups."""
    breakdowns = {name: groups for name, groups in record.get("groups", {}).items() if groups}
    if not breakdowns:
        return None
    sizes = [len(groups) for groups in breakdowns.values()]
    figure = _figure(11, 2.0 + 0.5 * sum(sizes) + 0.6 * len(sizes))
    axes = figure.subplots(
        len(sizes), 1, height_ratios=[size + 1 for size in sizes], sharex=True, squeeze=False
    )
    headline = record["headline"]["cknna"]["value"]
    has_null = False
    for ax, (breakdown, groups) in zip(axes[:, 0], breakdowns.items(), strict=True):
        has_null |= draw_score_rows(
            ax,
            [_row_label(group["name"], group["n"], group["n_episodes"]) for group in groups],
            [group["cknna"] for group in groups],
            [f"skipped: {group['skipped']}" for group in groups],
            [GROUP_COLORS.get(group["name"], VALUE_COLOR) for group in groups],
        )
        ax.axvline(headline, color="black", lw=0.8, ls=":")
        ax.set_title(BREAKDOWN_TITLES.get(breakdown, breakdown), loc="left", fontsize=10)
    axes[-1, 0].set_xlabel(f"CKNNA at k={record['k']}")
    headline_line = Line2D([], [], color="black", lw=0.8, ls=":", label=f"all samples: {headline:.3f}")
    _legend(figure, has_null, [headline_line])
    figure.suptitle(f"{_title(record)}: CKNNA by group")
    return _save(figure, path)


def plot_token_groups(group_records: dict[str, dict], path: Path, title: str) -> Path:
    """CKNNA of each token group (feat A as ``both``, then image, then language tokens), one row each, per run.

    Args:
        group_records: run label -> its ``token_groups.json`` record; one run may have the label ``""``.
        path: the PNG to write.
        title: the figure's title.

    Returns:
        ``path``.
    """
    labels, results, colors = [], [], []
    for run, record in group_records.items():
        for group in record["groups"]:
            tokens = group.get("tokens_per_sample")
            name = f"{group['group']} ({tokens['mean']:.1f} tokens per sample)" if tokens else group["group"]
            labels.append(f"{run}: {name}" if run else name)
            results.append(group["cknna"])
            colors.append(TOKEN_GROUP_COLORS[group["group"]])
    figure = _figure(11, 1.8 + 0.5 * len(labels))
    ax = figure.subplots()
    has_null = draw_score_rows(ax, labels, results, [""] * len(labels), colors)
    ks = sorted({record["k"] for record in group_records.values()})
    ax.set_xlabel(f"CKNNA at k={', '.join(map(str, ks))}")
    _legend(figure, has_null)
    figure.suptitle(title)
    return _save(figure, path)


def principal_components(feats: torch.Tensor, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Projection of ``feats`` (N, d) on its first principal components, and their share of variance.

    Uses :func:`torch.pca_lowrank` (oversampled, with extra power iterations) under a fixed seed,
    so the figure is reproducible; float32 is plenty for a picture and halves the memory.
    """
    feats = feats.float()
    centered = feats - feats.mean(dim=0)
    q = min(n_components + 8, *centered.shape)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        _, singular, basis = torch.pca_lowrank(centered, q=q, center=False, niter=6)
    total = centered.square().sum().clamp_min(torch.finfo(torch.float32).tiny)
    projection = centered @ basis[:, :n_components]
    return projection.numpy(), (singular[:n_components].square() / total).numpy()


def _trajectories(projection: np.ndarray, features: SavedFeatures) -> LineCollection:
    """Thin lines joining consecutive frames of each episode."""
    order = np.lexsort((features.frame_index.numpy(), features.episode_index.numpy()))
    points = projection[order]
    episodes = features.episode_index.numpy()[order]
    same = episodes[1:] == episodes[:-1]
    segments = np.stack([points[:-1][same], points[1:][same]], axis=1)
    return LineCollection(segments, colors="gray", linewidths=0.5, alpha=0.25, zorder=1)


def widest_state_dimension(feat_b: torch.Tensor) -> int:
    """The state dimension (column of feat B) with the largest variance."""
    return int(feat_b.double().var(dim=0).argmax())


def plot_projection(features: SavedFeatures, record: dict, path: Path) -> Path:
    """Feat A and feat B on their first two principal components, coloured by the widest state dimension."""
    state_dim = widest_state_dimension(features.feat_b)
    color = features.feat_b[:, state_dim].double().numpy()
    n = features.feat_a.shape[0]
    size = float(np.clip(30 / np.sqrt(n / 200), 1, 30))
    figure = _figure(13, 5.6)
    axes = figure.subplots(1, 2)
    scatter = None
    for ax, (name, feats) in zip(
        axes,
        (("feat A", features.feat_a), (f"feat B (state, {features.feat_b.shape[1]}-D)", features.feat_b)),
        strict=True,
    ):
        projection, share = principal_components(feats)
        ax.add_collection(_trajectories(projection, features))
        scatter = ax.scatter(
            projection[:, 0], projection[:, 1], c=color, s=size, cmap="viridis", zorder=2, rasterized=True
        )
        ax.set_xlabel(f"PC1 ({100 * share[0]:.0f}% of variance)")
        ax.set_ylabel(f"PC2 ({100 * share[1]:.0f}% of variance)")
        ax.set_title(f"{name}, first two principal components", fontsize=10)
        ax.grid(alpha=0.2)
    figure.colorbar(scatter, ax=axes, label=f"state[{state_dim}]", shrink=0.9)
    cknna = record["headline"]["cknna"]["value"]
    figure.suptitle(
        f"{_title(record)}: CKNNA {cknna:.3f} at k={record['k']}\n"
        f"feat A ({features.feat_a.shape[1]}-D) coloured by state[{state_dim}], the state dimension with "
        "the largest variance; lines join consecutive frames of an episode",
        fontsize=11,
    )
    return _save(figure, path)


def _scored(subsets: list[dict]) -> list[dict]:
    return [subset for subset in subsets if not subset["skipped"]]


def plot_horizons(record: dict, path: Path) -> Path | None:
    """CKNNA and mutual kNN over the horizon h of ``record["horizons"]``; ``None`` when no horizon was scored."""
    horizons = _scored(record.get("horizons") or [])
    if not horizons:
        return None
    figure = _figure(12, 4.8)
    axes = figure.subplots(1, 2)
    steps = np.array([item["horizon"] for item in horizons], dtype=float)
    for ax, metric in zip(axes, METRIC_TITLES, strict=True):
        _draw_metric_curve(ax, steps, [item[metric] for item in horizons], metric)
        ax.set_xticks(steps, [f"{step:g}" for step in steps])
        ax.set_xlabel("horizon h (feat B taken h steps after feat A)")
        ax.set_title(f"{METRIC_TITLES[metric]} at k={record['k']} over horizon")
        ax.legend(fontsize=8, loc="best")
    sizes = ", ".join(f"h={item['horizon']}: N={item['n']}" for item in horizons)
    figure.suptitle(f"{_title(record)}: feat B = {record['target']['kind']} h steps later ({sizes})")
    return _save(figure, path)


def plot_n_curve(record: dict, path: Path) -> Path | None:
    """CKNNA (with interval and null band) and the calibrated score over N; ``None`` when no point was scored."""
    points = _scored(record.get("n_curve") or [])
    if not points:
        return None
    figure = _figure(12, 4.8)
    cknna_ax, calibrated_ax = figure.subplots(1, 2)
    sizes = np.array([point["n"] for point in points], dtype=float)
    _draw_metric_curve(cknna_ax, sizes, [point["cknna"] for point in points], "cknna")
    calibrated = [(point["cknna"]["null"] or {}).get("calibrated") for point in points]
    shown = [(size, value) for size, value in zip(sizes, calibrated, strict=True) if value is not None]
    if shown:
        calibrated_ax.plot(*zip(*shown, strict=True), "o-", color=VALUE_COLOR, lw=2, label="calibrated CKNNA")
    else:
        note = "no permutation null: no calibrated score"
        calibrated_ax.text(0.5, 0.5, note, ha="center", transform=calibrated_ax.transAxes)
    calibrated_ax.set_ylabel("calibrated CKNNA")
    calibrated_ax.grid(alpha=0.3)
    for ax, title in ((cknna_ax, "CKNNA"), (calibrated_ax, "Calibrated CKNNA")):
        ax.set_xscale("log")
        ax.set_xticks(sizes, [f"{size:g}" for size in sizes])
        ax.minorticks_off()
        ax.set_xlabel("N (samples in nested subsets of whole episodes)")
        ax.set_title(f"{title} at k={record['k']} over N")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
    figure.suptitle(f"{_title(record)}: how the score moves with the number of samples")
    return _save(figure, path)


def write_plots(run_dir: Path, features: SavedFeatures, record: dict) -> list[Path]:
    """Write the run's figures into ``run_dir``; returns their paths (none of a section the record lacks)."""
    run_dir = Path(run_dir)
    paths = [
        plot_k_sweep(record, run_dir / K_SWEEP_FILE),
        plot_groups(record, run_dir / GROUPS_FILE),
        plot_horizons(record, run_dir / HORIZONS_FILE),
        plot_n_curve(record, run_dir / N_CURVE_FILE),
        plot_projection(features, record, run_dir / PROJECTION_FILE),
    ]
    return [path for path in paths if path is not None]


def plot_comparison(labels: list[str], records: list[dict], path: Path, title: str) -> Path:
    """One row per run: headline CKNNA with interval against the run's null band."""
    figure = _figure(11, 1.8 + 0.5 * len(records))
    ax = figure.subplots()
    has_null = draw_score_rows(
        ax,
        labels,
        [record["headline"]["cknna"] for record in records],
        [""] * len(records),
        [VALUE_COLOR] * len(records),
    )
    ks = sorted({record["k"] for record in records})
    ax.set_xlabel(f"CKNNA at k={', '.join(map(str, ks))}")
    _legend(figure, has_null)
    figure.suptitle(title)
    return _save(figure, path)


def plot_success(
    labels: list[str], results: list[dict], success_rates: list[float], path: Path, title: str
) -> Path:
    """Task success rate (y) over headline CKNNA (x): a labelled point per run with CKNNA's interval, and a fitted line.

    Args:
        labels: a label per run, written beside its point.
        results: each run's ``headline.cknna`` record (``value``, ``interval``).
        success_rates: each run's success rate in [0, 1].
        path: the PNG to write.
        title: the figure's title (e.g. the correlation coefficients).

    Returns:
        ``path``.
    """
    figure = _figure(8, 5.6)
    ax = figure.subplots()
    values = np.array([result["value"] for result in results])
    slope, intercept = np.polyfit(values, success_rates, 1)
    xs = np.array([values.min(), values.max()])
    ax.plot(xs, slope * xs + intercept, "--", color=NULL_COLOR, lw=1.5, label="least-squares line")
    for label, result, rate in zip(labels, results, success_rates, strict=True):
        ax.errorbar(result["value"], rate, xerr=_error(result), fmt="o", color=VALUE_COLOR, capsize=4, ms=7)
        ax.annotate(label, (result["value"], rate), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.legend(fontsize=8, loc="best")
    ax.set_xlabel("headline CKNNA (at each run's k), with its interval")
    ax.set_ylabel("task success rate")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    figure.suptitle(title, fontsize=11)
    return _save(figure, path)
