"""Replay parity: evidence that simulation and replay measure the same thing.

With ``--cknna.check_replay=true`` a simulation records its rollouts with LeRobot's own
recording (``--eval.recording``), images stored as PNG instead of video so that nothing is lost
(:func:`lossless_recording`). After the evaluation, every recorded frame at which the model ran
is rebuilt into the env's raw observation and sent again along the way a simulation step takes:
``preprocess_observation``, the task, the env preprocessor (feat B is read first in it, as in
simulation), the policy preprocessor, then the encode-only path of replay
(:func:`lerobot_cknna.capture.hooks.encode_features`). :func:`check_replay_parity` compares the
two per sample and returns what ``cknna.json`` records as ``replay_parity``::

    {"n": 60, "missing": 0, "max_abs_diff_feat_b": 0.0, "max_rel_diff_feat_a": 3e-7,
     "min_cosine_feat_a": 1.0, "tolerance": 1e-4, "agrees": true, "recording": "recordings"}

Recorded states are float32, as ``preprocess_observation`` makes them, and images are the
env's uint8 pixels, so the inputs are the same; what can differ is float rounding between a
batch of envs and a batch of one episode's frames (``tolerance``, relative to feat A's norm).
"""

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.envs.utils import preprocess_observation
from lerobot.utils.constants import ACTION, OBS_IMAGES
from tqdm import tqdm

from lerobot_cknna.capture.hooks import encode_features
from lerobot_cknna.drivers.proprioception_tap import ProprioceptionTapStep
from lerobot_cknna.drivers.rollout_recorder import EpisodeOrigin
from lerobot_cknna.results.features_io import SavedFeatures
from lerobot_cknna.results.parity import parity_summary
from lerobot_cknna.utils.patching import patched


@contextlib.contextmanager
def lossless_recording(lerobot_eval) -> Iterator[None]:
    """While the block runs, ``lerobot_eval`` records camera frames as PNG images, not as video."""
    dataset_features = lerobot_eval._env_features_to_dataset_features

    def image_features(env_features: dict) -> dict:
        features = dataset_features(env_features)
        return {
            key: {**feature, "dtype": "image"} if feature["dtype"] == "video" else feature
            for key, feature in features.items()
        }

    with patched(lerobot_eval, "_env_features_to_dataset_features", image_features):
        yield


def recording_folder(recording_dir: Path, origin: EpisodeOrigin) -> Path:
    """Where ``lerobot-eval`` recorded an episode: one dataset per task, batch and env of the batch.

    ``recording_dir/SUITE_TASK`` is LeRobot's; ``batch_K`` is the fix ``eval_recording_rollouts``;
    ``env_I`` is LeRobot's, for batches of more than one env.
    """
    folder = Path(recording_dir) / f"{origin.suite}_{origin.task_id}" / f"batch_{origin.batch}"
    return folder / f"env_{origin.env_index}" if origin.num_envs > 1 else folder


