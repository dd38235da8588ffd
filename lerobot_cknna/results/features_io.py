"""Saved features: ``features.safetensors`` plus ``tasks.json``, readable without this package.

``features.safetensors`` holds, for N samples:

* ``feat_a`` (N, D) float32: the policy's condition embedding;
* ``feat_b`` (N, S) float32: proprioceptive state before the policy's normalizer;
* ``episode_index`` (N,) int64, ``frame_index`` (N,) int64 (dataset frame, or env step);
* optionally ``success`` (N,) bool (simulation), ``task_index`` (N,) int64, and ``n_tokens``
  (N,) int64: how many tokens of a sequence ``feat_a`` averages (a token group's, e.g.).

``tasks.json`` beside it lists the task strings that ``task_index`` points into. Any
safetensors reader loads the file::

    from safetensors.torch import load_file
    feats = load_file("outputs/cknna/.../features.safetensors")

While a run goes, samples are streamed into ``features.chunks/chunk-NNNNNN/`` (the same two
files per chunk); a run that finishes joins them into ``features.safetensors``. A run that
was killed leaves only chunks: :func:`load_features` joins them, and ``--resume=true``
continues from them.
"""

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lerobot_cknna.utils.io import write_atomic, write_json_atomic

FEATURES_FILE = "features.safetensors"
TASKS_FILE = "tasks.json"
CHUNKS_DIR = "features.chunks"


