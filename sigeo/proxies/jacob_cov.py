"""Jacobian covariance (Mellor et al., 2021, v1): how differently the network responds to each input.

The Jacobian of each sample's logit with respect to its continuous inputs — the dense features and
the looked-up embeddings (the output of the model's ``stem``) — is taken on the first probe batch;
the score is -Σ (log(λ + k) + 1/(λ + k)) over the eigenvalues λ of their correlation matrix, k = 1e-5.
"""

from __future__ import annotations

import torch

from .gradients import ProbeContext
from .registry import register

_K = 1e-5


def input_jacobian(model: torch.nn.Module, dense: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """d logit_b / d (dense_b, embeddings_b) for every sample b (samples do not interact), [B, F].

    The stem's output is cut from the graph and differentiated as an input of its own, so the
    Jacobian needs no parameter gradients (it works whatever the parameters' ``requires_grad``),
    and an input the logit does not depend on gets zero columns.
    """
    stem = next(m for name, m in model.named_modules() if name.rsplit(".", 1)[-1] == "stem")
    captured = []

    def as_input(_module, _inputs, output):
        leaf = output.detach().requires_grad_()
        captured.append(leaf)
        return leaf

    dense = dense.detach().clone().requires_grad_()
    handle = stem.register_forward_hook(as_input)
    try:
        with torch.enable_grad():
            out = model(dense, ids)
    finally:
        handle.remove()
    d_dense, d_embedded = torch.autograd.grad(
        out.sum(), [dense, captured[0]], allow_unused=True, materialize_grads=True
    )
    return torch.cat([d_dense, d_embedded.flatten(1)], dim=1)


@register("jacob_cov", higher_is_better=True)
def jacob_cov(ctx: ProbeContext) -> dict[str, float]:
    dense, ids = ctx.batches[0][0], ctx.batches[0][1]
    jac = input_jacobian(ctx.model, dense, ids).double()
    corr = torch.nan_to_num(torch.corrcoef(jac), nan=0.0)
    eig = torch.linalg.eigvalsh(corr)
    return {"jacob_cov": float(-(torch.log(eig + _K) + 1.0 / (eig + _K)).sum())}
