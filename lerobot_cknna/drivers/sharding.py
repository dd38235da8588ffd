"""Replay sharded over processes with Hugging Face ``accelerate`` (and what every sharded run agrees on).

``accelerate launch --num_processes N -m lerobot_cknna --dataset.repo_id=...`` starts N copies
of the command; each encodes every N-th batch on its own device and streams its samples to
``shards/rank-R/`` in the run directory, then the main process gathers all shards, puts the
samples back in the order one process would have produced them, and scores them.
"""

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list, gather_object

from lerobot_cknna.configs.mode import EXTRA_CAPTURES
from lerobot_cknna.results.features_io import FeatureBuffer

SHARDS_DIR = "shards"


def agree_on_run_dir(cfg, state: PartialState) -> None:
    """Check that ``cfg`` can be sharded, and give every process the main process's output dir and its own device.

    Each process computes a default ``outputs/cknna/DATE/TIME_job`` of its own, a second apart
    at times; the main process's wins.
    """
    if cfg.cknna.check_replay:
        raise ValueError("--cknna.check_replay=true runs in one process; launch it without accelerate.")
    if cfg.resume:
        raise ValueError("--resume=true continues a run in one process; launch it without accelerate.")
    for flag, _, _ in EXTRA_CAPTURES:
        if getattr(cfg.cknna, flag):
            raise ValueError(f"--cknna.{flag}=true runs in one process; launch it without accelerate.")
    cfg.output_dir = Path(broadcast_object_list([str(cfg.output_dir)])[0])
    # On the CPU accelerate names a device per process (cpu:0, cpu:1), which safetensors refuses.
    cfg.policy.device = state.device.type if state.device.type == "cpu" else str(state.device)
    logging.info(
        f"Sharded run: process {state.process_index + 1} of {state.num_processes}, on {state.device}."
    )


def batches_of_rank(batches: list[list[int]], rank: int, num_processes: int) -> list[list[int]]:
    """The batches process ``rank`` encodes: every ``num_processes``-th, starting at ``rank``."""
    return batches[rank::num_processes]


def sharded_replay(
    encode: Callable[[list[list[int]], FeatureBuffer], None],
    batches: list[list[int]],
    run_dir: Path,
    state: PartialState,
    flush_every_s: float,
) -> FeatureBuffer | None:
    """This process's share of ``batches`` through ``encode``; every sample, in order, on the main process.

    Args:
        encode: encodes a list of batches (dataset indices) into a buffer.
        batches: all batches of the run.
        run_dir: the run's output directory; shards stream to ``shards/rank-R/`` under it.
        state: accelerate's process state.
        flush_every_s: seconds between writes of a shard's samples.

    Returns:
        On the main process a buffer of the run directory holding every sample; else ``None``.
    """
    shards = Path(run_dir) / SHARDS_DIR
    shard = FeatureBuffer(shards / f"rank-{state.process_index}", flush_every_s)
    try:
        encode(batches_of_rank(batches, state.process_index, state.num_processes), shard)
    finally:
        shard.flush()
    buffer = FeatureBuffer(run_dir, flush_every_s) if state.is_main_process else None
    gather_shards(shard, batches, state, buffer)
    state.wait_for_everyone()
    if buffer is not None:
        buffer.flush()
        shutil.rmtree(shards)
    return buffer


def gather_shards(
    shard: FeatureBuffer, batches: list[list[int]], state: PartialState, into: FeatureBuffer
) -> None:
    """Collect every process's samples on the main process, in ``batches`` order, into ``into``.

    Every process must call this; only the main one adds to ``into``.
    """
    gathered = gather_object([shard.features() if len(shard) else None])
    if not state.is_main_process:
        return
    order = {index: position for position, index in enumerate(i for batch in batches for i in batch)}
    shards = [(rank, features) for rank, features in enumerate(gathered) if features is not None]
    positions = torch.tensor([
        order[index]
        for rank, _ in shards
        for batch in batches_of_rank(batches, rank, state.num_processes)
        for index in batch
    ])  # fmt: skip
    ordered = positions.argsort()

    def joined(name: str) -> torch.Tensor:
        return torch.cat([getattr(features, name) for _, features in shards])[ordered]

    tasks = [features.tasks[i] for _, features in shards for i in features.task_index.tolist()]
    into.add(
        joined("feat_a"),
        joined("feat_b"),
        joined("episode_index"),
        joined("frame_index"),
        tasks=[tasks[i] for i in ordered.tolist()],
    )
