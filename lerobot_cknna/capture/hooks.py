"""Capture feat A from a LeRobot policy with forward hooks.

* :func:`capture_features` attaches a hook at the module the hook table names (or any
  dotted path you give) and hands back one vector per sample for every forward that ran
  the model::

      with capture_features(policy) as capture:
          action = policy.select_action(batch)
          feats = capture.pop(batch_size)      # (B, D), or None if the policy used its action queue

* :func:`encode_features` runs the policy's own ``select_action`` and stops it as soon as
  that module has fired (no action is generated), returning the same vectors; with
  ``with_layers=True``, every layer along the path to that module too, in one stopped forward::

      feats = encode_features(policy, batch)                       # (B, D)
      per_layer = encode_features(policy, batch, with_layers=True)  # {module path: (B, D_layer)}, feat A last
      groups = encode_features(policy, batch, token_groups=True)    # feat A, and a VLA's image / language tokens

* :func:`hook_names` lists what can be captured: the table's module and its layer taps.

Both take the batch the policy itself would get (after its preprocessor). Hooks are
always removed on exit, even on error; captured tensors are detached and moved to CPU.
Module paths are dotted attribute paths; a ``*`` segment stands for every child of a
container in order (``diffusion.rgb_encoder.*``: one encoder per camera).
"""

import contextlib
import functools

import einops
import torch
from torch import nn

from lerobot_cknna.capture.hook_table import HookSpec, LayerTap, check_token_groups, layer_taps, spec_for
from lerobot_cknna.capture.module_paths import resolve_module, resolve_modules
from lerobot_cknna.utils.patching import patched

# A VLA's feat A split by where its tokens come from (``--cknna.token_groups``); feat A holds both.
TOKEN_GROUPS = ("image", "language")


class CaptureError(RuntimeError):
    """The hook did not fire as the policy type says it should."""


class StopForward(BaseException):
    """Raised by a hook once every tap has what one forward gives, to end the policy's forward there.

    A ``BaseException``, so that no ``except Exception`` inside a policy swallows it.
    """


def _read(output, key) -> torch.Tensor:
    if key is not None:
        return output[key]
    if isinstance(output, torch.Tensor):
        return output
    values = output.values() if isinstance(output, dict) else output
    return next(value for value in values if isinstance(value, torch.Tensor))


def _rows(tensor: torch.Tensor, token_mask: torch.Tensor | None = None) -> torch.Tensor:
    """(rows, f): spatial maps are averaged over H x W, token sequences over their valid tokens."""
    if tensor.ndim == 4:
        return tensor.mean(dim=(2, 3))
    if tensor.ndim == 3:
        if token_mask is None:
            return tensor.mean(dim=1)
        weights = token_mask.to(tensor.dtype).unsqueeze(-1)
        return (tensor * weights).sum(dim=1) / weights.sum(dim=1)
    return tensor.flatten(start_dim=1)