def raw_observation(frames: list[dict], features_map: dict[str, str]) -> dict:
    """The env's raw (nested, batched) observation rebuilt from recorded dataset frames.

    The inverse of ``lerobot_eval._build_raw_frame``: a camera recorded as
    ``observation.images.CAM`` was the raw observation's ``pixels/CAM`` (uint8 HWC; the dataset
    gives it back as float CHW in [0, 1]), and every other recorded feature was the raw path that
    ``features_map`` names it after.

    Args:
        frames: recorded frames (``LeRobotDataset`` items), one per batch row.
        features_map: the env config's raw observation path -> recorded feature name.
    """
    paths = {name: path for path, name in features_map.items() if name != ACTION}
    paths.update(
        {
            name: f"pixels/{name.removeprefix(f'{OBS_IMAGES}.')}"
            for name in frames[0]
            if name.startswith(f"{OBS_IMAGES}.")
        }
    )
    observation: dict = {}
    for name, path in paths.items():
        if name not in frames[0]:
            continue
        values = torch.stack([frame[name] for frame in frames])
        if name.startswith(f"{OBS_IMAGES}."):
            values = (values * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
        *parents, leaf = path.split("/")
        node = observation
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = values.numpy()
    return observation


class RecordedFrameReplay:
    """Sends recorded frames along the way a simulation step takes, up to feat A and feat B.

    Args:
        policy: the evaluated policy.
        env_preprocessor: the env preprocessor the evaluation ran.
        preprocessor: the policy preprocessor the evaluation ran.
        state_steps: the env's own preprocessing steps, which build feat B.
        hook_path: module to capture instead of the hook table's.
    """

    def __init__(self, policy, env_preprocessor, preprocessor, state_steps: list, hook_path: str | None):
        self.policy, self.env_preprocessor, self.preprocessor = policy, env_preprocessor, preprocessor
        self.tap = ProprioceptionTapStep(state_steps=list(state_steps))
        self.hook_path = hook_path

    def features(self, frames: list[dict], features_map: dict[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Feat A and feat B of recorded ``frames`` (one task), as a simulation step computes them."""
        observation = preprocess_observation(raw_observation(frames, features_map))
        observation["task"] = [frame["task"] for frame in frames]
        with patched(self.env_preprocessor, "steps", [self.tap, *self.env_preprocessor.steps]):
            observation = self.env_preprocessor(observation)
        feat_a = encode_features(self.policy, self.preprocessor(observation), self.hook_path)
        return feat_a, self.tap.latest[0]


def check_replay_parity(
    recording_dir: Path,
    features: SavedFeatures,
    origins: dict[int, EpisodeOrigin],
    replay: RecordedFrameReplay,
    features_map: dict[str, str],
    batch_size: int,
) -> dict:
    """Replay every sample of a simulation from its recorded frame and compare the features.

    Args:
        recording_dir: the evaluation's ``recordings`` folder.
        features: what the simulation gathered.
        origins: episode index -> where ``lerobot-eval`` ran and recorded it.
        replay: the way from a recorded frame to feat A and feat B.
        features_map: the env config's raw observation path -> recorded feature name.
        batch_size: frames per forward pass.

    Returns:
        The ``replay_parity`` record (see the module docstring); ``missing`` counts samples whose
        frame the recording does not hold (they are left out of the comparison).
    """
    simulated_a, simulated_b, replayed_a, replayed_b, missing = [], [], [], [], 0
    episodes = features.episode_index.unique().tolist()
    with tqdm(total=len(features.episode_index), desc="replay parity", unit="sample") as progress:
        for episode in episodes:
            rows = (features.episode_index == episode).nonzero().flatten().tolist()
            recording = LeRobotDataset(
                "local/eval_recording", root=recording_folder(recording_dir, origins[episode])
            )
            frames_of = {int(frame): i for i, frame in enumerate(recording.hf_dataset["frame_index"])}
            present = [row for row in rows if int(features.frame_index[row]) in frames_of]
            missing += len(rows) - len(present)
            for start in range(0, len(present), batch_size):
                chunk = present[start : start + batch_size]
                frames = [recording[frames_of[int(features.frame_index[row])]] for row in chunk]
                feat_a, feat_b = replay.features(frames, features_map)
                replayed_a.append(feat_a)
                replayed_b.append(feat_b)
                simulated_a.append(features.feat_a[chunk])
                simulated_b.append(features.feat_b[chunk])
            progress.update(len(rows))
    if not simulated_a:
        raise ValueError(
            f"--cknna.check_replay: no sample of this run has a recorded frame in {recording_dir}."
        )
    parity = parity_summary(*map(torch.cat, (simulated_a, replayed_a, simulated_b, replayed_b)))
    parity.update(missing=missing, recording=Path(recording_dir).name)
    logging.info(
        f"Replay parity over {parity['n']} samples: feat A within {parity['max_rel_diff_feat_a']:.2e} relative "
        f"(min cosine {parity['min_cosine_feat_a']:.6f}), feat B within {parity['max_abs_diff_feat_b']:.2e}"
    )
    return parity
