"""Modules addressed by dotted attribute paths, as the hook table and ``--cknna.hook_path`` name them.

A path is read by attribute traversal from the policy (``model.backbone``), so a module shared
under two names (the Gaussian actor's image encoder) is found under either. A ``*`` segment
stands for every child of a container, in order: ``diffusion.rgb_encoder.*`` is Diffusion's
one encoder per camera. A negative integer segment counts a container's children from its end:
``language_model.layers.-1`` is the last decoder layer, whatever the depth of the checkpoint.
"""

import difflib

from torch import nn


def resolve_modules(policy: nn.Module, path: str) -> list[nn.Module]:
    """The submodules at dotted attribute ``path``; a ``*`` segment expands to every child, in order.

    A segment ``-N`` is the N-th child from the end (``layers.-1``: the last layer).

    Raises:
        ValueError: the path does not lead to a module; lists the closest module names.
    """
    modules: list[object] = [policy]
    for part in path.split("."):
        if part == "*":
            modules = [
                child for module in modules if isinstance(module, nn.Module) for child in module.children()
            ]
        elif part.startswith("-") and part[1:].isdigit():
            modules = [_child_from_end(module, int(part[1:])) for module in modules]
        else:
            modules = [getattr(module, part, None) for module in modules]
    if modules and all(isinstance(module, nn.Module) for module in modules):
        return modules
    names = [name for name, _ in policy.named_modules() if name]
    close = difflib.get_close_matches(path, names, n=5, cutoff=0.5)
    hint = f" Closest module names: {', '.join(close)}." if close else ""
    raise ValueError(f"{type(policy).__name__} has no module at {path!r}.{hint}")


def _child_from_end(module: object, position: int) -> nn.Module | None:
    children = list(module.children()) if isinstance(module, nn.Module) else []
    return children[-position] if 0 < position <= len(children) else None


def resolve_module(policy: nn.Module, path: str) -> nn.Module:
    """The one submodule at dotted attribute ``path``.

    Raises:
        ValueError: no module there, or a ``*`` path that names several.
    """
    modules = resolve_modules(policy, path)
    if len(modules) != 1:
        raise ValueError(f"{path!r} names {len(modules)} modules of {type(policy).__name__}, not one.")
    return modules[0]
