"""Capture feat A from a LeRobot policy with forward hooks: the two-function public API.

* :func:`capture_features` attaches a hook at the module the hook table names (or any
  dotted path you give) and hands back one vector per sample for every forward that ran
  the model::

      with capture_features(policy) as capture:
          action = policy.select_action(batch)
          feats = capture.pop(batch_size)      # (B, D), or None if the policy used its action queue

* :func:`encode_features` runs only the part of the policy that computes that module
  (no action generation) and returns the same vectors::

      feats = encode_features(policy, batch)   # (B, D)

* :func:`encode_layers` does the same for every layer along the path to that module (the
  layer sweep), in one forward::

      layers = encode_layers(policy, batch)    # {module path: (B, D_layer)}, feat A last

Both take the batch the policy itself would get (after its preprocessor). Hooks are
always removed on exit, even on error; captured tensors are detached and moved to CPU.
"""

import difflib

import einops
import torch
from torch import nn

from lerobot_cknna.hook_table import HookSpec, LayerTap, spec_for, sweep_taps


class CaptureError(RuntimeError):
    """The hook did not fire as the policy type says it should."""


def resolve_module(policy: nn.Module, path: str) -> nn.Module:
    """The submodule at dotted attribute ``path``.

    Raises:
        ValueError: the path does not lead to a module; lists the closest module names.
    """
    module = policy
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            break
    if isinstance(module, nn.Module):
        return module
    names = [name for name, _ in policy.named_modules() if name]
    close = difflib.get_close_matches(path, names, n=5, cutoff=0.5)
    hint = f" Closest module names: {', '.join(close)}." if close else ""
    raise ValueError(f"{type(policy).__name__} has no module at {path!r}.{hint}")


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


def _owner_and_name(policy: nn.Module, method_path: str) -> tuple[object, str]:
    owner_path, _, name = method_path.rpartition(".")
    return (resolve_module(policy, owner_path) if owner_path else policy), name


