"""SiGeo = zico_coef·Z + fr_coef·F − loss_coef·ℓ (docs/reference.md §5.2), with its three components.

The components are named ``sigeo_zico``, ``sigeo_fisher_rao`` and ``sigeo_loss``: the ``zico``,
``fisher_rao`` and ``loss`` proxies scored beside SiGeo keep their own columns, so neither replaces
the other (in faithful mode SiGeo's Z is the first-element term, the ``zico`` proxy's score Z − ℓ).

``proxy.sigeo_mode: fixed`` uses the intended ZiCo term (all elements with σ ≠ 0); ``faithful`` the
reference's first-element term (docs/reference.md §5.3.1). The other faithful traits are the caller's: it passes the
optimizer ``step`` between probe batches (docs/reference.md §5.3.4) and only the head's ``params`` (§5.3.5).
"""

from __future__ import annotations

from .fisher_rao import fisher_rao_value
from .gradients import ProbeContext
from .loss import loss_value
from .registry import register
from .zico import zico_value


@register("sigeo", higher_is_better=True)
def sigeo(ctx: ProbeContext) -> dict[str, float]:
    settings = ctx.settings
    record = ctx.gradients()
    z = zico_value(ctx.moments(), first_only=settings.sigeo_mode == "faithful")
    f = fisher_rao_value(record)
    ell = loss_value(record)
    total = settings.zico_coef * z + settings.fr_coef * f - settings.loss_coef * ell
    return {"sigeo": total, "sigeo_zico": z, "sigeo_fisher_rao": f, "sigeo_loss": ell}
