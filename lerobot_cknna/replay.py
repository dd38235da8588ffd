"""Replay mode: run a policy's encode-only path over the frames of a LeRobotDataset.

Each frame goes through the policy's own preprocessor (rename, tokenizer, normalizer, ...)
and the encode-only function of its type (:func:`lerobot_cknna.capture.encode_features`);
feat B is the dataset's ``observation.state`` as stored, before the normalizer. Every
sample keeps its episode index, frame index and task.
"""

import logging

import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.utils.constants import OBS_IMAGES, OBS_STATE
from tqdm import tqdm

from lerobot_cknna.capture import encode_features, encode_layers
from lerobot_cknna.features_io import FeatureBuffer
from lerobot_cknna.layer_features import LayerBuffers


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
    dataset: LeRobotDataset, policy, reads_state: bool = True, rename_map: dict[str, str] | None = None
) -> bool:
    """The dataset has the state and the cameras the policy reads, or a ValueError that says what differs.

    Args:
        dataset: the dataset to replay.
        policy: the policy to replay it through.
        reads_state: whether feat A depends on the state (the hook table's ``reads_state``).
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
    if not state_fits and reads_state:
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
    # Slots the policy fills with blank images itself (``empty_cameras`` of Pi0, Pi0.5, SmolVLA).
    blank = {f"{OBS_IMAGES}.empty_camera_{i}" for i in range(getattr(policy.config, "empty_cameras", 0))}
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
    layer_buffers: LayerBuffers | None = None,
    state_to_policy: bool = True,
) -> None:
    """Encode ``batches`` (lists of dataset indices) with ``policy``; add each sample to ``buffer``.

    ``hook_path`` captures that module instead of the hook table's. With ``layer_buffers``, the
    same forward also captures every layer of the sweep, added there. ``state_to_policy=False``
    gives the policy a zero state of its own size instead of the dataset's (see
    :func:`check_dataset_fits`); the dataset's state is still feat B.
    """
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=num_workers)
    logging.info(f"Replaying {sum(map(len, batches))} frames of {dataset.repo_id} in {len(batches)} batches")
    for batch in tqdm(loader, desc="Encoding frames", unit="batch", disable=not show_progress):
        observation = _observation(batch)
        state = observation[OBS_STATE].clone()
        where = (state, batch["episode_index"], batch["frame_index"])
        policy_input = preprocessor(_policy_input(observation, policy, state_to_policy))
        if layer_buffers is None:
            feat_a = encode_features(policy, policy_input, hook_path)
        else:
            layers = encode_layers(policy, policy_input, hook_path)
            feat_a = layers[layer_buffers.taps[-1].path]
            layer_buffers.add(layers, *where, tasks=list(batch["task"]))
        buffer.add(feat_a, *where, tasks=list(batch["task"]))
