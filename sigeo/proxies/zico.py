"""ZiCo: Σ_p log Σ_{i: σ_i>0} μ_i/σ_i — high mean-to-spread gradient ratios mark trainable networks.

With ``proxy.sigeo_mode: faithful`` the score is the reference's zero-shot ZiCo instead: its SiGeo
code with the Fisher–Rao coefficient 0 and the loss coefficient 1, i.e. the first-element term
minus the last probe batch's loss, measured as faithful SiGeo measures (the caller's head-only
parameters and optimizer steps).
"""

from __future__ import annotations

import torch

from .gradients import GradientMoments, ProbeContext
from .loss import loss_value
from .registry import register


def zico_value(moments: GradientMoments, first_only: bool = False) -> float:
    """The ZiCo term over every measured parameter (parameters whose gradient never varies add nothing).

    ``first_only`` reproduces the reference's bug (docs/reference.md §5.3.1): each parameter contributes only
    log(μ/σ) of its first element with σ ≠ 0 instead of the log of the sum over all such elements.
    """
    if first_only:
        ratios = moments.first_snr
        return float(torch.log(ratios[ratios != 0]).sum())
    return float(torch.log(moments.snr[moments.varying > 0]).sum())


@register("zico", higher_is_better=True)
def zico(ctx: ProbeContext) -> dict[str, float]:
    """One log term per measured parameter group (so SiGeo's ZiCo component too). A supernet
    candidate measures each embedding table as its own group (``Candidate.probed``), as the
    reference's one embedding module per feature does, although all tables share one parameter."""
    if ctx.settings.sigeo_mode == "faithful":
        return {"zico": zico_value(ctx.moments(), first_only=True) - loss_value(ctx.gradients())}
    return {"zico": zico_value(ctx.moments())}
