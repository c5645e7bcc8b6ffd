"""Zero-cost and sub-one-shot proxies behind one registry; importing the package registers them all.

One module per proxy; gradient proxies share :class:`ProbeContext`'s single gradient pass.
"""

from . import (
    aznas,
    fisher,
    fisher_rao,
    flops,
    grad_abs_mean,
    grad_norm,
    grad_std,
    jacob_cov,
    loss,
    meco,
    naswot,
    oneshot,
    params,
    random,
    sigeo,
    snip,
    swap,
    synflow,
    zico,
)
from .gradients import GradientMoments, GradientRecord, ProbeContext, ProbeSettings, Region, collect_gradients
from .registry import PROXIES, Proxy, get_proxy, register, score

__all__ = [
    "PROXIES",
    "GradientMoments",
    "GradientRecord",
    "ProbeContext",
    "ProbeSettings",
    "Proxy",
    "Region",
    "aznas",
    "collect_gradients",
    "fisher",
    "fisher_rao",
    "flops",
    "get_proxy",
    "grad_abs_mean",
    "grad_norm",
    "grad_std",
    "jacob_cov",
    "loss",
    "meco",
    "naswot",
    "oneshot",
    "params",
    "random",
    "register",
    "score",
    "sigeo",
    "snip",
    "swap",
    "synflow",
    "zico",
]
