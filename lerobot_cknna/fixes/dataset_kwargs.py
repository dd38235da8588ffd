"""``make_policy`` hands dataset statistics to every policy class; SAC's constructor refuses them.

Given a dataset (``ds_meta``), ``lerobot.policies.factory.make_policy`` adds
``dataset_stats`` and ``dataset_meta`` to the keyword arguments of the policy class, both
for a fresh policy and for ``from_pretrained`` (which passes them on to the constructor).
Every policy class takes ``**kwargs`` except ``SACPolicy``, whose ``__init__(self,
config)`` raises ``TypeError: ... unexpected keyword argument 'dataset_stats'``: a SAC
policy cannot be built or loaded against a dataset at all, so it cannot be replayed. The
fix is active while a block builds policies: such a constructor is called without the two
arguments (SAC's normalization lives in its processors, which get the statistics anyway).
"""

import contextlib
import functools
import inspect
import logging
from collections.abc import Iterator

DESCRIPTION = (
    "make_policy's dataset_stats / dataset_meta are dropped for policy classes that take no **kwargs"
)
PATCH = "patches/dataset_kwargs.diff"
DATASET_KWARGS = ("dataset_stats", "dataset_meta")


def is_present(policy_cls: type) -> bool:
    """Whether ``policy_cls(config, dataset_stats=..., dataset_meta=...)`` would raise a TypeError."""
    parameters = inspect.signature(policy_cls.__init__).parameters
    takes_any = any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values())
    return not takes_any and not all(name in parameters for name in DATASET_KWARGS)


def _without_dataset_kwargs(policy_cls: type) -> type:
    """``policy_cls`` with a constructor that drops the dataset arguments (the class itself is kept)."""
    original_init = policy_cls.__init__

    @functools.wraps(original_init)
    def init(self, *args, **kwargs):
        dropped = [kwargs.pop(name) for name in DATASET_KWARGS if name in kwargs]
        if dropped:
            logging.warning(f"Applied run-time fix for a lerobot 0.4.4 defect: {DESCRIPTION} ({PATCH})")
        original_init(self, *args, **kwargs)

    policy_cls.__init__ = init
    return policy_cls


@contextlib.contextmanager
def dataset_kwargs_accepted() -> Iterator[None]:
    """While the block runs, ``make_policy`` with a dataset builds policies whose class refuses its stats."""
    # Imported here: LeRobot's policy modules must not load before lerobot_cknna's import-time fixes.
    from lerobot.policies import factory

    original_get_policy_class = factory.get_policy_class
    own_inits: dict[type, object | None] = {}

    def get_policy_class(name: str) -> type:
        policy_cls = original_get_policy_class(name)
        if policy_cls not in own_inits and is_present(policy_cls):
            own_inits[policy_cls] = vars(policy_cls).get("__init__")
            _without_dataset_kwargs(policy_cls)
        return policy_cls

    factory.get_policy_class = get_policy_class
    try:
        yield
    finally:
        factory.get_policy_class = original_get_policy_class
        for policy_cls, own_init in own_inits.items():
            if own_init is None:
                del policy_cls.__init__
            else:
                policy_cls.__init__ = own_init
