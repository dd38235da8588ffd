"""The end of every run: score saved features and write what a person reads.

Writes, into the run directory beside ``features.safetensors``: ``cknna.json`` (the record,
atomically), with a layer sweep ``layers.json`` too, the PNG plots and ``report.md`` (unless
turned off), then logs a summary.
"""

import logging
from pathlib import Path

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.features_io import SavedFeatures
from lerobot_cknna.layer_features import LayerFeatures
from lerobot_cknna.layer_scoring import LAYERS_FILE, score_layers
from lerobot_cknna.plots import LAYERS_PLOT_FILE, plot_layers, write_plots
from lerobot_cknna.report import write_report
from lerobot_cknna.scoring import score_features, summary_lines, write_results


def publish(
    run_dir: Path,
    features: SavedFeatures,
    cfg: CKNNAConfig,
    source: dict,
    task_suites: dict[str, str] | None = None,
    report: bool = True,
    layers: list[LayerFeatures] | None = None,
) -> dict:
    """Score ``features`` and write ``cknna.json`` (and the plots and ``report.md``) into ``run_dir``.

    With ``layers`` (the layer sweep, shallow to deep), also ``layers.json`` and ``layers.png``.

    Returns:
        The ``cknna.json`` record.
    """
    record = score_features(features, cfg, source, task_suites=task_suites)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    path = write_results(run_dir, record)
    for line in summary_lines(record):
        logging.info(line)
    logging.info(f"Wrote {path}")
    layer_record = None
    if layers is not None:
        layer_record = score_layers(layers, cfg, source)
        logging.info(f"Wrote {write_results(run_dir, layer_record, LAYERS_FILE)}")
    if report:
        figures = write_plots(run_dir, features, record)
        if layer_record is not None:
            figures.append(plot_layers(layer_record, Path(run_dir) / LAYERS_PLOT_FILE))
        logging.info(f"Report: {write_report(run_dir, record, figures, layer_record)}")
    return record
