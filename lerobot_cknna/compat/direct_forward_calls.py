"""Policies call some submodules as ``self.child.forward(...)``, which skips every hook on them."""

import functools
import inspect
import re

from torch import nn

from lerobot_cknna.compat.registry import PolicyFix, register

_DIRECT_CALL = re.compile(r"self\.([\w.]+)\.forward\(")


@register("direct_forward_calls")
class DirectForwardCalls(PolicyFix):
    """SmolVLA, Pi0, Pi0.5, Pi0-FAST, GR00T and VLA-JEPA call submodules as ``self.child.forward(...)``, which skips ``nn.Module.__call__`` and so every hook on them.

    SmolVLA calls ``self.vlm_with_expert.forward(...)`` for the prefill and every denoising step
    (modeling_smolvla.py:712, :750, :796); the Pi family does the same with
    ``paligemma_with_expert`` and with PaliGemma's language model, GR00T with ``_groot_model``
    and VLA-JEPA with ``model`` (modeling_vla_jepa.py:429), both in training. A hook placed on
    such a module never fires.
    """

    symptom = (
        "a forward hook on `model.vlm_with_expert` (or the Pi family's `paligemma_with_expert`) never fires"
    )
    remedy = "that policy's direct `.forward` calls on those submodules go through `__call__`, so hooks fire once per call"

    def is_present(self, policy: nn.Module) -> bool:
        """Whether some submodule of this policy is called in a way that skips its hooks."""
        return bool(bypassed_modules(policy))

    def apply(self, policy: nn.Module) -> None:
        """Make direct ``.forward`` calls on the bypassed submodules of this policy run their hooks."""
        for _, module in bypassed_modules(policy):
            _route_through_call(module)


@functools.cache
def _children_called_directly(owner_class: type) -> frozenset[str]:
    try:
        source = inspect.getsource(owner_class)
    except (OSError, TypeError):
        return frozenset()
    return frozenset(_DIRECT_CALL.findall(source))


def _attribute(owner: object, dotted: str) -> object:
    for part in dotted.split("."):
        owner = getattr(owner, part, None)
    return owner


def bypassed_modules(policy: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(dotted name, module)`` for every submodule whose owner calls its ``.forward`` directly."""
    found = {}
    for owner_name, owner in policy.named_modules():
        for child_path in _children_called_directly(type(owner)):
            child = _attribute(owner, child_path)
            if isinstance(child, nn.Module) and not getattr(child.forward, "routes_through_call", False):
                found.setdefault(id(child), (f"{owner_name}.{child_path}".lstrip("."), child))
    return list(found.values())


def _route_through_call(module: nn.Module) -> None:
    original_forward = module.forward
    in_call = False

    def enter(*_):
        nonlocal in_call
        in_call = True

    def leave(*_):
        nonlocal in_call
        in_call = False

    # Registered first, so the flag is up before any user pre-hook and down after every hook.
    module.register_forward_pre_hook(enter, prepend=True)
    module.register_forward_hook(leave, always_call=True)

    def forward(*args, **kwargs):
        if in_call:
            return original_forward(*args, **kwargs)
        return module(*args, **kwargs)

    forward.routes_through_call = True
    module.forward = forward
