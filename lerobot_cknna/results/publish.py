"""The end of every run: score saved features and write what a person reads.

Writes, into the run directory beside ``features.safetensors``: ``cknna.json`` (the record,
atomically), with layer taps ``layers.json`` too, with token groups ``token_groups.json``, the PNG
plots and ``report.md`` (unless turned off), then logs a summary.
"""

import json
import logging
from pathlib import Path

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.results.features_io import SavedFeatures, load_features
from lerobot_cknna.results.horizons import score_horizons
from lerobot_cknna.results.interruption import partial_run_warning, read_interruption
from lerobot_cknna.results.layer_features import LayerFeatures, has_layer_features, load_layer_features
from lerobot_cknna.results.layer_scoring import LAYERS_FILE, score_layers
from lerobot_cknna.results.parity import replay_parity_warning
from lerobot_cknna.results.plots import (
    LAYERS_PLOT_FILE,
    TOKEN_GROUPS_PLOT_FILE,
    plot_layers,
    plot_token_groups,
    write_plots,
)
from lerobot_cknna.results.report import write_report
from lerobot_cknna.results.sample_size import score_n_curve
from lerobot_cknna.results.scoring import (
    RESULTS_FILE,
    samples_to_score,
    score_features,
    summary_lines,
    write_results,
)
from lerobot_cknna.results.token_groups import (
    TOKEN_GROUPS_FILE,
    TokenGroupFeatures,
    has_token_groups,
    load_token_groups,
    score_token_groups,
)


def publish(
    run_dir: Path,
    features: SavedFeatures,
    cfg: CKNNAConfig,
    source: dict,
    task_suites: dict[str, str] | None = None,
    report: bool = True,
    layer_features: list[LayerFeatures] | None = None,
    interruption: dict | None = None,
    replay_parity: dict | None = None,
    token_groups: TokenGroupFeatures | None = None,
) -> dict:
    """Score ``features`` and write ``cknna.json`` (and the plots and ``report.md``) into ``run_dir``.

    With ``--cknna.horizons`` or ``--cknna.n_curve``, the record gets ``horizons``
    (:mod:`~lerobot_cknna.results.horizons`) or ``n_curve`` (:mod:`~lerobot_cknna.results.sample_size`).
    With ``layer_features`` (every layer tap's, shallow to deep), also ``layers.json`` and ``layers.png``.
    With ``token_groups`` (feat A's image and language tokens apart), also ``token_groups.json``,
    named in the record's ``token_groups``.
    With ``interruption`` (the run stopped early), the record keeps it and warns that it is partial.
    With ``replay_parity`` (:mod:`lerobot_cknna.results.parity`), the record keeps it and warns
    when replay and simulation disagree.

    Returns:
        The ``cknna.json`` record.
    """
    record = score_features(features, cfg, source, task_suites=task_suites)
    if cfg.horizons:
        record["horizons"] = score_horizons(features, cfg)
    if cfg.n_curve:
        record["n_curve"] = score_n_curve(samples_to_score(features, cfg).features, cfg)
    if interruption is not None:
        record["interruption"] = interruption
        record["warnings"].insert(0, partial_run_warning(interruption))
    if replay_parity is not None:
        record["replay_parity"] = replay_parity
        if warning := replay_parity_warning(replay_parity):
            record["warnings"].append(warning)
    if token_groups is not None:
        record["token_groups"] = TOKEN_GROUPS_FILE
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    path = write_results(run_dir, record)
    for line in summary_lines(record):
        logging.info(line)
    logging.info(f"Wrote {path}")
    layer_record = None
    if layer_features is not None:
        layer_record = score_layers(layer_features, cfg, source)
        logging.info(f"Wrote {write_results(run_dir, layer_record, LAYERS_FILE)}")
    group_record = None
    if token_groups is not None:
        group_record = score_token_groups(features, token_groups, cfg, source)
        logging.info(f"Wrote {write_results(run_dir, group_record, TOKEN_GROUPS_FILE)}")
    if report:
        figures = write_plots(run_dir, features, record)
        if layer_record is not None:
            figures.append(plot_layers(layer_record, Path(run_dir) / LAYERS_PLOT_FILE))
        if group_record is not None:
            title = f"{source.get('policy') or 'features'}: token groups of {group_record['path']}"
            figures.append(
                plot_token_groups({"": group_record}, Path(run_dir) / TOKEN_GROUPS_PLOT_FILE, title)
            )
        logging.info(f"Report: {write_report(run_dir, record, figures, layer_record, group_record)}")
    return record


def rescore(run_dir: Path, cfg: CKNNAConfig, output_dir: Path | None = None) -> dict:
    """Score the features saved in ``run_dir`` again (with its layers and token groups, if it has them) and publish.

    The run's ``source`` and task suites are taken from its ``cknna.json`` when there is one (a
    killed run has none), else from its ``interruption.json`` (a simulation that stopped early;
    the result then says that it is partial). Writes into ``output_dir`` (default: ``run_dir``).

    Returns:
        The new ``cknna.json`` record.
    """
    layer_features = load_layer_features(run_dir) if has_layer_features(run_dir) else None
    token_groups = load_token_groups(run_dir) if has_token_groups(run_dir) else None
    previous_path = Path(run_dir) / RESULTS_FILE
    interruption = read_interruption(run_dir)
    previous = json.loads(previous_path.read_text()) if previous_path.is_file() else interruption or {}
    return publish(
        output_dir or run_dir,
        load_features(run_dir),
        cfg,
        previous.get("source", {}),
        previous.get("task_suites"),
        layer_features=layer_features,
        interruption=interruption,
        replay_parity=previous.get("replay_parity"),
        token_groups=token_groups,
    )
