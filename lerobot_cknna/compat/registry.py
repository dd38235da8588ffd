"""Run-time fixes for LeRobot defects, registered as LeRobot registers its processor steps.

Every fix is a class registered under a name with :func:`register`; its docstring describes
the defect. The name is also that of the upstream-ready diff, ``patches/NAME.diff``. What a
fix acts on decides its base class, and so where this package applies it:

* :class:`CheckpointFix`: a saved policy's ``config.json``, before LeRobot parses it
  (:func:`fixed_config_loading`);
* :class:`ConstructionFix`: a context active while a policy is built or loaded
  (:func:`construction_fixes`);
* :class:`PolicyFix`: a built policy instance, where its defect shows (:func:`apply_policy_fixes`);
* :class:`PreprocessorFix`: the policy's preprocessor, as it is made or loaded
  (:func:`make_pre_post_processors`);
* :class:`EvalFix`: LeRobot's evaluation loop, while ``lerobot-cknna`` runs it (:func:`eval_fixes`).

Applying, logging, the README's fixes table (:func:`fixes_table`) and the test of each defect
all read :data:`FIXES`, so a fix exists in one place.
"""

import contextlib
import json
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies import factory

from lerobot_cknna.capture.hook_table import HOOK_TABLE, HookSpec, spec_for
from lerobot_cknna.configs.checkpoints import CONFIG_FILE, checkpoint_config_file
from lerobot_cknna.utils.patching import patched

FIXES: dict[str, type["Fix"]] = {}
PATCHES_DIR = "patches"
LEROBOT_VERSION = "0.6.1"


def register(name: str):
    """Class decorator: register a fix under ``name`` (also the name of its diff in ``patches/``).

    Raises:
        ValueError: the name is taken.
    """

    def decorator(cls: type["Fix"]) -> type["Fix"]:
        if name in FIXES:
            raise ValueError(f"A fix named {name!r} is already registered ({FIXES[name].__name__}).")
        cls.name = name
        FIXES[name] = cls
        return cls

    return decorator


class Fix:
    """A LeRobot defect that stands between a policy and its feat A, and what this package does about it.

    Attributes:
        name: the registered name; the upstream diff is ``patches/NAME.diff``.
        symptom: what a user of plain LeRobot sees.
        remedy: what the run-time fix does.
        any_type: the defect may show in any policy type, so the fix is tried on every one;
            otherwise only the types whose hook table entry names it in ``fixes`` get it.
    """

    name: ClassVar[str]
    symptom: ClassVar[str]
    remedy: ClassVar[str]
    any_type: ClassVar[bool] = True

    @classmethod
    def applies_to(cls, policy_config) -> bool:
        """Whether this fix is for this policy's type (its defect may still not show)."""
        if cls.any_type:
            return True
        policy_type = policy_config.type
        return policy_type in HOOK_TABLE and cls.name in spec_for(policy_type, config=policy_config).fixes

    @classmethod
    def patch(cls) -> str:
        """The upstream-ready diff, relative to the repository root."""
        return f"{PATCHES_DIR}/{cls.name}.diff"

    @classmethod
    def defect(cls) -> str:
        """The defect: the first paragraph of the class docstring, on one line."""
        return " ".join(cls.__doc__.split("\n\n")[0].split())

    @classmethod
    def log_applied(cls, detail: str = "") -> None:
        """Say in the log that the fix acted, and where its upstream diff is."""
        logging.warning(
            f"Applied run-time fix for a lerobot {LEROBOT_VERSION} defect ({cls.name}): {cls.remedy}"
            f"{f' ({detail})' if detail else ''}. Upstream diff: {cls.patch()}"
        )


class CheckpointFix(Fix):
    """A fix of a saved policy's ``config.json``, applied to a copy before LeRobot parses it."""

    def rewrite(self, config: dict) -> tuple[dict, str]:
        """The config as LeRobot can load it, and what was changed (empty when nothing was)."""
        raise NotImplementedError


class ConstructionFix(Fix):
    """A fix active while a block builds or loads policies, for defects that stop the build."""

    def active(self) -> contextlib.AbstractContextManager:
        """A context in which the defect does not stop a policy from being built."""
        raise NotImplementedError


class PolicyFix(Fix):
    """A fix of one built policy instance (never of LeRobot's classes), applied where the defect shows."""

    def is_present(self, policy) -> bool:
        """Whether this policy shows the defect."""
        raise NotImplementedError

    def apply(self, policy) -> None:
        """Fix this policy instance."""
        raise NotImplementedError


class PreprocessorFix(Fix):
    """A fix of a policy's preprocessor: loading overrides, and a repair of a pipeline once made."""

    def overrides(self, policy_config) -> dict[str, dict]:
        """``preprocessor_overrides`` for loading a saved pipeline of this policy."""
        return {}

    def repair(self, preprocessor, policy_config) -> str:
        """Fix a made or loaded pipeline in place; returns what was changed (empty when nothing was)."""
        return ""


class EvalFix(Fix):
    """A fix of ``lerobot_eval``'s functions, active while ``lerobot-cknna`` runs its evaluation."""

    def active(self, lerobot_eval, env_cfg) -> contextlib.AbstractContextManager:
        """A context in which ``lerobot_eval`` evaluates in ``env_cfg`` without the defect."""
        raise NotImplementedError