@dataclass
class SavedFeatures:
    """Paired features of N samples and where each sample came from."""

    feat_a: torch.Tensor
    feat_b: torch.Tensor
    episode_index: torch.Tensor
    frame_index: torch.Tensor
    success: torch.Tensor | None = None
    task_index: torch.Tensor | None = None
    tasks: list[str] | None = None
    n_tokens: torch.Tensor | None = None

    def __post_init__(self):
        n = self.feat_a.shape[0]
        for name in ("feat_b", "episode_index", "frame_index", "success", "task_index", "n_tokens"):
            value = getattr(self, name)
            if value is not None and value.shape[0] != n:
                raise ValueError(f"{name} has {value.shape[0]} rows but feat_a has {n}; they must match.")

    def select(self, rows: torch.Tensor) -> "SavedFeatures":
        """The samples ``rows`` (indices or a boolean mask), every per-sample tensor alike."""

        def take(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor[rows]

        return SavedFeatures(
            feat_a=self.feat_a[rows],
            feat_b=self.feat_b[rows],
            episode_index=self.episode_index[rows],
            frame_index=self.frame_index[rows],
            success=take(self.success),
            task_index=take(self.task_index),
            tasks=self.tasks,
            n_tokens=take(self.n_tokens),
        )


def save_features(directory: Path, features: SavedFeatures) -> Path:
    """Write ``features.safetensors`` (and ``tasks.json`` when there are tasks) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {
        "feat_a": features.feat_a.float().contiguous(),
        "feat_b": features.feat_b.float().contiguous(),
        "episode_index": features.episode_index.long().contiguous(),
        "frame_index": features.frame_index.long().contiguous(),
    }
    if features.success is not None:
        tensors["success"] = features.success.bool().contiguous()
    if features.task_index is not None:
        tensors["task_index"] = features.task_index.long().contiguous()
    if features.n_tokens is not None:
        tensors["n_tokens"] = features.n_tokens.long().contiguous()
    path = directory / FEATURES_FILE
    write_atomic(path, lambda tmp: save_file(tensors, str(tmp)))
    if features.tasks is not None:
        write_json_atomic(directory / TASKS_FILE, features.tasks)
    return path


def load_features(directory: Path) -> SavedFeatures:
    """Read what :func:`save_features` wrote, or the chunks a run that did not finish left.

    Raises:
        FileNotFoundError: with the path that was expected.
        ValueError: if required tensors are missing.
    """
    directory = Path(directory)
    chunks = _chunk_files(directory)
    if chunks:
        parts = [_load_file(chunk.parent) for chunk in chunks]
        joined = {
            name: torch.cat([getattr(part, name) for part in parts])
            for name, value in vars(parts[0]).items()
            if isinstance(value, torch.Tensor)
        }
        return SavedFeatures(**joined, tasks=parts[-1].tasks)
    return _load_file(directory)


def _load_file(directory: Path) -> SavedFeatures:
    path = directory / FEATURES_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"No {FEATURES_FILE} in {directory}. Point at a run directory written by lerobot-cknna."
        )
    tensors = load_file(str(path))
    missing = {"feat_a", "feat_b", "episode_index", "frame_index"} - tensors.keys()
    if missing:
        raise ValueError(f"{path} lacks {sorted(missing)}; it was not written by lerobot-cknna.")
    tasks_path = directory / TASKS_FILE
    return SavedFeatures(
        feat_a=tensors["feat_a"],
        feat_b=tensors["feat_b"],
        episode_index=tensors["episode_index"],
        frame_index=tensors["frame_index"],
        success=tensors.get("success"),
        task_index=tensors.get("task_index"),
        tasks=json.loads(tasks_path.read_text()) if tasks_path.is_file() else None,
        n_tokens=tensors.get("n_tokens"),
    )


class FeatureBuffer:
    """Samples gathered during a run, streamed to disk in chunks as they come.

    :meth:`add` appends a batch; at most every ``flush_every_s`` seconds (and on
    :meth:`flush`) the rows not yet on disk are written as one more chunk file under
    ``directory/features.chunks/``, each atomically, so a run that is killed keeps what it
    gathered up to its last flush and :func:`load_features` reads those chunks. :meth:`close`
    writes ``features.safetensors`` and removes the chunks. With ``resume``, a buffer
    starts from what an earlier run left in ``directory``.
    """

    def __init__(self, directory: Path, flush_every_s: float = 30.0, resume: bool = False):
        """Start empty, or with ``resume`` from the samples an earlier run left in ``directory``.

        Raises:
            ValueError: ``directory`` already holds samples and ``resume`` is not set.
        """
        self.directory = Path(directory)
        self.flush_every_s = flush_every_s
        self._columns: dict[str, list[torch.Tensor]] = {}
        self._tasks: dict[str, int] = {}
        self._rows_on_disk = 0
        self._chunks_written = 0
        self._last_flush = time.monotonic()
        if not resume:
            refuse_earlier_run(directory)
            return
        if not has_features(directory):
            return
        saved = load_features(directory)
        self._tasks = {task: index for index, task in enumerate(saved.tasks or [])}
        for name, value in vars(saved).items():
            if isinstance(value, torch.Tensor):
                self._columns[name] = [value]
        chunks = _chunk_files(directory)
        if chunks:
            self._rows_on_disk, self._chunks_written = len(saved.feat_a), len(chunks)

    def __len__(self) -> int:
        return sum(len(chunk) for chunk in self._columns.get("feat_a", []))

    def add(
        self,
        feat_a: torch.Tensor,
        feat_b: torch.Tensor,
        episode_index: torch.Tensor,
        frame_index: torch.Tensor,
        tasks: list[str] | None = None,
        success: torch.Tensor | None = None,
        n_tokens: torch.Tensor | None = None,
    ) -> None:
        """Append a batch of samples (one row each); ``tasks`` holds each row's task string."""
        columns = {
            "feat_a": feat_a.float(),
            "feat_b": feat_b.float(),
            "episode_index": episode_index.long(),
            "frame_index": frame_index.long(),
        }
        if tasks is not None:
            columns["task_index"] = torch.tensor([self._tasks.setdefault(t, len(self._tasks)) for t in tasks])
        if success is not None:
            columns["success"] = success.bool()
        if n_tokens is not None:
            columns["n_tokens"] = n_tokens.long()
        for name, column in columns.items():
            self._columns.setdefault(name, []).append(column.detach().cpu())
        if time.monotonic() - self._last_flush > self.flush_every_s:
            self.flush()

    def features(self) -> SavedFeatures:
        """Everything gathered so far."""
        if not self._columns:
            raise ValueError("No samples were gathered.")
        joined = {name: torch.cat(chunks) for name, chunks in self._columns.items()}
        return SavedFeatures(**joined, tasks=list(self._tasks) if self._tasks else None)

    def flush(self) -> Path | None:
        """Write the rows not yet on disk as one chunk; returns it, or ``None`` when there were none."""
        self._last_flush = time.monotonic()
        if len(self) == self._rows_on_disk:
            return None
        features = self.features()
        new_rows = {
            name: value[self._rows_on_disk :]
            for name, value in vars(features).items()
            if isinstance(value, torch.Tensor)
        }
        chunk = self.directory / CHUNKS_DIR / f"chunk-{self._chunks_written:06d}"
        unfinished = chunk.with_name(f".{chunk.name}.tmp")
        shutil.rmtree(unfinished, ignore_errors=True)
        save_features(unfinished, SavedFeatures(**new_rows, tasks=features.tasks))
        os.replace(unfinished, chunk)
        self._rows_on_disk, self._chunks_written = len(self), self._chunks_written + 1
        return chunk / FEATURES_FILE

    def close(self) -> Path | None:
        """Write all samples to ``features.safetensors`` and drop the chunks; ``None`` if there are none."""
        if not self._columns:
            return None
        path = save_features(self.directory, self.features())
        shutil.rmtree(self.directory / CHUNKS_DIR, ignore_errors=True)
        self._rows_on_disk, self._chunks_written = len(self), 0
        return path


def _chunk_files(directory: Path) -> list[Path]:
    return sorted((Path(directory) / CHUNKS_DIR).glob(f"chunk-*/{FEATURES_FILE}"))


def has_features(directory: Path) -> bool:
    """Whether ``directory`` holds samples of a run: finished (``features.safetensors``) or not (chunks)."""
    return (Path(directory) / FEATURES_FILE).is_file() or bool(_chunk_files(directory))


def refuse_earlier_run(directory: Path) -> None:
    """Raise a ValueError if ``directory`` holds an earlier run's samples, which must not be mixed in."""
    if has_features(directory):
        raise ValueError(
            f"{directory} already holds the features of an earlier run. Continue that run with "
            "--resume=true (replay), or pass another --output_dir."
        )
