"""Replay mode: run a policy's encode-only path over the frames of a LeRobotDataset, then score.

Each frame goes through the policy's own preprocessor (rename, tokenizer, normalizer, ...)
and its encode-only path (:func:`lerobot_cknna.capture.hooks.encode_features`); feat B is the
dataset's ``observation.state`` as stored, before the normalizer. Every sample keeps its
episode index, frame index and task. :func:`run_replay` is the whole mode: build the policy,
check the dataset fits it, gather (over processes with ``accelerate``), then score and publish.
"""

import functools
import logging
from collections.abc import Sequence

import torch
from accelerate import PartialState
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.policies.factory import get_policy_class, make_policy
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.utils.constants import ACTION, OBS_STATE
from tqdm import tqdm

from lerobot_cknna.capture.hook_table import HookSpec, blank_camera_keys, spec_for
from lerobot_cknna.capture.hooks import encode_features
from lerobot_cknna.capture.module_paths import resolve_modules
from lerobot_cknna.compat import apply_policy_fixes, make_pre_post_processors
from lerobot_cknna.compat.policy_construction import policy_construction
from lerobot_cknna.configs.pipeline import CKNNAPipelineConfig
from lerobot_cknna.drivers.buffer_sets import capture_options, make_buffer_sets, published_sets
from lerobot_cknna.drivers.sharding import sharded_replay
from lerobot_cknna.results.feature_sets import BufferSet
from lerobot_cknna.results.features_io import FeatureBuffer
from lerobot_cknna.results.provenance import run_source, weights_provenance
from lerobot_cknna.results.publish import publish


def sample_frames(dataset: LeRobotDataset, max_samples: int | None) -> tuple[list[int], dict]:
    """Dataset indices to replay, and how they were chosen (recorded in ``cknna.json``).

    All frames of the loaded episodes, or ``max_samples`` of them evenly spaced over the
    concatenated episodes, so every episode contributes in proportion to its length.
    """
    total = len(dataset)
    if max_samples is None or max_samples >= total:
        return list(range(total)), {"method": "all frames", "n_frames": total}
    indices = torch.linspace(0, total - 1, max_samples).round().long().unique().tolist()
    return indices, {"method": "evenly spaced", "n_frames": total, "max_samples": max_samples}


def check_dataset_fits(
    dataset: LeRobotDataset, policy, spec: HookSpec, rename_map: dict[str, str] | None = None
) -> bool:
    """The dataset has the state and the cameras the policy reads, or a ValueError that says what differs.

    Args:
        dataset: the dataset to replay.
        policy: the policy to replay it through.
        spec: the policy's hook table entry (whether feat A reads the state, blank camera slots).
        rename_map: dataset key -> policy key (``--rename_map``).

    Returns:
        Whether the policy gets the dataset's state: ``False`` when the sizes differ and feat A
        never reads it (a policy of another robot, replayed on the cameras alone, gets a zero
        state of its own size).
    """
    features = dataset.meta.features
    if OBS_STATE not in features:
        raise ValueError(
            f"Dataset {dataset.repo_id} has no {OBS_STATE!r} (features: {sorted(features)}); "
            "feat B is the proprioceptive state, so replay needs it."
        )
    expected = policy.config.robot_state_feature
    state_fits = expected is None or tuple(features[OBS_STATE]["shape"]) == tuple(expected.shape)
    if not state_fits and spec.reads_state:
        raise ValueError(
            f"Dataset {dataset.repo_id} has a {tuple(features[OBS_STATE]['shape'])} state but the policy "
            f"expects {tuple(expected.shape)}; replay it on data of the robot it was trained for."
        )
    if not state_fits:
        logging.warning(
            f"The policy takes a {tuple(expected.shape)} state and {dataset.repo_id} has "
            f"{tuple(features[OBS_STATE]['shape'])}: feat A comes from the cameras alone, so the policy "
            "gets a zero state of its own size (feat A never reads it); the dataset's state is feat B."
        )
    blank = blank_camera_keys(spec, policy.config)
    cameras = {(rename_map or {}).get(key, key) for key in features}
    missing = [key for key in policy.config.image_features if key not in cameras and key not in blank]
    if missing:
        raise ValueError(
            f"Dataset {dataset.repo_id} lacks the cameras {missing} the policy reads "
            f"(dataset cameras: {dataset.meta.camera_keys}). Map them with --rename_map='{{...}}'."
        )
    return state_fits