class FeatureCapture:
    """Context manager holding forward hooks on a policy: its feat A module, and with ``layers`` the sweep.

    Attributes:
        policy_type: the policy's registered type (``policy.config.type``).
        spec: the hook table entry in use.
        taps: the modules read, shallow to deep; the last is ``spec.module_path`` (feat A).
    """

    def __init__(self, policy: nn.Module, hook_path: str | None = None, layers: bool = False):
        self.policy = policy
        self.policy_type = policy.config.type
        self.spec: HookSpec = spec_for(self.policy_type, hook_path)
        main = LayerTap(self.spec.module_path, output_key=self.spec.output_key)
        self.taps: list[LayerTap] = sweep_taps(self.spec, policy) if layers else [main]
        self._modules = {tap.path: resolve_module(policy, tap.path) for tap in self.taps}
        self._firings: dict[str, list[torch.Tensor]] = {tap.path: [] for tap in self.taps}
        self._masks: list[torch.Tensor] = []
        self._handles = []
        self._mask_owner = None

    def _recorder(self, tap: LayerTap):
        firings = self._firings[tap.path]

        def keep(value) -> None:
            firings.append(_read(value, tap.output_key).detach().to("cpu", torch.float32, copy=True))

        if tap.read == "input":
            return lambda module, inputs: keep(inputs)
        return lambda module, inputs, output: keep(output)

    def _watch_token_mask(self) -> None:
        owner, name = _owner_and_name(self.policy, self.spec.token_mask.method_path)
        method = getattr(owner, name)

        def recording_method(*args, **kwargs):
            result = method(*args, **kwargs)
            self._masks.append(self.spec.token_mask.read(args, result).detach().to("cpu", torch.bool))
            return result

        self._mask_owner = (owner, name, vars(owner).get(name))
        setattr(owner, name, recording_method)

    def __enter__(self) -> "FeatureCapture":
        try:
            for tap in self.taps:
                module = self._modules[tap.path]
                register = (
                    module.register_forward_pre_hook if tap.read == "input" else module.register_forward_hook
                )
                self._handles.append(register(self._recorder(tap)))
            if self.spec.token_mask is not None:
                self._watch_token_mask()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._mask_owner is not None:
            owner, name, own_attribute = self._mask_owner
            if own_attribute is None:
                delattr(owner, name)
            else:
                setattr(owner, name, own_attribute)
            self._mask_owner = None

    def _pooled(self, path: str, firings: list[torch.Tensor], masks: list[torch.Tensor]) -> torch.Tensor:
        if self.spec.token_mask is None or any(firing.ndim != 3 for firing in firings):
            return torch.cat([_rows(firing) for firing in firings])
        if len(masks) != len(firings) or any(
            m.shape[0] != f.shape[0] or m.shape[1] > f.shape[1] for m, f in zip(masks, firings, strict=True)
        ):
            raise CaptureError(
                f"{self.policy_type}: {len(firings)} firings of {path} but "
                f"{len(masks)} token masks from {self.spec.token_mask.method_path} that do not fit them; "
                "the hooked module does not see the sequence that mask describes. Hook a module on it."
            )
        return torch.cat([_rows(firing, _leading_tokens_kept(mask, firing.shape[1]))
                          for firing, mask in zip(firings, masks, strict=True)])  # fmt: skip

    def _arranged(self, rows: torch.Tensor, batch_size: int) -> torch.Tensor:
        """(batch_size, D): firings' rows regrouped by the layout, the current observation step kept."""
        n_cameras = len(getattr(self.policy.config, "image_features", {}) or {}) or 1
        sizes = {"b": batch_size}
        if "n" in self.spec.layout:
            sizes["n"] = n_cameras
        return einops.rearrange(rows, self.spec.layout, **sizes)[:, -1]

    def pop_all(self, batch_size: int, required: bool = False) -> dict[str, torch.Tensor] | None:
        """Every tap's (batch_size, D) vectors of the forward since the last pop, keyed by module path.

        Args:
            batch_size: samples in that forward.
            required: a forward that did not reach feat A's module is an error, not ``None``.

        Returns:
            ``{path: (batch_size, D)}`` in :attr:`taps` order, or ``None`` if feat A's module did
            not run (the policy used its action queue).

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
        if self.spec.firings is None:
            firings, masks = {path: tap_firings[:1] for path, tap_firings in firings.items()}, masks[:1]
        else:
            expected = self.spec.firings(self.policy.config)
            for path, tap_firings in firings.items():
                if len(tap_firings) != expected:
                    raise CaptureError(
                        f"{self.policy_type}: {path} fired {len(tap_firings)} times in one forward, "
                        f"expected {expected}. Pop after every forward; if the policy calls it more often, "
                        "choose another module with --cknna.hook_path."
                    )
        return {
            path: self._arranged(self._pooled(path, tap_firings, masks), batch_size)
            for path, tap_firings in firings.items()
        }

    def pop(self, batch_size: int) -> torch.Tensor | None:
        """(batch_size, D) feat A of the forward since the last pop, or ``None`` if the module did not run.

        Raises:
            CaptureError: the module fired a number of times the policy type does not explain.
        """
        feats = self.pop_all(batch_size)
        return None if feats is None else feats[self.spec.module_path]

    def pop_required(self, batch_size: int) -> torch.Tensor:
        """Like :meth:`pop`, but a forward that did not reach the module is an error."""
        return self.pop_all(batch_size, required=True)[self.spec.module_path]


def batch_size_of(batch: dict) -> int:
    """Number of samples in a policy batch (the leading size of its first tensor)."""
    return next(value.shape[0] for value in batch.values() if isinstance(value, torch.Tensor))


def capture_features(policy: nn.Module, hook_path: str | None = None) -> FeatureCapture:
    """Hook the module that computes feat A for this policy type (or ``hook_path``).

    Args:
        policy: a LeRobot policy (any type in the hook table, or any policy with ``hook_path``).
        hook_path: dotted module path overriding the table, e.g. ``"model.backbone"``.

    Returns:
        A :class:`FeatureCapture`; use it as a context manager and :meth:`~FeatureCapture.pop`
        after each forward.
    """
    return FeatureCapture(policy, hook_path)


@torch.no_grad()
def _encode_taps(
    policy: nn.Module, batch: dict[str, torch.Tensor], hook_path: str | None, layers: bool
) -> dict[str, torch.Tensor]:
    """Every tap's vectors for ``batch`` by the type's encode-only path (see :func:`encode_features`)."""
    capture = FeatureCapture(policy, hook_path, layers)
    batch_size = batch_size_of(batch)
    policy.eval()
    with capture:
        if capture.spec.encode is not None:
            capture.spec.encode(policy, batch)
            feats = capture.pop_all(batch_size)
            if feats is not None:
                return feats
        policy.reset()
        policy.select_action(dict(batch))
        return capture.pop_all(batch_size, required=True)


def encode_features(
    policy: nn.Module, batch: dict[str, torch.Tensor], hook_path: str | None = None
) -> torch.Tensor:
    """Feat A for ``batch`` by the encode-only path of the policy type: no action is generated.

    Args:
        policy: a LeRobot policy.
        batch: preprocessed observation batch (what ``select_action`` receives).
        hook_path: module to capture instead of the hook table's. When the type's encode-only
            path does not reach it (or the type has none), the policy's full ``select_action``
            runs instead, after a ``reset`` so that the model does run.

    Returns:
        (B, D) float32 CPU tensor, equal to what :func:`capture_features` records during
        ``select_action`` on the same observation.
    """
    (feats,) = _encode_taps(policy, batch, hook_path, layers=False).values()
    return feats


def encode_layers(
    policy: nn.Module, batch: dict[str, torch.Tensor], hook_path: str | None = None
) -> dict[str, torch.Tensor]:
    """The layer sweep for ``batch``: every layer along the path to feat A's module, in one encode-only forward.

    Args:
        policy: a policy of a type in the hook table.
        batch: preprocessed observation batch (what ``select_action`` receives).
        hook_path: only the hook table's own module has a layer path; any other is refused.

    Returns:
        ``{module path: (B, D_layer)}`` float32 CPU tensors, shallow to deep; the last entry is
        feat A itself (what :func:`encode_features` returns). Token sequences are pooled with
        feat A's token mask, spatial maps over H x W.

    Raises:
        ValueError: the hooked module has no layer path (see :func:`~lerobot_cknna.hook_table.sweep_taps`).
    """
    return _encode_taps(policy, batch, hook_path, layers=True)
