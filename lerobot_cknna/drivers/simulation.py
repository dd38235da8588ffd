"""Simulation mode: gather paired features inside LeRobot's own evaluation loop.

Nothing of ``lerobot-eval``'s rollout is copied. :func:`instrument_eval_policy_all` wraps
``lerobot.scripts.lerobot_eval.eval_policy_all`` so that, while it runs, a
:class:`~lerobot_cknna.drivers.rollout_recorder.SimulationRecorder` pairs feat A and feat B at
every step that ran the model; when it returns, the features are scored and published beside
``eval_info.json``.

Sync and async vector envs work alike: the policy, its processors and the env processors run
in this process; only the simulators run in the async workers. An evaluation that stops early
(a worker that died, Ctrl-C) keeps the episodes it finished on disk and writes
``interruption.json`` (:mod:`lerobot_cknna.results.interruption`): which episodes were lost and
why; ``lerobot-cknna-score DIR`` scores what was kept and says that it is partial.

Under ``accelerate launch`` each process evaluates its share of the tasks' episodes
(:mod:`lerobot_cknna.drivers.simulation_sharding`). ``--cknna.check_replay`` replays the recorded
frames through the encode-only path (:mod:`lerobot_cknna.drivers.replay_parity`).
"""

import contextlib
import functools
import logging
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

from accelerate import PartialState

from lerobot_cknna.capture.hook_table import check_simulation, spec_for
from lerobot_cknna.compat import apply_policy_fixes, eval_fixes, make_pre_post_processors
from lerobot_cknna.compat.policy_construction import policy_construction
from lerobot_cknna.configs.cknna import CKNNARunConfig
from lerobot_cknna.configs.pipeline import PARALLEL_TASKS_REFUSED, CKNNAPipelineConfig
from lerobot_cknna.drivers.buffer_sets import make_buffer_sets, published_sets
from lerobot_cknna.drivers.libero.offline import prepare_libero, select_mujoco_backend
from lerobot_cknna.drivers.replay_parity import RecordedFrameReplay, check_replay_parity, lossless_recording
from lerobot_cknna.drivers.rollout_recorder import GatheredSimulation, SimulationRecorder
from lerobot_cknna.drivers.simulation_sharding import (
    SimulationShard,
    evaluate_shares,
    gather_simulation,
    remove_shard_features,
    task_order,
)
from lerobot_cknna.results.feature_sets import BufferSet
from lerobot_cknna.results.features_io import FeatureBuffer
from lerobot_cknna.results.interruption import INTERRUPTION_FILE, RunStoppedError, write_interruption
from lerobot_cknna.results.provenance import run_source, weights_provenance
from lerobot_cknna.results.publish import publish
from lerobot_cknna.utils.patching import patched


def simulation_source(
    policy, cfg: CKNNARunConfig, task_suites: dict[str, str], n_episodes: int, model_calls: int, info: dict
) -> dict:
    """Where a simulation's features come from: the policy, its hook and weights, the suites and episodes."""
    suites = sorted(set(task_suites.values()))
    return run_source(
        policy,
        spec_for(policy.config.type, cfg.hook_path, policy.config),
        weights_provenance(policy.config.pretrained_path, cfg.weights, target=",".join(suites)),
        mode="simulation",
        data={
            "suites": suites,
            "n_episodes": n_episodes,
            "model_calls": model_calls,
            "pc_success": info.get("overall", {}).get("pc_success"),
        },
    )


def stop_reason(error: BaseException) -> str:
    """Why an evaluation stopped, in words: a worker that died shows only as a closed pipe."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(error, EOFError | BrokenPipeError | ConnectionResetError):
        return (
            f"an env worker process died ({type(error).__name__} on its pipe): killed, or out of memory "
            "(each async LIBERO env is a process of about 3 GB; lower --eval.batch_size)"
        )
    return f"{type(error).__name__}: {error}"


def keep_what_finished(
    run_dir: Path, recorder: SimulationRecorder, policy, cfg: CKNNARunConfig, error
) -> None:
    """After ``eval_policy_all`` stopped early: say what was kept and lost, on disk and in the log."""
    reason = stop_reason(error)
    losses = recorder.losses()
    source = simulation_source(
        policy, cfg, recorder.task_suites, recorder.n_episodes, recorder.model_calls, info={}
    )
    path = write_interruption(run_dir, reason, losses, source, recorder.task_suites)
    logging.error(
        f"The evaluation stopped ({reason}). {losses['episodes_kept']} of {losses['episodes_planned']} episodes "
        f"finished and are kept in {run_dir}; {path.name} lists the episodes lost per task. Score what was "
        f"kept with: lerobot-cknna-score {run_dir}"
    )


CHECK_REPLAY_NEEDS_RECORDING = (
    "--cknna.check_replay=true replays the frames lerobot-eval records: add --eval.recording=true "
    "(lerobot-cknna adds it by itself; a lerobot-eval command with the plugin must say it)."
)


def publish_simulation(
    run_dir: Path,
    gathered: GatheredSimulation,
    policy,
    cfg: CKNNARunConfig,
    replay_parity: dict | None = None,
    sets: Sequence[BufferSet] = (),
) -> dict:
    """Score what was gathered during ``eval_policy_all`` (by this process, or by every shard) and publish.

    ``sets`` are the layer taps or token groups this process gathered in the same forwards.
    """
    source = simulation_source(
        policy, cfg, gathered.task_suites, gathered.n_episodes, gathered.model_calls, gathered.info
    )
    return publish(
        run_dir, gathered.features, cfg, source, task_suites=gathered.task_suites, report=cfg.report,
        replay_parity=replay_parity, **published_sets(sets),
    )  # fmt: skip


class ScoringErrors(list):
    """The errors that kept a finished simulation's features from being scored (the features are kept)."""