def _leading_tokens_kept(mask: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """A (B, M) mask of the last M of ``n_tokens`` tokens, extended to keep all the tokens before."""
    kept = torch.ones(mask.shape[0], n_tokens - mask.shape[1], dtype=torch.bool)
    return torch.cat([kept, mask], dim=1)


def token_group_key(path: str, group: str) -> str:
    """The key of one token group's vectors of the module at ``path`` in what a capture returns: ``path[group]``."""
    return f"{path}[{group}]"


def token_count_key(path: str, group: str) -> str:
    """The key of one token group's counts (tokens per sample) in what a capture returns: ``path[group] tokens``."""
    return f"{token_group_key(path, group)} tokens"


def token_group_masks(
    mask: torch.Tensor, image: torch.Tensor | None, n_tokens: int
) -> dict[str, torch.Tensor]:
    """The (B, N) masks of a sequence's kept tokens (``both``: feat A's) and of its token groups.

    Args:
        mask: (B, M) the tokens kept, as the entry's :class:`~lerobot_cknna.capture.hook_table.TokenMask`
            reads them; a mask shorter than the sequence covers its last M tokens and keeps those before.
        image: (B, M) which of those M tokens are image tokens (the tokens before a shorter mask are too),
            or ``None`` for no groups.
        n_tokens: N, the length of the sequence.

    Returns:
        ``{"both": ...}``, with ``image``: also ``"image"`` and ``"language"`` (the kept tokens that are not
        image tokens), which are disjoint and together ``both``.
    """
    both = _leading_tokens_kept(mask, n_tokens)
    if image is None:
        return {"both": both}
    image = _leading_tokens_kept(image, n_tokens) & both
    return {"both": both, "image": image, "language": both & ~image}


def _cpu_mask(mask: torch.Tensor) -> torch.Tensor:
    return mask.detach().to("cpu", torch.bool)


def _owner_and_name(policy: nn.Module, method_path: str) -> tuple[object, str]:
    owner_path, _, name = method_path.rpartition(".")
    return (resolve_module(policy, owner_path) if owner_path else policy), name


class FeatureCapture:
    """Context manager holding forward hooks on a policy: its feat A module, and with ``with_layers`` its layer taps.

    Args:
        policy: a LeRobot policy.
        hook_path: module to capture instead of the hook table's.
        with_layers: also hook every layer tap (:func:`~lerobot_cknna.capture.hook_table.layer_taps`).
        token_groups: also pool feat A's module over its image tokens alone and its language tokens
            alone (:data:`TOKEN_GROUPS`), as the entry's token mask splits them.
        stop: raise :class:`StopForward` as soon as every tap has fired as often as one forward
            makes it fire (see :func:`encode_features`), unless the entry says why it cannot
            (``full_forward``).
        batch_size: samples in the forward to stop, which a policy that runs its batch one sample
            at a time (the entry's ``per_sample``) needs, to stop at the last one's.

    Attributes:
        policy_type: the policy's registered type (``policy.config.type``).
        spec: the hook table entry in use.
        taps: the modules read, shallow to deep; the last is ``spec.module_path`` (feat A).
    """

    def __init__(
        self,
        policy: nn.Module,
        hook_path: str | None = None,
        with_layers: bool = False,
        stop: bool = False,
        token_groups: bool = False,
        batch_size: int | None = None,
    ):
        """Resolve the modules to hook (nothing is hooked before the context is entered).

        Raises:
            ValueError: a module path that does not resolve, ``with_layers`` without a layer path,
                ``token_groups`` for an entry without token groups, or ``stop`` without the
                ``batch_size`` of a policy that runs its batch one sample at a time.
        """
        self.policy = policy
        self.policy_type = policy.config.type
        self.spec: HookSpec = spec_for(self.policy_type, hook_path, policy.config)
        if token_groups:
            check_token_groups(self.spec, self.policy_type)
        self.token_groups = token_groups
        self.taps: list[LayerTap] = layer_taps(self.spec, policy) if with_layers else [self.spec.tap]
        self.stop = stop and self.spec.full_forward is None
        if self.stop and self.spec.per_sample and batch_size is None:
            raise ValueError(
                f"{self.policy_type} runs its batch one sample at a time: stopping after the last sample "
                "needs the batch size."
            )
        self.batch_size = batch_size
        self._modules = {tap.path: resolve_modules(policy, tap.path) for tap in self.taps}
        self._firings: dict[str, list[torch.Tensor]] = {tap.path: [] for tap in self.taps}
        # Per firing of the token mask's method: the kept tokens, and which are image tokens (token groups).
        self._masks: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        self._exit_stack: contextlib.ExitStack | None = None

    def _expected_firings(self, batch_size: int) -> int | None:
        """How often each tap fires in one forward of ``batch_size`` samples; ``None`` where it varies."""
        if self.spec.firings is None:
            return None
        firings = self.spec.firings(self.policy.config)
        return firings * batch_size if self.spec.per_sample else firings

    def _kept_firings(self) -> slice:
        """Where the count varies: the one firing of a forward that is feat A."""
        kept = self.spec.kept_firing(self.policy.config)
        return slice(kept, kept + 1)

    def _forward_is_complete(self) -> bool:
        """Every tap has fired as often as one forward makes it (up to the kept firing, where the count varies)."""
        needed = self._expected_firings(self.batch_size or 1) or self._kept_firings().stop
        return all(len(firings) >= needed for firings in self._firings.values())

    def _recorder(self, tap: LayerTap):
        firings = self._firings[tap.path]
        is_main = tap.path == self.spec.module_path

        def keep(value) -> None:
            firings.append(_read(value, tap.output_key).detach().to("cpu", torch.float32, copy=True))
            if self.stop and is_main and self._forward_is_complete():
                raise StopForward

        if tap.read == "input":
            return lambda module, inputs: keep(inputs)
        return lambda module, inputs, output: keep(output)

    def _token_mask_recorder(self):
        token_mask = self.spec.token_mask
        owner, name = _owner_and_name(self.policy, token_mask.method_path)
        method = getattr(owner, name)

        def record(args, result) -> None:
            kept, image = token_mask.masks(self.policy, args, result, groups=self.token_groups)
            self._masks.append((_cpu_mask(kept), None if image is None else _cpu_mask(image)))

        @functools.wraps(method)  # its signature stays the method's, for a recorder patched on top (tests)
        def recording_method(*args, **kwargs):
            return token_mask.recorded_call(method, args, kwargs, record)

        return patched(owner, name, recording_method)

    def _one_fresh_seeded_sample_per_call(self):
        """``select_action`` under the entry's :class:`~lerobot_cknna.capture.hook_table.EpisodeCalls` rules."""
        rules, policy, main = self.spec.episode_calls, self.policy, self._firings[self.spec.module_path]
        select_action = policy.select_action

        @functools.wraps(select_action)
        def checked_select_action(batch, *args, **kwargs):
            if batch_size_of(batch) != 1:
                raise CaptureError(
                    f"{self.policy_type} takes one sample per call (its noise and its prompt are one sample's), "
                    f"got {batch_size_of(batch)}. Capture one sample at a time; encode_features runs a batch's "
                    "samples one by one."
                )
            continues = rules.continues(policy)
            with torch.random.fork_rng():
                torch.manual_seed(rules.noise_seed)
                action = select_action(batch, *args, **kwargs)
            if continues and main:
                raise CaptureError(
                    f"{self.policy_type}: this model call continued an episode, so its feat A is not a function "
                    f"of its observation: {rules.why}. Reset the policy before each captured call."
                )
            return action

        return patched(policy, "select_action", checked_select_action)

    def __enter__(self) -> "FeatureCapture":
        with contextlib.ExitStack() as stack:
            for tap in self.taps:
                for module in self._modules[tap.path]:
                    register = (
                        module.register_forward_pre_hook
                        if tap.read == "input"
                        else module.register_forward_hook
                    )
                    stack.callback(register(self._recorder(tap)).remove)
            if self.spec.token_mask is not None:
                stack.enter_context(self._token_mask_recorder())
            if self.spec.episode_calls is not None:
                stack.enter_context(self._one_fresh_seeded_sample_per_call())
            self._exit_stack = stack.pop_all()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._exit_stack is not None:
            self._exit_stack.close()
            self._exit_stack = None

    def _pooled(
        self, path: str, firings: list[torch.Tensor], masks: list[tuple], group: str = "both"
    ) -> torch.Tensor:
        """The firings' rows, token sequences averaged over the ``group`` of :func:`token_group_masks`."""
        if self.spec.token_mask is None or any(firing.ndim != 3 for firing in firings):
            if group != "both":
                raise CaptureError(
                    f"{self.policy_type}: {path} returns no token sequence, so it has no {group} tokens; "
                    "token groups need the hook table's module (drop --cknna.hook_path)."
                )
            return torch.cat([_rows(firing) for firing in firings])
        if len(masks) != len(firings) or any(
            m.shape[0] != f.shape[0] or m.shape[1] > f.shape[1]
            for (m, _), f in zip(masks, firings, strict=True)
        ):
            raise CaptureError(
                f"{self.policy_type}: {len(firings)} firings of {path} but "
                f"{len(masks)} token masks from {self.spec.token_mask.method_path} that do not fit them; "
                "the hooked module does not see the sequence that mask describes. Hook a module on it."
            )
        rows = []
        for firing, kept in zip(firings, self._group_masks(firings, masks, group), strict=True):
            if group != "both" and not kept.any(dim=1).all():
                raise CaptureError(
                    f"{self.policy_type}: a sample has no {group} tokens in {path}, so their mean is undefined."
                )
            rows.append(_rows(firing, kept))
        return torch.cat(rows)

    @staticmethod
    def _group_masks(firings: list[torch.Tensor], masks: list[tuple], group: str) -> list[torch.Tensor]:
        """Per firing, the (B, N) tokens of ``group`` among its N."""
        return [
            token_group_masks(mask, image, firing.shape[1])[group]
            for firing, (mask, image) in zip(firings, masks, strict=True)
        ]

    def _arranged(self, rows: torch.Tensor, batch_size: int) -> torch.Tensor:
        """(batch_size, D): firings' rows regrouped by the layout, the current observation step kept."""
        sizes = {"b": batch_size}
        if "n" in self.spec.layout:
            sizes["n"] = len(self.policy.config.image_features)
        return einops.rearrange(rows, self.spec.layout, **sizes)[:, self.spec.kept_row]

    def pop_all(self, batch_size: int, required: bool = False) -> dict[str, torch.Tensor] | None:
        """Every tap's (batch_size, D) vectors of the forward since the last pop, keyed by module path.

        Args:
            batch_size: samples in that forward.
            required: a forward that did not reach feat A's module is an error, not ``None``.

        Returns:
            ``{path: (batch_size, D)}`` in :attr:`taps` order, then with ``token_groups`` feat A's
            module pooled over each group's tokens alone, under :func:`token_group_key`, and the
            (batch_size,) tokens each group holds (``both``: feat A's), under :func:`token_count_key`; or ``None``
            if feat A's module did not run (the policy used its action queue).

        Raises:
            CaptureError: a module fired a number of times the policy type does not explain, or
                (with ``required``) feat A's module did not fire.
        """
        firings = {path: tap_firings[:] for path, tap_firings in self._firings.items()}
        masks, self._masks = self._masks, []
        for tap_firings in self._firings.values():
            tap_firings.clear()
        if not firings[self.spec.module_path]:
            if required:
                raise CaptureError(
                    f"{self.policy_type}: the hook at {self.spec.module_path} did not fire during the forward. "
                    "The policy bypassed the module (a direct .forward() call, or another code path); "
                    "choose a module it does call with --cknna.hook_path."
                )
            return None
        expected = self._expected_firings(batch_size)
        if expected is None:
            kept = self._kept_firings()
            if any(len(tap_firings) < kept.stop for tap_firings in firings.values()):
                raise CaptureError(
                    f"{self.policy_type}: feat A is firing {kept.start + 1} of a forward, but "
                    f"{self.spec.module_path} fired {len(firings[self.spec.module_path])} times."
                )
            firings, masks = {path: tap_firings[kept] for path, tap_firings in firings.items()}, masks[:1]
        else:
            for path, tap_firings in firings.items():
                if len(tap_firings) != expected:
                    raise CaptureError(
                        f"{self.policy_type}: {path} fired {len(tap_firings)} times in one forward, "
                        f"expected {expected}. Pop after every forward; if the policy calls it more often, "
                        "choose another module with --cknna.hook_path."
                    )
        feats = {
            path: self._arranged(self._pooled(path, tap_firings, masks), batch_size)
            for path, tap_firings in firings.items()
        }
        if self.token_groups:
            main = self.spec.module_path
            for group in TOKEN_GROUPS:
                pooled = self._pooled(main, firings[main], masks, group)
                feats[token_group_key(main, group)] = self._arranged(pooled, batch_size)
            for group in ("both", *TOKEN_GROUPS):
                counts = torch.cat(
                    [kept.sum(dim=1, keepdim=True) for kept in self._group_masks(firings[main], masks, group)]
                )
                feats[token_count_key(main, group)] = self._arranged(counts, batch_size).sum(dim=1)
        return feats

    def pop(self, batch_size: int) -> torch.Tensor | None:
        """(batch_size, D) feat A of the forward since the last pop, or ``None`` if the module did not run.

        Raises:
            CaptureError: the module fired a number of times the policy type does not explain.
        """
        feats = self.pop_all(batch_size)
        return None if feats is None else feats[self.spec.module_path]


def batch_size_of(batch: dict) -> int:
    """Number of samples in a policy batch (the leading size of its first tensor)."""
    return next(value.shape[0] for value in batch.values() if isinstance(value, torch.Tensor))


def capture_features(policy: nn.Module, hook_path: str | None = None) -> FeatureCapture:
    """Hook the module that computes feat A for this policy type (or ``hook_path``).

    Example::

        from lerobot_cknna import capture_features

        policy.reset()
        with capture_features(policy) as capture:
            action = policy.select_action(batch)
            feats = capture.pop(batch_size=len(action))  # (B, D), None if the action queue served it

    Args:
        policy: a LeRobot policy (any type in the hook table, or any policy with ``hook_path``).
        hook_path: dotted module path overriding the table, e.g. ``"model.backbone"``.

    Returns:
        A :class:`FeatureCapture`; use it as a context manager and :meth:`~FeatureCapture.pop`
        after each forward.
    """
    return FeatureCapture(policy, hook_path)


def hook_names(policy: nn.Module) -> list[str]:
    """The module names lerobot-cknna captures on ``policy``: its layer taps, shallow to deep, feat A's module last.

    Like torchvision's ``get_graph_node_names``, it lists the names the other functions take:
    any of them works as ``hook_path`` (and ``--cknna.hook_path``), and
    ``encode_features(..., with_layers=True)`` returns one entry per name.

    Example::

        from lerobot_cknna import hook_names

        hook_names(policy)[-1]  # 'model.vlm_with_expert.vlm.model.text_model.norm' for a SmolVLA

    Raises:
        ValueError: a policy type the hook table does not know.
    """
    spec = spec_for(policy.config.type, config=policy.config)
    return [tap.path for tap in (layer_taps(spec, policy) if spec.layer_path else [spec.tap])]


def _encode_taps(
    policy: nn.Module,
    batch: dict[str, torch.Tensor],
    hook_path: str | None,
    with_layers: bool,
    token_groups: bool,
) -> dict[str, torch.Tensor]:
    """Every tap's vectors for ``batch``, from ``select_action`` stopped at the last tap's firing.

    A policy that takes one sample per call (:class:`~lerobot_cknna.capture.hook_table.EpisodeCalls`)
    runs the batch's samples one by one, each from a reset policy.
    """
    n_samples = batch_size_of(batch)
    capture = FeatureCapture(
        policy, hook_path, with_layers, stop=True, token_groups=token_groups, batch_size=n_samples
    )
    was_training = policy.training
    policy.eval()
    calls = (
        [_sample(batch, index, n_samples) for index in range(n_samples)]
        if capture.spec.episode_calls is not None
        else [batch]
    )
    try:
        with capture:
            popped = []
            for call in calls:
                with contextlib.suppress(StopForward):
                    policy.reset()
                    policy.select_action(dict(call))
                popped.append(capture.pop_all(batch_size_of(call), required=True))
        return {key: torch.cat([feats[key] for feats in popped]) for key in popped[0]}
    finally:
        policy.reset()
        policy.train(was_training)


def _sample(batch: dict, index: int, batch_size: int) -> dict:
    """Sample ``index`` of a batch: its row of every tensor and list of one entry per sample; other values as they are."""

    def per_sample(value) -> bool:
        if isinstance(value, torch.Tensor):
            return value.ndim > 0 and value.shape[0] == batch_size
        return isinstance(value, list) and len(value) == batch_size

    return {key: value[index : index + 1] if per_sample(value) else value for key, value in batch.items()}


def encode_features(
    policy: nn.Module,
    batch: dict[str, torch.Tensor],
    hook_path: str | None = None,
    with_layers: bool = False,
    token_groups: bool = False,
) -> torch.Tensor | dict[str, torch.Tensor]:
    """Feat A for ``batch`` from the policy's own inference, stopped once feat A is computed.

    The policy's queues are reset, then its ``select_action`` runs on ``batch`` until the hooked
    module (and, ``with_layers``, every layer tap) has fired as often as one forward makes it
    fire; a :class:`StopForward` raised from the hook ends it there, so no action is generated
    (baukit's ``Trace(stop=True)``). Nothing of the policy's inference is copied, so this is the
    same computation as a real ``select_action``. The policy is left as it was found: its
    train/eval mode restored, its queues empty.

    Example::

        from lerobot_cknna import encode_features

        batch = preprocessor(observation)  # what select_action receives
        feats = encode_features(policy, batch)  # (B, D) float32 on the CPU
        per_layer = encode_features(policy, batch, with_layers=True)  # {name: (B, D_layer)}, feat A last
        groups = encode_features(policy, batch, token_groups=True)  # {name: feat A, name[image]: ..., name[language]: ...}

    Args:
        policy: a LeRobot policy.
        batch: preprocessed observation batch (what ``select_action`` receives).
        hook_path: module to capture instead of the hook table's. It must fire once per forward;
            the whole ``select_action`` runs, to check that it does not fire again.
        with_layers: return every layer tap along the path to feat A's module (:func:`hook_names`),
            token sequences pooled with feat A's token mask, spatial maps over H x W.
        token_groups: also return feat A's module pooled over its image tokens alone and over its
            language tokens alone (a VLA's; :data:`TOKEN_GROUPS`), each a plain mean of its tokens,
            so that feat A is their mean weighted by the groups' token counts.

    Returns:
        (B, D) float32 CPU tensor, equal to what :func:`capture_features` records during
        ``select_action`` on the same observation; ``with_layers``: ``{module path: (B, D_layer)}``
        shallow to deep, feat A last; ``token_groups``: feat A under its module path, then each
        group under :func:`token_group_key` (after the layers with both), then the tokens per sample
        of ``both``, ``image`` and ``language`` under :func:`token_count_key`.

    Raises:
        CaptureError: the module did not fire during ``select_action``, or a sample has no tokens of a group.
        ValueError: ``with_layers`` for a module with no layer path (a ``hook_path`` of your own), or
            ``token_groups`` for a type whose entry has no token groups.
    """
    feats = _encode_taps(policy, batch, hook_path, with_layers, token_groups)
    if with_layers or token_groups:
        return feats
    (feat_a,) = feats.values()
    return feat_a
