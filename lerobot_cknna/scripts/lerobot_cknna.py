r"""``lerobot-cknna``: how well does a LeRobot policy's condition embedding line up with proprioception?

Takes every ``lerobot-eval`` flag, plus ``--cknna.*`` and ``--dataset.*``. Simulation, through
LeRobot's own evaluation loop::

    lerobot-cknna --policy.path=HuggingFaceVLA/smolvla_libero \\
        --env.type=libero --env.task=libero_spatial --eval.n_episodes=10 --eval.batch_size=2

Replay of a LeRobotDataset (hub id, or a local copy with ``--dataset.root``)::

    lerobot-cknna --policy.path=HuggingFaceVLA/smolvla_libero \\
        --dataset.repo_id=HuggingFaceVLA/libero --dataset.episodes='[0,1,2]' --cknna.max_samples=2000

Writes ``features.safetensors``, ``cknna.json``, ``report.md`` and plots into
``outputs/cknna/DATE/TIME_JOB/`` (or ``--output_dir``); simulation also writes LeRobot's
``eval_info.json`` there. ``--config_path=configs/....yaml`` reads the options from a file.
"""

import logging

from lerobot.configs import parser
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.policies.factory import make_policy, make_pre_post_processors
from lerobot.utils.random_utils import set_seed

from lerobot_cknna.capture import resolve_module
from lerobot_cknna.configs.pipeline import CKNNAPipelineConfig
from lerobot_cknna.features_io import FeatureBuffer
from lerobot_cknna.fixes import action_tokenizer_config, apply_runtime_fixes
from lerobot_cknna.hook_table import spec_for
from lerobot_cknna.pi_environment import require_pi_environment
from lerobot_cknna.provenance import run_source, weights_provenance
from lerobot_cknna.replay import check_dataset_fits, replay, sample_frames
from lerobot_cknna.results import publish
from lerobot_cknna.scripts.user_errors import run_command


def run_replay(cfg: CKNNAPipelineConfig) -> dict:
    """Replay ``cfg.dataset`` through the policy's encode-only path, then score and report."""
    dataset = LeRobotDataset(
        cfg.dataset.repo_id,
        root=cfg.dataset.root,
        episodes=cfg.dataset.episodes,
        revision=cfg.dataset.revision,
        video_backend=cfg.dataset.video_backend,
    )
    policy = make_policy(cfg.policy, ds_meta=dataset.meta, rename_map=cfg.rename_map).eval()
    apply_runtime_fixes(policy)
    spec = spec_for(policy.config.type, cfg.cknna.hook_path)
    resolve_module(policy, spec.module_path)
    check_dataset_fits(dataset, policy)
    preprocessor, _ = make_pre_post_processors(
        cfg.policy,
        pretrained_path=cfg.policy.pretrained_path,
        dataset_stats=dataset.meta.stats,
        preprocessor_overrides={
            "device_processor": {"device": str(policy.config.device)},
            "rename_observations_processor": {"rename_map": cfg.rename_map},
            **action_tokenizer_config.preprocessor_overrides(cfg.policy),
        },
    )
    indices, sampling = sample_frames(dataset, cfg.cknna.max_samples)
    buffer = FeatureBuffer(cfg.output_dir)
    try:
        replay(
            policy, preprocessor, dataset, indices, buffer, cfg.cknna.batch_size, cfg.cknna.num_workers,
            cfg.cknna.hook_path,
        )  # fmt: skip
    finally:
        saved = buffer.flush()
        if saved is not None:
            logging.info(f"Saved {len(buffer)} samples to {saved}")
    data = {
        "repo_id": dataset.repo_id,
        "root": str(dataset.root),
        "episodes": cfg.dataset.episodes,
        "sampling": sampling,
    }
    provenance = weights_provenance(cfg.policy.pretrained_path, cfg.cknna.weights, target=dataset.repo_id)
    source = run_source(policy, spec, provenance, mode="replay", data=data)
    return publish(cfg.output_dir, buffer.features(), cfg.cknna, source, report=cfg.cknna.report)


def run_simulation(cfg: CKNNAPipelineConfig) -> None:
    """Run LeRobot's own ``eval_main`` with feature capture; results land beside ``eval_info.json``."""
    from lerobot.scripts import lerobot_eval

    from lerobot_cknna.simulation import instrumented_lerobot_eval

    if cfg.env.type == "libero":
        from lerobot_cknna.libero_offline import prepare_libero, select_mujoco_backend

        prepare_libero()
        select_mujoco_backend()
    with instrumented_lerobot_eval(cfg.cknna):
        lerobot_eval.eval_main.__wrapped__(cfg)


@parser.wrap()
def cknna_main(cfg: CKNNAPipelineConfig) -> None:
    """Parse the command line (LeRobot's draccus parser, ``--policy.path`` included) and run."""
    set_seed(cfg.seed)
    require_pi_environment(cfg.policy.type)
    try:
        cfg.output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"Cannot create the output directory {cfg.output_dir} ({error}); pass --output_dir=DIR."
        ) from error
    logging.info(f"Output dir: {cfg.output_dir}")
    if cfg.dataset is not None:
        run_replay(cfg)
    else:
        run_simulation(cfg)
    logging.info(f"Done. Report: {cfg.output_dir / 'report.md'}")


def main():
    """Console entry point."""
    run_command(cknna_main)


if __name__ == "__main__":
    main()
