"""``lerobot-cknna`` as a library call: one run, in replay or in simulation, from its parsed config."""

import logging

import torch
from accelerate import PartialState
from lerobot.utils.random_utils import set_seed

from lerobot_cknna.configs.pipeline import CKNNAPipelineConfig
from lerobot_cknna.drivers.replay import run_replay
from lerobot_cknna.drivers.resume import check_same_run, save_run_config
from lerobot_cknna.drivers.sharding import agree_on_run_dir
from lerobot_cknna.drivers.simulation import run_simulation
from lerobot_cknna.results.features_io import refuse_earlier_run


def run_pipeline(cfg: CKNNAPipelineConfig) -> None:
    """Run ``lerobot-cknna``: gather in the mode ``cfg`` names (replay or simulation), then score and publish.

    The output directory is made and checked first (an earlier run's features are never written
    into without ``--resume``), and the run's settings are saved before anything is gathered.
    Under ``accelerate launch``, every process takes its share and the main process publishes.
    """
    set_seed(cfg.seed)
    cfg.cknna.metrics_device  # noqa: B018  (a GPU this machine lacks is reported before any work)
    # Without cpu=True, accelerate treats processes launched on a machine without GPUs as one run each.
    state = PartialState(cpu=not torch.cuda.is_available())
    if state.num_processes > 1:
        agree_on_run_dir(cfg, state)
    if state.is_main_process:
        try:
            cfg.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(
                f"Cannot create the output directory {cfg.output_dir} ({error}); pass --output_dir=DIR."
            ) from error
        logging.info(f"Output dir: {cfg.output_dir}")
        if cfg.resume:
            check_same_run(cfg, cfg.output_dir)
        else:
            refuse_earlier_run(cfg.output_dir)
            save_run_config(cfg, cfg.output_dir)
    state.wait_for_everyone()
    if cfg.dataset is not None:
        run_replay(cfg, state)
    else:
        run_simulation(cfg, state)
    if state.num_processes > 1:
        # Every process waits for the main one to publish, then leaves the process group cleanly.
        state.wait_for_everyone()
        state.destroy_process_group()
    if state.is_main_process:
        logging.info(f"Done. Report: {cfg.output_dir / 'report.md'}")