def frames_already_gathered(dataset: LeRobotDataset, indices: list[int], buffer: FeatureBuffer) -> int:
    """How many of ``indices`` a resumed ``buffer`` holds; they must be the first ones, in order.

    Raises:
        ValueError: the buffer holds other frames (the dataset or its selection changed).
    """
    done = len(buffer)
    if done == 0:
        return 0
    gathered = buffer.features()
    expected = dataset.hf_dataset.select(indices[:done]).with_format("torch")[:]
    if done > len(indices) or not (
        torch.equal(gathered.episode_index, expected["episode_index"])
        and torch.equal(gathered.frame_index, expected["frame_index"])
    ):
        raise ValueError(
            f"The {done} samples in {buffer.directory} are not the first frames this run selects from "
            f"{dataset.repo_id}; the dataset changed since. Start a new run in another --output_dir."
        )
    return done


def single_task_batches(dataset: LeRobotDataset, indices: list[int], batch_size: int) -> list[list[int]]:
    """``indices`` batched in order, at most ``batch_size`` each, one task per batch.

    Some policies pad a batch's instructions to the longest one and let valid tokens attend to
    the padding (GR00T: ``attends_padding`` in the hook table), so a sample's feat A would depend
    on which other tasks share its batch. With one task per batch it does not, as in simulation,
    where each vector env runs one task.
    """
    if not indices:
        return []
    tasks = dataset.hf_dataset.select(indices).with_format("torch")[:]["task_index"].tolist()
    batches: list[list[int]] = []
    for position, (index, task) in enumerate(zip(indices, tasks, strict=True)):
        if not batches or len(batches[-1]) == batch_size or task != tasks[position - 1]:
            batches.append([])
        batches[-1].append(index)
    return batches


def _policy_input(observation: dict, policy, state_to_policy: bool) -> dict:
    """The observation the policy gets: the dataset's, or with a zero state of the policy's own size."""
    if state_to_policy:
        return observation
    n_samples = observation[OBS_STATE].shape[0]
    return {**observation, OBS_STATE: torch.zeros(n_samples, *policy.config.robot_state_feature.shape)}


def _observation(batch: dict) -> dict:
    return {key: value for key, value in batch.items() if key.startswith("observation.") or key == "task"}


def replay(
    policy,
    preprocessor,
    dataset: LeRobotDataset,
    batches: list[list[int]],
    buffer: FeatureBuffer,
    num_workers: int = 0,
    hook_path: str | None = None,
    show_progress: bool = True,
    buffer_sets: Sequence[BufferSet] = (),
    state_to_policy: bool = True,
) -> None:
    """Encode ``batches`` (lists of dataset indices) with ``policy``; add each sample to ``buffer``.

    ``hook_path`` captures that module instead of the hook table's. With ``buffer_sets`` (the
    layers of the sweep, the token groups), the same forward also captures what each holds, added
    there. ``state_to_policy=False`` gives the policy a zero state of its own size instead of the
    dataset's (see :func:`check_dataset_fits`); the dataset's state is still feat B.
    """
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=num_workers)
    logging.info(f"Replaying {sum(map(len, batches))} frames of {dataset.repo_id} in {len(batches)} batches")
    for batch in tqdm(loader, desc="Encoding frames", unit="batch", disable=not show_progress):
        observation = _observation(batch)
        state = observation[OBS_STATE].clone()
        where = (state, batch["episode_index"], batch["frame_index"])
        policy_input = preprocessor(_policy_input(observation, policy, state_to_policy))
        if not buffer_sets:
            feat_a = encode_features(policy, policy_input, hook_path)
        else:
            captured = encode_features(policy, policy_input, hook_path, **capture_options(buffer_sets))
            feat_a = captured[buffer_sets[0].feat_a_key]
            for extra in buffer_sets:
                extra.add(captured, *where, tasks=list(batch["task"]))
        buffer.add(feat_a, *where, tasks=list(batch["task"]))


