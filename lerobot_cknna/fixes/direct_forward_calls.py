"""Policies call some submodules as ``self.child.forward(...)``, which skips every hook on them.

``nn.Module.__call__`` runs forward hooks; calling ``.forward`` directly does not. SmolVLA
calls ``self.vlm_with_expert.forward(...)`` for the prefill and every denoising step
(modeling_smolvla.py:785, :824, :892); Pi0, Pi0.5, Pi0-FAST and GR00T do the same with
their backbones. A hook placed on such a module never fires. The fix routes the child's
direct ``.forward`` calls through ``__call__`` for that policy instance, so hooks run exactly
once per call however the module is invoked.
"""

import functools
import inspect
import re

from torch import nn

DESCRIPTION = "submodules called as .forward() directly, bypassing forward hooks"
PATCH = "patches/direct_forward_calls.diff"


@functools.cache
def _children_called_directly(owner_class: type) -> frozenset[str]:
    try:
        source = inspect.getsource(owner_class)
    except (OSError, TypeError):
        return frozenset()
    return frozenset(re.findall(r"self\.(\w+)\.forward\(", source))


def bypassed_modules(policy: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(dotted name, module)`` for every submodule whose owner calls its ``.forward`` directly."""
    found = []
    for owner_name, owner in policy.named_modules():
        for child_name in _children_called_directly(type(owner)):
            child = getattr(owner, child_name, None)
            if isinstance(child, nn.Module) and not getattr(child.forward, "routes_through_call", False):
                found.append((f"{owner_name}.{child_name}".lstrip("."), child))
    return found


def is_present(policy: nn.Module) -> bool:
    """Whether some submodule of this policy is called in a way that skips its hooks."""
    return bool(bypassed_modules(policy))


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


def apply(policy: nn.Module) -> None:
    """Make direct ``.forward`` calls on the bypassed submodules of this policy run their hooks."""
    for _, module in bypassed_modules(policy):
        _route_through_call(module)
