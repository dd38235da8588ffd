"""The end of every run: score saved features and write what a person reads.

Writes, into the run directory beside ``features.safetensors``: ``cknna.json`` (the record,
atomically), the PNG plots and ``report.md`` (unless turned off), then logs a summary.
"""

import logging
from pathlib import Path

from lerobot_cknna.configs.cknna import CKNNAConfig
from lerobot_cknna.features_io import SavedFeatures
from lerobot_cknna.plots import write_plots
from lerobot_cknna.report import write_report
from lerobot_cknna.scoring import score_features, summary_lines, write_results


def publish(
    run_dir: Path,
    features: SavedFeatures,
    cfg: CKNNAConfig,
    source: dict,
    task_suites: dict[str, str] | None = None,
    report: bool = True,
) -> dict:
    """Score ``features`` and write ``cknna.json`` (and the plots and ``report.md``) into ``run_dir``.

    Returns:
        The ``cknna.json`` record.
    """
    record = score_features(features, cfg, source, task_suites=task_suites)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    path = write_results(run_dir, record)
    for line in summary_lines(record):
        logging.info(line)
    logging.info(f"Wrote {path}")
    if report:
        figures = write_plots(run_dir, features, record)
        logging.info(f"Report: {write_report(run_dir, record, figures)}")
    return record