def gather_replay(cfg: CKNNAPipelineConfig, policy, preprocessor, dataset: LeRobotDataset,
                  indices: list[int], state: PartialState, buffer_sets: Sequence[BufferSet] = (),
                  state_to_policy: bool = True) -> FeatureBuffer | None:  # fmt: skip
    """Encode ``indices`` (those not gathered before, with ``--resume``); the main process gets them all.

    ``buffer_sets`` (one process only) receive the layer taps or token groups of the same
    forwards; ``state_to_policy`` is :func:`replay`'s.

    Returns:
        The run's samples on the main process, ``None`` on the others.
    """
    encode = functools.partial(
        replay,
        policy,
        preprocessor,
        dataset,
        num_workers=cfg.cknna.num_workers,
        hook_path=cfg.cknna.hook_path,
        buffer_sets=buffer_sets,
        state_to_policy=state_to_policy,
    )
    if state.num_processes == 1:
        buffer = FeatureBuffer(cfg.output_dir, cfg.cknna.flush_every_s, resume=cfg.resume)
        done = frames_already_gathered(dataset, indices, buffer)
        if cfg.resume:
            logging.info(f"Resuming {cfg.output_dir}: {done} of {len(indices)} frames were gathered before")
        try:
            encode(single_task_batches(dataset, indices[done:], cfg.cknna.batch_size), buffer)
        finally:
            buffer.flush()
            for extra in buffer_sets:
                extra.flush()
            logging.info(f"{len(buffer)} samples kept in {cfg.output_dir}")
    else:
        buffer = sharded_replay(encode, single_task_batches(dataset, indices, cfg.cknna.batch_size),
                                cfg.output_dir, state, cfg.cknna.flush_every_s)  # fmt: skip
    if buffer is not None:
        buffer.close()
    for extra in buffer_sets:
        extra.close()
    return buffer


def build_policy(cfg: CKNNAPipelineConfig, dataset: LeRobotDataset) -> PreTrainedPolicy:
    """``make_policy`` on the dataset, except for a checkpoint of a robot with another action size.

    ``make_policy`` takes the action space from the dataset, so a checkpoint trained for another
    action size (ACT on ALOHA, Diffusion on PushT) would not load on LIBERO; it is loaded as saved
    (LeRobot's ``from_pretrained``), and only its feat A is used.
    """
    checkpoint_action = cfg.policy.action_feature
    checkpoint_shape = tuple(checkpoint_action.shape) if checkpoint_action else None
    dataset_shape = tuple(dataset.meta.features.get(ACTION, {}).get("shape", ()))
    with policy_construction(cfg.policy.pretrained_path):
        if cfg.policy.pretrained_path and checkpoint_shape not in (None, dataset_shape):
            logging.warning(
                f"The checkpoint acts in {checkpoint_shape}, {dataset.repo_id} in {dataset_shape}: "
                "loaded as saved, for its feat A alone."
            )
            policy = get_policy_class(cfg.policy.type).from_pretrained(
                cfg.policy.pretrained_path, config=cfg.policy
            )
            return policy.to(cfg.policy.device).eval()
        return make_policy(cfg.policy, ds_meta=dataset.meta, rename_map=cfg.rename_map).eval()


def run_replay(cfg: CKNNAPipelineConfig, state: PartialState) -> dict | None:
    """Replay ``cfg.dataset`` through the policy's encode-only path, then score and report.

    Returns:
        The ``cknna.json`` record (``None`` on the non-main processes of a sharded run).
    """
    dataset = LeRobotDataset(
        cfg.dataset.repo_id,
        root=cfg.dataset.root,
        episodes=cfg.dataset.episodes,
        revision=cfg.dataset.revision,
        video_backend=cfg.dataset.video_backend,
    )
    policy = build_policy(cfg, dataset)
    apply_policy_fixes(policy)
    spec = spec_for(policy.config.type, cfg.cknna.hook_path, policy.config)
    resolve_modules(policy, spec.module_path)
    state_to_policy = check_dataset_fits(dataset, policy, spec, cfg.rename_map)
    preprocessor, _ = make_pre_post_processors(
        cfg.policy,
        pretrained_path=cfg.policy.pretrained_path,
        dataset_stats=dataset.meta.stats,
        preprocessor_overrides={
            "device_processor": {"device": str(policy.config.device)},
            "rename_observations_processor": {"rename_map": cfg.rename_map},
        },
    )
    indices, sampling = sample_frames(dataset, cfg.cknna.max_samples)
    sets = make_buffer_sets(cfg.output_dir, spec, policy, cfg.cknna)
    buffer = gather_replay(cfg, policy, preprocessor, dataset, indices, state, sets, state_to_policy)
    if buffer is None:
        return None
    data = {
        "repo_id": dataset.repo_id,
        "root": str(dataset.root),
        "episodes": cfg.dataset.episodes,
        "sampling": sampling,
    }
    provenance = weights_provenance(cfg.policy.pretrained_path, cfg.cknna.weights, target=dataset.repo_id)
    source = run_source(policy, spec, provenance, mode="replay", data=data)
    return publish(
        cfg.output_dir,
        buffer.features(),
        cfg.cknna,
        source,
        report=cfg.cknna.report,
        **published_sets(sets),
    )
