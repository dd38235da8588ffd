"""Helpers the test modules share: features with a known structure, figure checks, command runners."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from lerobot_cknna.capture.hook_table import PI05, LayerTap
from lerobot_cknna.capture.hooks import token_count_key, token_group_key
from lerobot_cknna.capture.module_paths import resolve_modules
from lerobot_cknna.results.features_io import SavedFeatures
from lerobot_cknna.results.layer_features import LayerFeatures
from lerobot_cknna.results.token_groups import TokenGroupBuffers
from lerobot_cknna.testing.tiny_policies import DIFFUSION_SHARED_ENCODER, TINY_CONFIGS

REPO = Path(__file__).resolve().parents[1]
TINY_STUDY = REPO / "configs" / "study_tiny" / "sweep.yaml"
TINY_SIMULATION_STUDY = REPO / "configs" / "study_tiny" / "sweep_sim.yaml"
FAST_SCORING = ["--cknna.k=5", "--cknna.n_permutations=20", "--cknna.report=false"]
OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1"}
TINY_TYPES = sorted(TINY_CONFIGS)
# Each tiny type, and Diffusion with the shared encoder of checkpoints saved before lerobot 0.5.
TINY_VARIANTS = {
    **{policy_type: (policy_type, {}) for policy_type in TINY_TYPES},
    "diffusion_shared": ("diffusion", DIFFUSION_SHARED_ENCODER),
}


def console_script(name: str, *args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run an installed console script (``lerobot-cknna``, ``lerobot-eval``, ...) as a user would, offline."""
    executable = Path(sys.executable).with_name(name)
    return subprocess.run(
        [str(executable), *args], capture_output=True, text=True, cwd=cwd, env=OFFLINE, timeout=timeout
    )


def fresh_python(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter of this environment, offline (for what one import changes)."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=OFFLINE, timeout=timeout
    )


def write_sweep(path: Path, runs: list[dict], common_args: list[str] = FAST_SCORING) -> Path:
    """A sweep file over ``runs``, replaying the tiny study's recording."""
    recording = yaml.safe_load(TINY_STUDY.read_text())["record_libero"]
    path.write_text(yaml.safe_dump({"runs": runs, "common_args": common_args, "record_libero": recording}))
    return path


def episodic_features(n_episodes=6, length=20, seed=0) -> SavedFeatures:
    """Random-walk states in episodes, and a noisy nonlinear embedding of them as feat A."""
    gen = torch.Generator().manual_seed(seed)
    state = torch.randn(n_episodes, length, 8, generator=gen).cumsum(dim=1).reshape(-1, 8)
    feat_a = torch.tanh(state @ torch.randn(8, 32, generator=gen)) + 0.3 * torch.randn(
        len(state), 32, generator=gen
    )
    return SavedFeatures(
        feat_a,
        state,
        torch.arange(n_episodes).repeat_interleave(length),
        torch.arange(length).repeat(n_episodes),
    )


def states_ahead_by_lookup(features: SavedFeatures, offsets: list[int]) -> tuple[list[int], torch.Tensor]:
    """The rows with a saved sample of their episode at every frame offset, and those samples' states
    stacked, found one (episode, frame) dictionary lookup at a time (a reference for targets)."""
    pairs = list(zip(features.episode_index.tolist(), features.frame_index.tolist(), strict=True))
    row_of = {pair: row for row, pair in enumerate(pairs)}
    kept, states = [], []
    for row, (episode, frame) in enumerate(pairs):
        later = [row_of.get((episode, frame + offset)) for offset in offsets]
        if None not in later:
            kept.append(row)
            states.append(torch.cat([features.feat_b[r] for r in later]))
    return kept, torch.stack(states) if states else torch.empty(0)


def gathered_token_groups(run_dir, batch_size=25):
    """A run's image tokens (an embedding of the state), language tokens (noise) and feat A (their mean)."""
    features = episodic_features(n_episodes=4, length=15)
    gen = torch.Generator().manual_seed(3)
    image = features.feat_a
    language = torch.randn(image.shape, generator=gen)
    features = dataclasses.replace(features, feat_a=(3 * image + language) / 4)
    n_language = torch.randint(8, 12, (len(image),), generator=gen)
    buffers = TokenGroupBuffers(run_dir, PI05, flush_every_s=0)
    for start in range(0, len(image), batch_size):
        rows = slice(start, start + batch_size)
        captured = {token_group_key(PI05.module_path, "image"): image[rows]}
        captured[token_group_key(PI05.module_path, "language")] = language[rows]
        captured[token_count_key(PI05.module_path, "image")] = torch.full((len(image[rows]),), 30)
        captured[token_count_key(PI05.module_path, "language")] = n_language[rows]
        buffers.add(captured, features.feat_b[rows], features.episode_index[rows], features.frame_index[rows])
    buffers.close()
    return features, buffers


