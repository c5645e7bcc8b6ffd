"""Zero-cost and sub-one-shot proxies behind one registry; importing the package registers them all.

One module per proxy; gradient proxies share :class:`ProbeContext`'s single gradient pass.
"""

from . import fisher_rao, grad_abs_mean, grad_std, loss, sigeo, zico
from .gradients import GradientMoments, GradientRecord, ProbeContext, ProbeSettings, collect_gradients
from .registry import PROXIES, Proxy, get_proxy, register, score

__all__ = [
    "PROXIES",
    "GradientMoments",
    "GradientRecord",
    "ProbeContext",
    "ProbeSettings",
    "Proxy",
    "collect_gradients",
    "fisher_rao",
    "get_proxy",
    "grad_abs_mean",
    "grad_std",
    "loss",
    "register",
    "score",
    "sigeo",
    "zico",
]