class EnvProcessing:
    """The env's own preprocessing steps, kept when ``eval_main`` makes the env's processors.

    ``make_env_pre_post_processors`` gives a policy's env processing where it has one (X-VLA's
    replaces LIBERO's); feat B is what the env config's own processing builds, for every policy.
    """

    def __init__(self):
        self.state_steps: list | None = None
        self.features_map: dict[str, str] = {}

    def watching(self, make_env_pre_post_processors: Callable) -> Callable:
        """``make_env_pre_post_processors`` that also keeps the env config's own preprocessing steps."""

        @functools.wraps(make_env_pre_post_processors)
        def make(env_cfg, policy_cfg):
            self.state_steps = list(env_cfg.get_env_processors()[0].steps)
            self.features_map = dict(env_cfg.features_map)
            return make_env_pre_post_processors(env_cfg=env_cfg, policy_cfg=policy_cfg)

        return make


def instrument_eval_policy_all(
    original: Callable, cfg: CKNNARunConfig, errors: ScoringErrors, env_processing: "EnvProcessing",
    shard: SimulationShard | None = None,
) -> Callable:  # fmt: skip
    """LeRobot's ``eval_policy_all``, recording features and scoring them into the run's output dir.

    The output dir is the parent of the ``videos_dir`` (or, with ``--eval.recording=true``,
    ``recording_dir``) that ``eval_main`` passes, so results land beside ``eval_info.json``.

    Args:
        original: LeRobot's ``eval_policy_all``.
        cfg: the ``--cknna.*`` options.
        errors: where a scoring error goes (lerobot-eval still writes ``eval_info.json``).
        env_processing: the env's own preprocessing, as ``eval_main`` made it.
        shard: under ``accelerate launch``, this process's share
            (:mod:`lerobot_cknna.drivers.simulation_sharding`): it evaluates its share of the
            episodes, and the main process scores every process's features and returns the aggregate metrics.
    """

    @functools.wraps(original)
    def eval_policy_all(envs, policy, env_preprocessor, env_postprocessor, preprocessor, postprocessor,
                        n_episodes, **kwargs):  # fmt: skip
        if kwargs.get("max_parallel_tasks", 1) > 1:
            raise ValueError(PARALLEL_TASKS_REFUSED)
        recording_dir = kwargs.get("recording_dir")
        if cfg.check_replay and recording_dir is None:
            raise ValueError(CHECK_REPLAY_NEEDS_RECORDING)
        run_dir = Path(kwargs.get("videos_dir") or recording_dir).parent
        order = task_order(envs)
        features_dir = run_dir if shard is None else shard.directory / "features"
        shares = [] if shard is None else shard.shares(envs, n_episodes)
        if shard is not None:
            envs = {share.suite: {} for share in shares}
            for share in shares:
                envs[share.suite][share.task_id] = share.env
        spec = spec_for(policy.config.type, cfg.hook_path, policy.config)
        check_simulation(spec, policy.config.type)  # lerobot-eval with the plugin: before any rollout
        apply_policy_fixes(policy)
        recorder = SimulationRecorder(
            FeatureBuffer(features_dir, cfg.flush_every_s),
            n_episodes,
            cfg.hook_path,
            env_processing.state_steps,
            {(share.suite, share.task_id): share.episodes(n_episodes) for share in shares},
            make_buffer_sets(features_dir, spec, policy, cfg),
        )
        evaluate = functools.partial(original, policy=policy, env_preprocessor=env_preprocessor,
                                     env_postprocessor=env_postprocessor, preprocessor=preprocessor,
                                     postprocessor=postprocessor)  # fmt: skip
        try:
            with recorder.attached(envs, policy, env_preprocessor):
                if shard is None:
                    info = evaluate(envs, n_episodes=n_episodes, **kwargs)
                else:
                    info, runs = evaluate_shares(evaluate, shares, n_episodes, order, **kwargs)
        except (Exception, KeyboardInterrupt) as error:
            keep_what_finished(features_dir, recorder, policy, cfg, error)
            if isinstance(error, KeyboardInterrupt):
                raise
            raise RunStoppedError(
                f"The evaluation stopped: {stop_reason(error)}. The finished episodes are kept in "
                f"{features_dir} ({INTERRUPTION_FILE} says which were lost); score them with "
                f"lerobot-cknna-score {features_dir}."
            ) from error
        recorder.close()
        if shard is not None:
            main = shard.state.is_main_process
            gathered = gather_simulation(
                recorder, runs, info, order, FeatureBuffer(run_dir) if main else None
            )
            remove_shard_features(shard)
            if not main:
                return info
            info = gathered.info
        try:
            if shard is None:
                gathered = recorder.gathered(info)
            replay_parity = None
            if cfg.check_replay:
                replay = RecordedFrameReplay(
                    policy, env_preprocessor, preprocessor, env_processing.state_steps, cfg.hook_path
                )
                replay_parity = check_replay_parity(
                    Path(recording_dir), gathered.features, recorder.episode_origins, replay,
                    env_processing.features_map, cfg.batch_size,
                )  # fmt: skip
            publish_simulation(run_dir, gathered, policy, cfg, replay_parity, recorder.buffer_sets)
        except ValueError as error:
            logging.error(f"Features kept in {run_dir}, but they could not be scored: {error}")
            errors.append(error)
        return info

    return eval_policy_all