def _fixes_of(kind: type[Fix], policy_config=None) -> list[Fix]:
    """The registered fixes of ``kind``; given a policy's config, those for its type."""
    return [
        cls()
        for cls in FIXES.values()
        if issubclass(cls, kind) and (policy_config is None or cls.applies_to(policy_config))
    ]


def apply_policy_fixes(policy) -> list[str]:
    """Apply every policy fix whose defect this policy shows; returns the names of those applied."""
    applied = []
    for fix in _fixes_of(PolicyFix, policy.config):
        if fix.is_present(policy):
            fix.apply(policy)
            fix.log_applied(type(policy).__name__)
            applied.append(fix.name)
    return applied


@contextlib.contextmanager
def construction_fixes() -> Iterator[None]:
    """While the block runs, policies whose construction a LeRobot defect breaks can be built.

    Wrap every place that builds or loads a policy (``make_policy``, ``from_pretrained``, a
    policy class called on a config). Each fix acts only where its defect shows.
    """
    with contextlib.ExitStack() as stack:
        for fix in _fixes_of(ConstructionFix):
            stack.enter_context(fix.active())
        yield


@contextlib.contextmanager
def eval_fixes(lerobot_eval, env_cfg) -> Iterator[None]:
    """While the block runs, ``lerobot_eval`` (LeRobot's evaluation module) evaluates in ``env_cfg`` with every eval fix."""
    with contextlib.ExitStack() as stack:
        for fix in _fixes_of(EvalFix):
            stack.enter_context(fix.active(lerobot_eval, env_cfg))
        yield


@contextlib.contextmanager
def fixed_config_loading() -> Iterator[None]:
    """While the block runs, ``PreTrainedConfig.from_pretrained`` reads a config with the checkpoint fixes.

    LeRobot parses ``--policy.path``'s config (a local directory or a Hub id) with
    ``PreTrainedConfig.from_pretrained``; within the block, that config is read first and, where a
    checkpoint fix changes it, LeRobot parses the fixed copy instead. Weights and processors still
    load from the checkpoint itself.
    """
    original = PreTrainedConfig.from_pretrained.__func__

    def from_pretrained(cls, pretrained_name_or_path, **kwargs):
        config_file = checkpoint_config_file(pretrained_name_or_path, **kwargs)
        config = json.loads(config_file.read_text()) if config_file is not None else None
        changed = False
        for fix in _fixes_of(CheckpointFix) if config is not None else ():
            config, change = fix.rewrite(config)
            if change:
                fix.log_applied(f"{pretrained_name_or_path}: {change}")
                changed = True
        if not changed:
            return original(cls, pretrained_name_or_path, **kwargs)
        with tempfile.TemporaryDirectory(prefix="lerobot_cknna_config_") as fixed_dir:
            (Path(fixed_dir) / CONFIG_FILE).write_text(json.dumps(config, indent=4))
            return original(cls, fixed_dir, cli_overrides=kwargs.get("cli_overrides", []))

    with patched(PreTrainedConfig, "from_pretrained", classmethod(from_pretrained)):
        yield


def make_pre_post_processors(policy_cfg, pretrained_path=None, preprocessor_overrides=None, **kwargs):
    """LeRobot's ``make_pre_post_processors``, with the preprocessor fixes applied.

    Takes and returns what LeRobot's does; a loaded pipeline also gets the fixes' overrides.
    """
    if pretrained_path is not None:
        preprocessor_overrides = {**_overrides_with_logging(policy_cfg), **(preprocessor_overrides or {})}
    preprocessor, postprocessor = factory.make_pre_post_processors(
        policy_cfg, pretrained_path=pretrained_path, preprocessor_overrides=preprocessor_overrides, **kwargs
    )
    for fix in _fixes_of(PreprocessorFix, policy_cfg):
        change = fix.repair(preprocessor, policy_cfg)
        if change:
            fix.log_applied(change)
    return preprocessor, postprocessor


def _overrides_with_logging(policy_config) -> dict[str, dict]:
    overrides: dict[str, dict] = {}
    for fix in _fixes_of(PreprocessorFix, policy_config):
        own = fix.overrides(policy_config)
        if own:
            fix.log_applied(f"loading overrides for {', '.join(own)}")
        overrides.update(own)
    return overrides


def fixes_table() -> str:
    """The README's table of fixes, in Markdown: one row per registered fix."""
    rows = [
        "| fix (upstream diff) | policy types | defect in lerobot 0.6.1 | symptom | run-time fix |",
        "|---|---|---|---|---|",
    ]
    for cls in FIXES.values():
        rows.append(
            f"| `{cls.name}` (`{cls.patch()}`) | {_types_of(cls)} | {cls.defect()} | {cls.symptom} | {cls.remedy} |"
        )
    return "\n".join(rows)


def _types_of(cls: type[Fix]) -> str:
    if cls.any_type:
        return "any, where it shows"
    return ", ".join(
        policy_type
        for policy_type, entry in HOOK_TABLE.items()
        if isinstance(entry, HookSpec) and cls.name in entry.fixes
    )
