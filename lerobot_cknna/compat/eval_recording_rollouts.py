"""``lerobot-eval --eval.recording=true`` records every batch of episodes of a task into the same folder."""

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

from lerobot_cknna.compat.registry import EvalFix, register
from lerobot_cknna.utils.patching import patched


@register("eval_recording_rollouts")
class EvalRecordingRollouts(EvalFix):
    """``eval_policy`` passes the same ``recording_dir`` to each of its ``rollout`` calls (scripts/lerobot_eval.py:511-527), and ``rollout`` creates a ``LeRobotDataset`` at ``recording_dir`` (or ``recording_dir/env_i``) every time (:228-250).

    A task evaluated in more than one batch (``--eval.n_episodes`` above ``--eval.batch_size``)
    therefore stops at its second batch: the dataset folder already exists.
    """

    symptom = "`FileExistsError: ... recordings/libero_spatial_0` at the second batch of episodes of a task"
    remedy = "each batch of a task records into its own folder, `recordings/TASK/batch_K`"

    @contextlib.contextmanager
    def active(self, lerobot_eval, env_cfg) -> Iterator[None]:
        """While the block runs, each ``rollout`` of one recording folder records into a folder of its own."""
        rollout = lerobot_eval.rollout
        batches: dict[Path, int] = {}

        @functools.wraps(rollout)
        def rollout_of_one_batch(*args, recording_dir: Path | None = None, **kwargs):
            if recording_dir is not None:
                batch = batches[Path(recording_dir)] = batches.get(Path(recording_dir), -1) + 1
                recording_dir = Path(recording_dir) / f"batch_{batch}"
            return rollout(*args, recording_dir=recording_dir, **kwargs)

        with patched(lerobot_eval, "rollout", rollout_of_one_batch):
            yield
