r"""``lerobot-cknna``: how well does a LeRobot policy's condition embedding line up with proprioception?

Takes every ``lerobot-eval`` flag, plus ``--cknna.*`` and ``--dataset.*``. Simulation, through
LeRobot's own evaluation loop::

    lerobot-cknna --policy.path=HuggingFaceVLA/smolvla_libero \\
        --env.type=libero --env.task=libero_spatial --eval.n_episodes=10 --eval.batch_size=2

Replay of a LeRobotDataset (hub id, or a local copy with ``--dataset.root``)::

    lerobot-cknna --policy.path=HuggingFaceVLA/smolvla_libero \\
        --dataset.repo_id=HuggingFaceVLA/libero --dataset.episodes='[0,1,2]' --cknna.max_samples=2000

Replay with ``--cknna.layers=true`` also scores every layer along the path to the hooked
module (``layers.json``, ``layers.png``, a section in ``report.md``).

Writes ``features.safetensors``, ``cknna.json``, ``report.md`` and plots into
``outputs/cknna/DATE/TIME_JOB/`` (or ``--output_dir``); simulation also writes LeRobot's
``eval_info.json`` there. ``--config_path=configs/....yaml`` reads the options from a file.
"""

import functools
import logging

from accelerate import PartialState
from lerobot.configs import parser
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.policies.factory import get_policy_class, make_policy
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.utils.constants import ACTION
from lerobot.utils.random_utils import set_seed

from lerobot_cknna.checkpoints import refuse_removed_policy_type
from lerobot_cknna.configs.pipeline import CKNNAPipelineConfig
from lerobot_cknna.features_io import FeatureBuffer, refuse_earlier_run
from lerobot_cknna.fixes import apply_policy_fixes, fixed_config_loading, make_pre_post_processors
from lerobot_cknna.hook_table import spec_for, sweep_taps
from lerobot_cknna.layer_features import LayerBuffers
from lerobot_cknna.module_paths import resolve_modules
from lerobot_cknna.provenance import run_source, weights_provenance
from lerobot_cknna.replay import (
    check_dataset_fits,
    frames_already_gathered,
    replay,
    sample_frames,
    single_task_batches,
)
from lerobot_cknna.results import publish
from lerobot_cknna.resume import check_same_run, save_run_config
from lerobot_cknna.scripts.user_errors import run_command
from lerobot_cknna.sharding import agree_on_run_dir, sharded_replay
from lerobot_cknna.tiny_policies import policy_construction


def gather_replay(cfg: CKNNAPipelineConfig, policy, preprocessor, dataset: LeRobotDataset,
                  indices: list[int], state: PartialState, layer_buffers: LayerBuffers | None = None,
                  state_to_policy: bool = True) -> FeatureBuffer | None:  # fmt: skip
    """Encode ``indices`` (those not gathered before, with ``--resume``); the main process gets them all.

    ``layer_buffers`` (one process only) receive the layer sweep of the same forwards;
    ``state_to_policy`` is :func:`replay`'s.

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
        layer_buffers=layer_buffers,
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
            if layer_buffers is not None:
                layer_buffers.flush()
            logging.info(f"{len(buffer)} samples kept in {cfg.output_dir}")
    else:
        buffer = sharded_replay(encode, single_task_batches(dataset, indices, cfg.cknna.batch_size),
                                cfg.output_dir, state, cfg.cknna.flush_every_s)  # fmt: skip
    if buffer is not None:
        buffer.close()
    if layer_buffers is not None:
        layer_buffers.close()
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
    if state.num_processes > 1:
        cfg.policy.device = str(state.device)
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
    state_to_policy = check_dataset_fits(dataset, policy, spec.reads_state, cfg.rename_map)
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
    layer_buffers = (
        LayerBuffers(cfg.output_dir, sweep_taps(spec, policy), cfg.cknna.flush_every_s)
        if cfg.cknna.layers
        else None
    )
    buffer = gather_replay(cfg, policy, preprocessor, dataset, indices, state, layer_buffers, state_to_policy)
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
    layers = None if layer_buffers is None else layer_buffers.layers()
    return publish(
        cfg.output_dir, buffer.features(), cfg.cknna, source, report=cfg.cknna.report, layers=layers
    )


def run_simulation(cfg: CKNNAPipelineConfig) -> None:
    """Run LeRobot's own ``eval_main`` with feature capture; results land beside ``eval_info.json``."""
    from lerobot.scripts import lerobot_eval

    from lerobot_cknna.simulation import instrumented_lerobot_eval

    if cfg.env.type == "libero":
        from lerobot_cknna.libero_offline import prepare_libero, select_mujoco_backend

        prepare_libero()
        select_mujoco_backend()
    with instrumented_lerobot_eval(cfg.cknna, cfg.env), policy_construction(cfg.policy.pretrained_path):
        lerobot_eval.eval_main.__wrapped__(cfg)


@parser.wrap()
def cknna_main(cfg: CKNNAPipelineConfig) -> None:
    """Parse the command line (LeRobot's draccus parser, ``--policy.path`` included) and run."""
    set_seed(cfg.seed)
    cfg.cknna.metrics_device  # noqa: B018  (a GPU this machine lacks is reported before any work)
    state = PartialState()
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
        run_simulation(cfg)
    if state.is_main_process:
        logging.info(f"Done. Report: {cfg.output_dir / 'report.md'}")


def main():
    """Console entry point."""
    run_command(_main)


def _main() -> None:
    refuse_removed_policy_type(parser.get_type_arg("policy"))
    with fixed_config_loading():
        cknna_main()


if __name__ == "__main__":
    main()