def instrument_lerobot_eval(
    module, cfg: CKNNARunConfig, env_cfg=None, shard: SimulationShard | None = None
) -> tuple[contextlib.ExitStack, ScoringErrors]:
    """Make ``module`` (LeRobot's ``lerobot_eval``) capture and score as it evaluates; undo by closing the stack.

    ``eval_main`` looks up ``eval_policy_all``, ``make_pre_post_processors`` and
    ``make_env_pre_post_processors`` in its module at call time: the first gathers and scores the
    features, the second applies the preprocessor fixes (:mod:`lerobot_cknna.compat`), the third
    keeps the env's own processing for feat B. The eval fixes apply too (those that need the env's
    config, only given it). With ``shard``, the evaluation is this process's share of a sharded one.

    Returns:
        The stack that undoes it, and the list that scoring errors go to.
    """
    errors, env_processing = ScoringErrors(), EnvProcessing()
    instrumented = instrument_eval_policy_all(module.eval_policy_all, cfg, errors, env_processing, shard)
    stack = contextlib.ExitStack()
    stack.enter_context(patched(module, "eval_policy_all", instrumented))
    stack.enter_context(patched(module, "make_pre_post_processors", make_pre_post_processors))
    stack.enter_context(
        patched(
            module,
            "make_env_pre_post_processors",
            env_processing.watching(module.make_env_pre_post_processors),
        )
    )
    stack.enter_context(eval_fixes(module, env_cfg))
    if cfg.check_replay:
        stack.enter_context(lossless_recording(module))
    return stack, errors


@contextmanager
def instrumented_lerobot_eval(cfg: CKNNARunConfig, env_cfg, shard: SimulationShard | None = None):
    """While the block runs, ``lerobot_eval.eval_main`` gathers and scores features as it evaluates in ``env_cfg``.

    Raises:
        ValueError: after the block, if the features could not be scored (e.g. too few samples).
    """
    from lerobot.scripts import lerobot_eval

    stack, errors = instrument_lerobot_eval(lerobot_eval, cfg, env_cfg, shard)
    with stack:
        yield
    if errors:
        raise errors[0]


def run_simulation(cfg: CKNNAPipelineConfig, state: PartialState) -> None:
    """Run LeRobot's own ``eval_main`` with feature capture; results land beside ``eval_info.json``.

    Under ``accelerate launch`` each process evaluates its share of the episodes; the processes other
    than the main one write lerobot-eval's own output into ``shards/rank-R/``.
    """
    if cfg.env.type == "libero":
        # Before lerobot_eval imports LIBERO, robosuite and MuJoCo, which read these at import.
        prepare_libero()
        select_mujoco_backend()
    from lerobot.scripts import lerobot_eval

    if cfg.cknna.check_replay and not cfg.eval.recording:
        logging.info(
            "--cknna.check_replay=true: recording the rollouts (--eval.recording=true), images as PNG."
        )
        cfg.eval.recording = True
    independent_episodes = cfg.env.type == "libero" and cfg.env.hard_reset
    shard = SimulationShard(state, cfg.output_dir, independent_episodes) if state.num_processes > 1 else None
    if shard is not None and not state.is_main_process:
        cfg.output_dir = shard.directory
    with (
        instrumented_lerobot_eval(cfg.cknna, cfg.env, shard),
        policy_construction(cfg.policy.pretrained_path),
    ):
        lerobot_eval.eval_main.__wrapped__(cfg)