def labelled_features(n_episodes=9, length=20, seed=0) -> SavedFeatures:
    """Episodes of three tasks (episode e does task e % 3); success marked at the last frame only."""
    features = episodic_features(n_episodes, length, seed)
    episode_task = torch.arange(n_episodes) % 3
    features.task_index = episode_task.repeat_interleave(length)
    features.tasks = ["pick up the black bowl", "open the top drawer", "push the plate"]
    features.success = torch.zeros(n_episodes * length, dtype=torch.bool)
    features.success[length - 1 :: length] = torch.arange(n_episodes) % 2 == 0
    return features


def deepening_layers(n_layers: int = 3) -> list[LayerFeatures]:
    """Layers that forget the state more and more: noise grows with depth, widths differ."""
    base = episodic_features()
    gen = torch.Generator().manual_seed(1)
    layers = []
    for index in range(n_layers):
        width = 16 + 8 * index
        feats = torch.tanh(base.feat_b @ torch.randn(8, width, generator=gen))
        feats = feats + index * torch.randn(len(feats), width, generator=gen)
        tap = LayerTap(f"model.layers.{index}.input_layernorm", "input")
        layers.append(LayerFeatures(index, tap, dataclasses.replace(base, feat_a=feats)))
    return layers


def assert_replayed_every_frame(run_dir: Path, dataset, policy_type: str) -> None:
    """A replay run of ``policy_type`` has feat A for every frame of ``dataset``, beside the frame's own state."""
    raw = load_file(str(run_dir / "features.safetensors"))  # readable without this package
    n = dataset.num_frames
    assert raw["feat_a"].shape[0] == n and raw["feat_b"].shape == (n, 8), policy_type
    frames = dataset.hf_dataset.with_format("torch")
    torch.testing.assert_close(raw["feat_b"], torch.stack(list(frames["observation.state"])))
    assert torch.equal(raw["episode_index"], torch.stack(list(frames["episode_index"]))), policy_type
    assert torch.equal(raw["frame_index"], torch.stack(list(frames["frame_index"]))), policy_type
    record = json.loads((run_dir / "cknna.json").read_text())
    assert record["n"] == n and record["n_episodes"] == dataset.num_episodes, policy_type
    source = record["source"]
    assert source["policy_type"] == policy_type and source["mode"] == "replay"
    assert source["weights"] == "random" and source["hook_path"], policy_type
    assert {group["name"] for group in record["groups"]["task"]} == set(dataset.meta.tasks.index)


def assert_is_a_real_figure(path, min_size=(800, 400)):
    """A PNG of at least ``min_size`` that was drawn on: many colours, a good share of non-white pixels."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
    with Image.open(path) as image:
        assert image.width >= min_size[0] and image.height >= min_size[1]
        pixels = np.asarray(image.convert("RGB")).astype(np.int32)
    colours = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    assert len(np.unique(colours)) > 50
    assert (pixels.min(axis=2) < 200).mean() > 0.02


def table_rows(text: str, first_column: str) -> list[list[str]]:
    """Cells of every markdown table row whose first cell is ``first_column``."""
    rows = [
        [cell.strip() for cell in line.strip("|").split(" | ")]
        for line in text.splitlines()
        if line.startswith("|")
    ]
    return [row for row in rows if row[0] == first_column]


def hook_count(module: torch.nn.Module) -> int:
    """Forward hooks and pre-hooks on ``module`` and everything under it."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


def recorded_firings(policy, taps: list[LayerTap], run) -> dict[str, list[torch.Tensor]]:
    """Every tensor each tap's modules see (``input`` taps) or return while ``run()`` runs, by hooks of our own.

    An ``output`` tap is read with its ``output_key``, or the first element of a tuple.
    """
    seen = {tap.path: [] for tap in taps}
    with_handles = []

    def record(path: str, value) -> None:
        seen[path].append(value)

    for tap, module in [(each, module) for each in taps for module in resolve_modules(policy, each.path)]:
        if tap.read == "input":
            with_handles.append(
                module.register_forward_pre_hook(lambda m, inputs, p=tap.path: record(p, inputs[0]))
            )
        else:
            with_handles.append(
                module.register_forward_hook(
                    lambda m, i, out, p=tap.path, key=tap.output_key: record(
                        p, out[key] if key is not None else out[0] if isinstance(out, tuple) else out
                    )
                )
            )
    try:
        run()
    finally:
        for handle in with_handles:
            handle.remove()
    return seen
