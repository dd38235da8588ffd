"""``make_policy`` hands dataset statistics to every policy class; the Gaussian actor's constructor refuses them."""

import contextlib
import functools
import inspect
from collections.abc import Iterator

from lerobot.policies import factory

from lerobot_cknna.compat.registry import ConstructionFix, register
from lerobot_cknna.utils.patching import patched

DATASET_KWARGS = ("dataset_stats", "dataset_meta")


@register("dataset_kwargs")
class DatasetKwargs(ConstructionFix):
    """``make_policy(..., ds_meta=...)`` adds ``dataset_stats`` and ``dataset_meta`` to the policy constructor's arguments (factory.py:321-326), and ``GaussianActorPolicy.__init__(self, config)`` takes no ``**kwargs``.

    Every other policy class takes ``**kwargs``. The arguments reach the constructor both for a
    fresh policy and through ``from_pretrained`` (pretrained.py:201), so a Gaussian actor (the
    former SAC) can be neither built nor loaded against a dataset, and so not replayed.
    """

    symptom = "`TypeError: GaussianActorPolicy.__init__() got an unexpected keyword argument 'dataset_stats'`"
    remedy = (
        "while a policy is built, a constructor without `**kwargs` is called without them "
        "(its normalization lives in its processors, which get the statistics anyway)"
    )

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """While the block runs, ``make_policy`` with a dataset builds policies whose class refuses its stats."""
        original_get_policy_class = factory.get_policy_class
        with contextlib.ExitStack() as stack:

            def get_policy_class(name: str) -> type:
                policy_cls = original_get_policy_class(name)
                if is_present(policy_cls) and not getattr(policy_cls.__init__, "drops_dataset_kwargs", False):
                    stack.enter_context(
                        patched(policy_cls, "__init__", _without_dataset_kwargs(policy_cls.__init__))
                    )
                return policy_cls

            stack.enter_context(patched(factory, "get_policy_class", get_policy_class))
            yield


def is_present(policy_cls: type) -> bool:
    """Whether ``policy_cls(config, dataset_stats=..., dataset_meta=...)`` would raise a TypeError."""
    parameters = inspect.signature(policy_cls.__init__).parameters
    takes_any = any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values())
    return not takes_any and not all(name in parameters for name in DATASET_KWARGS)


def _without_dataset_kwargs(original_init):
    @functools.wraps(original_init)
    def init(self, *args, **kwargs):
        dropped = [name for name in DATASET_KWARGS if kwargs.pop(name, None) is not None]
        if dropped:
            DatasetKwargs.log_applied(f"{type(self).__name__} built without {', '.join(dropped)}")
        original_init(self, *args, **kwargs)

    init.drops_dataset_kwargs = True
    return init
