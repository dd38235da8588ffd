"""Patch an attribute for the length of a block, and always put back what was there.

Every change this package makes to an object it does not own (a policy's method, a LeRobot
module's function, a vector env's ``step``) goes through :func:`patched`, so that leaving the
block, normally or by an exception, restores the object exactly: an attribute the object had of
its own is set back, one it only inherited (a method of its class) is deleted again::

    with patched(policy, "select_action", recording_select_action):
        ...                                # policy.select_action is the recorder here
    # policy.select_action is the class's method again
"""

import contextlib
from collections.abc import Iterator

_MISSING = object()


@contextlib.contextmanager
def patched(owner: object, name: str, value: object) -> Iterator[None]:
    """Within the block, ``owner.name`` is ``value``; afterwards it is what it was before.

    Args:
        owner: any object: an instance, a class or a module.
        name: the attribute to replace.
        value: what it is while the block runs.
    """
    own = vars(owner).get(name, _MISSING) if hasattr(owner, "__dict__") else getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        if own is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, own)
