"""Proxies on a 3-parameter linear model whose gradients are worked out by hand in the comments.

Model ŷ = w·x + b with w = (1, −1), b = 0.5; loss = squared error of one sample per batch, so
∂L/∂w = 2r·x and ∂L/∂b = 2r with r = ŷ − y. Batches (x, y) and residuals without optimizer steps:
  1: x=(1,0), y=1 → r= 0.5 → g_w=( 1, 0), g_b= 1, L=0.25
  2: x=(0,1), y=0 → r=−0.5 → g_w=( 0,−1), g_b=−1, L=0.25
  3: x=(1,1), y=2 → r=−1.5 → g_w=(−3,−3), g_b=−3, L=2.25
Per element over the 3 batches (σ with ddof 1):
  w₀: 1, 0, −3 → μ=4/3, σ²=((5/3)²+(2/3)²+(7/3)²)/2 = 13/3
  w₁: 0, −1, −3 → μ=4/3, σ²=((4/3)²+(1/3)²+(5/3)²)/2 = 7/3
  b:  1, −1, −3 → μ=5/3, σ²=(2²+0²+2²)/2 = 4
θ·Σ_b g = 1·(−2) + (−1)·(−4) + 0.5·(−3) = 0.5.
"""

from __future__ import annotations

import logging
import math
import zlib
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from sigeo.config import load_settings
from sigeo.errors import ConfigError
from sigeo.proxies import PROXIES, GradientRecord, ProbeContext, ProbeSettings, get_proxy, register, score
from sigeo.proxies.aznas import rank_aggregate, spectral_entropy, trainability_term
from sigeo.proxies.jacob_cov import input_jacobian
from sigeo.proxies.meco import min_correlation_eigenvalue, sampled_units
from sigeo.proxies.swap import distinct_unit_patterns
from sigeo.space.choice import SMALL, Architecture, Block
from sigeo.space.supernet import Candidate, SuperNet

ALL = ["zico", "fisher_rao", "loss", "grad_abs_mean", "grad_std", "sigeo"]
BATCHES = [
    (torch.tensor([[1.0, 0.0]]), torch.tensor([1.0])),
    (torch.tensor([[0.0, 1.0]]), torch.tensor([0.0])),
    (torch.tensor([[1.0, 1.0]]), torch.tensor([2.0])),
]

Z_FIXED = math.log(4 / 3 / math.sqrt(13 / 3) + 4 / 3 / math.sqrt(7 / 3)) + math.log(5 / 3 / 2)
Z_FIRST = math.log(4 / 3 / math.sqrt(13 / 3)) + math.log(5 / 3 / 2)
F = math.log(0.5 + 1e-10)


def settings(mode: str = "fixed", zico: float = 1.0, fr: float = 1.0, loss: float = 0.0) -> ProbeSettings:
    return ProbeSettings(zico_coef=zico, fr_coef=fr, loss_coef=loss, sigeo_mode=mode, seed=0)


def linear() -> nn.Linear:
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -1.0]]))
        model.bias.copy_(torch.tensor([0.5]))
    return model


def mse(model: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return ((model(x).squeeze(1) - y) ** 2).mean()


def context(probe: ProbeSettings | None = None, **kwargs) -> ProbeContext:
    model = kwargs.pop("model", None) or linear()
    return ProbeContext(model, kwargs.pop("batches", BATCHES), mse, probe or settings(), **kwargs)


def test_gradient_record_holds_the_hand_computed_gradients():
    record = context().gradients()
    assert record.names == ("weight", "bias") and record.sizes == (2, 1)
    assert record.flat.dtype == record.theta_flat.dtype == torch.float32  # the gradients' own dtype: exact
    assert record.grads["weight"].tolist() == [[1, 0], [0, -1], [-3, -3]]
    assert record.grads["bias"].tolist() == [[1], [-1], [-3]]
    assert record.theta["weight"].tolist() == [1, -1] and record.theta["bias"].tolist() == [0.5]
    assert record.losses == [0.25, 0.25, 2.25]


def test_every_proxy_matches_the_hand_computed_value():
    scores = score(ALL, context())
    assert scores["zico"] == pytest.approx(Z_FIXED, rel=1e-12)
    assert scores["fisher_rao"] == pytest.approx(F, rel=1e-12)
    assert scores["loss"] == 2.25
    assert scores["grad_abs_mean"] == pytest.approx(13 / 3, rel=1e-12)
    assert scores["grad_std"] == pytest.approx(math.sqrt(13 / 3) + math.sqrt(7 / 3) + 2, rel=1e-12)
    assert scores["sigeo"] == pytest.approx(Z_FIXED + F, rel=1e-12)


def test_sigeo_coefficients_and_components():
    scores = score(["sigeo"], context(settings(zico=2.0, fr=0.5, loss=1.0)))
    assert scores["sigeo"] == pytest.approx(2 * Z_FIXED + 0.5 * F - 2.25, rel=1e-12)
    assert scores["sigeo_zico"] == pytest.approx(Z_FIXED) and scores["sigeo_fisher_rao"] == pytest.approx(F)
    assert scores["sigeo_loss"] == 2.25


def test_faithful_sigeo_differs_from_fixed_only_in_the_zico_term():
    fixed = score(["sigeo"], context(settings("fixed")))
    faithful = score(["sigeo"], context(settings("faithful")))
    assert faithful["sigeo_zico"] == pytest.approx(Z_FIRST, rel=1e-12)
    assert fixed["sigeo_zico"] - faithful["sigeo_zico"] == pytest.approx(
        math.log(1 + math.sqrt(13 / 7))  # log((a + b) / a) with a, b the two weight ratios
    )
    assert faithful["sigeo_fisher_rao"] == fixed["sigeo_fisher_rao"] and faithful["sigeo_loss"] == fixed["sigeo_loss"]
    assert faithful["sigeo"] == pytest.approx(Z_FIRST + F, rel=1e-12)


def test_faithful_sigeo_with_optimizer_steps_and_head_only_parameters():
    """SGD (lr 0.1) between batches, as faithful SiGeo runs it; by hand:
    after 1: w=(0.9,−1), b=0.4; batch 2: r=−0.6 → g_w=(0,−1.2), g_b=−1.2 → w=(0.9,−0.88), b=0.52;
    batch 3: r=0.9−0.88+0.52−2=−1.46 → g_w=(−2.92,−2.92), g_b=−2.92, L=1.46² → w=(1.192,−0.588), b=0.812.
    Weight column 0: 1, 0, −2.92 → μ=3.92/3, mean −0.64, σ²=(1.64²+0.64²+2.28²)/2=4.1488.
    Measuring the weight only: θ·Σg = 1.192·(−1.92) + (−0.588)·(−4.12) = 0.13392.
    """
    model = linear()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    ctx = context(settings("faithful"), model=model, step=optimizer.step, params={"weight": model.weight})
    scores = score(["sigeo"], ctx)
    record = ctx.gradients()
    assert record.names == ("weight",)
    torch.testing.assert_close(record.flat, torch.tensor([[1, 0], [0, -1.2], [-2.92, -2.92]]))
    torch.testing.assert_close(record.theta_flat, torch.tensor([1.192, -0.588]))
    assert scores["sigeo_loss"] == pytest.approx(1.46**2, rel=1e-6)
    assert scores["sigeo_zico"] == pytest.approx(math.log(3.92 / 3 / math.sqrt(4.1488)), rel=1e-6)
    assert scores["sigeo_fisher_rao"] == pytest.approx(math.log(0.13392), rel=1e-5)
    assert scores["sigeo"] == pytest.approx(scores["sigeo_zico"] + scores["sigeo_fisher_rao"], rel=1e-12)


def test_accumulate_records_running_sums():
    record = context(accumulate=True).gradients()
    assert record.grads["weight"].tolist() == [[1, 0], [1, -1], [-2, -4]]
    assert record.grads["bias"].tolist() == [[1], [0], [-3]]


def test_gradients_are_owned_by_the_record_and_collected_once():
    """The record shares no tensor with the model: later backward passes and in-place edits of the
    weights or their gradients (docs/reference.md §5.3.3's hazard) leave it as it was, accumulating or not."""
    calls = []

    def counting_mse(model, batch):
        calls.append(1)
        return mse(model, batch)

    for accumulate in (False, True):
        calls.clear()
        model = linear()
        ctx = ProbeContext(model, BATCHES, counting_mse, settings(), accumulate=accumulate)
        score(ALL, ctx)
        assert len(calls) == 3
        record = ctx.gradients()
        before = [[g.clone() for g in row] for row in record.batch_grads]
        mse(model, BATCHES[0]).backward()
        with torch.no_grad():
            model.weight.add_(10.0)
            model.weight.grad.add_(10.0)
            model.bias.grad.add_(10.0)
        assert ctx.gradients() is record
        for row, kept in zip(record.batch_grads, before, strict=True):
            assert all(torch.equal(g, k) for g, k in zip(row, kept, strict=True))
        assert record.theta["weight"].tolist() == [1, -1]


def test_missing_gradients_are_zeros_and_unused_parameters_are_left_out():
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Parameter(torch.tensor([2.0]))
            self.b = nn.Parameter(torch.tensor([3.0]))
            self.unused = nn.Parameter(torch.tensor([1.0]))

    def loss_fn(model, batch):  # d/da = x, d/db = x only when the batch uses b
        x, use_b = batch
        return model.a * x + (model.b * x if use_b else 0.0)

    batches = [(torch.tensor([1.0]), True), (torch.tensor([2.0]), False), (torch.tensor([4.0]), True)]
    record = ProbeContext(Two(), batches, lambda m, b: loss_fn(m, b).sum(), settings()).gradients()
    assert record.names == ("a", "b")
    assert record.grads["a"].flatten().tolist() == [1, 2, 4]
    assert record.grads["b"].flatten().tolist() == [1, 0, 4]
    assert record.theta_flat.tolist() == [2, 3]


def test_nan_and_inf_are_kept():
    nan_batches = [*BATCHES[:2], (torch.tensor([[1.0, 1.0]]), torch.tensor([math.nan]))]
    scores = score(ALL, context(batches=nan_batches))
    assert all(math.isnan(scores[name]) for name in ALL)
    inf_batches = [*BATCHES[:2], (torch.tensor([[1.0, 1.0]]), torch.tensor([math.inf]))]
    scores = score(ALL, context(batches=inf_batches))
    assert scores["loss"] == math.inf
    assert not math.isfinite(scores["fisher_rao"]) and not math.isfinite(scores["sigeo"])
    assert scores["grad_abs_mean"] == math.inf  # an infinite gradient keeps its mean infinite, not NaN


def record_from_matrix(names, sizes, flat: torch.Tensor, theta_flat: torch.Tensor, losses) -> GradientRecord:
    """A record over the columns of an [E, N] gradient matrix (views of it)."""
    sizes = tuple(sizes)
    batch_grads = tuple(tuple(row.split(sizes)) for row in flat)
    return GradientRecord(tuple(names), sizes, batch_grads, tuple(theta_flat.split(sizes)), losses)


def exact_moments(values: list[Fraction]) -> tuple[float, float]:
    """μ = mean |g| and σ (ddof 1) of one element's gradients, in rational arithmetic."""
    mean = sum(values) / len(values)
    return float(sum(abs(v) for v in values) / len(values)), math.sqrt(float(sum((v - mean) ** 2 for v in values) / 3))


def test_moments_are_exact_for_float32_columns_whose_values_are_ulps_apart():
    """Per-parameter Σμ/σ, Σμ, Σσ, #varying, first μ/σ and θ·Σg against exact rational arithmetic on
    one-element parameters (near-equal values, constant columns), and against numpy over two
    parameters that span several blocks of the pass."""
    rng = np.random.default_rng(5)
    base = rng.normal(size=40_300) * 10.0 ** rng.integers(-8, 3, 40_300)
    ulps = rng.integers(-3, 4, (4, 40_300)) * np.spacing(np.abs(base).astype(np.float32))
    flat = np.float32(base) + ulps.astype(np.float32)
    flat[:, 0] = 0.0
    flat[:, 1] = 3.5
    flat[:, 2] = np.spacing(np.float32(1)) * np.array([1, 2, 3, 5])
    sizes = (1,) * 300 + (1000, 39_000)
    theta = rng.normal(size=40_300)
    record = record_from_matrix([f"p{i}" for i in range(302)], sizes, torch.from_numpy(flat),
                                torch.from_numpy(theta), [0.0])  # fmt: skip
    moments = record.moments
    for col in range(300):
        values = [Fraction(float(v)) for v in flat[:, col]]
        mu, sigma = exact_moments(values)
        assert float(moments.sigma[col]) == pytest.approx(sigma, rel=1e-15, abs=0)
        assert int(moments.varying[col]) == (sigma != 0)
        assert float(moments.mu[col]) == (mu if sigma else 0.0)
        assert float(moments.snr[col]) == pytest.approx(mu / sigma if sigma else 0.0, rel=1e-15, abs=0)
        assert float(moments.first_snr[col]) == float(moments.snr[col])
        assert float(moments.inner[col]) == pytest.approx(float(Fraction(theta[col]) * sum(values)), rel=1e-15)
    assert moments.sigma[:2].tolist() == [0.0, 0.0] and moments.varying[:2].tolist() == [0, 0]  # constant
    assert moments.sigma[2] == pytest.approx(math.sqrt(8.75 / 3) * 2.0**-23, rel=1e-15)
    g = flat.astype(np.float64)
    mu, sigma = np.abs(g).mean(0), g.std(0, ddof=1)
    for p, cols in ((300, slice(300, 1300)), (301, slice(1300, None))):
        varies = sigma[cols] != 0
        assert moments.varying[p] == varies.sum() > 0
        np.testing.assert_allclose(moments.sigma[p], sigma[cols].sum(), rtol=1e-12)
        np.testing.assert_allclose(moments.mu[p], mu[cols][varies].sum(), rtol=1e-12)
        np.testing.assert_allclose(moments.snr[p], (mu[cols][varies] / sigma[cols][varies]).sum(), rtol=1e-12)
        first = np.argmax(varies)
        np.testing.assert_allclose(moments.first_snr[p], mu[cols][first] / sigma[cols][first], rtol=1e-12)
        np.testing.assert_allclose(moments.inner[p], theta[cols] @ g[:, cols].sum(0), rtol=1e-12)
    close = base[:200] * (1 + rng.integers(-50, 50, (4, 200)) * 1e-13)  # float64 spread 1e-13 of the value
    wide = record_from_matrix([f"p{i}" for i in range(200)], (1,) * 200, torch.from_numpy(close),
                              torch.zeros(200, dtype=torch.float64), [0.0]).moments  # fmt: skip
    for col in range(200):
        _, sigma = exact_moments([Fraction(float(v)) for v in close[:, col]])
        assert float(wide.sigma[col]) == pytest.approx(sigma, rel=1e-12, abs=0)
    single = record_from_matrix(["a"], (2,), torch.tensor([[1.0, -2.0]]), torch.tensor([1.0, 1.0]), [0.0]).moments
    assert single.sigma.isnan().all() and single.varying.tolist() == [2]  # no spread from one batch: NaN
    assert single.inner.tolist() == [-1.0]


def test_a_failing_candidate_scores_nan_and_warns(caplog):
    def broken(model, batch):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    ctx = ProbeContext(linear(), BATCHES, broken, settings())
    with caplog.at_level(logging.WARNING, logger="sigeo.proxies.registry"):
        scores = score(["zico", "loss"], ctx)
    assert math.isnan(scores["zico"]) and math.isnan(scores["loss"])
    assert "zico" in caplog.text and "shapes cannot be multiplied" in caplog.text


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("CUDA error: an illegal memory access was encountered"),
    ],
)
def test_out_of_memory_and_cuda_errors_are_raised_not_scored_nan(error):
    """A device failure is no property of the candidate: it propagates (and is not kept as the shared
    gradient failure), while an ordinary failure of one proxy scores NaN and is kept with its cause."""
    calls = []

    def failing(model, batch):
        calls.append(batch)
        raise error

    ctx = ProbeContext(linear(), BATCHES, failing, settings())
    with pytest.raises(type(error), match="CUDA"):
        score(["zico", "loss"], ctx)
    with pytest.raises(type(error)):
        ctx.gradients()
    assert len(calls) == 2  # collected again: the device failure was not cached as the candidate's result
    broken = ProbeContext(linear(), BATCHES, lambda m, b: (_ for _ in ()).throw(RuntimeError("singular\nmore")),
                          settings())  # fmt: skip
    assert math.isnan(score(["zico"], broken)["zico"])
    assert broken.failures == {"zico": "RuntimeError: singular"}


def test_unknown_proxy_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown proxy 'zeco'; known proxies: aznas, fisher, fisher_rao, .*, zico"):
        score(["zeco"], context())
    with pytest.raises(ConfigError, match="sigeo"):
        get_proxy("nope")


def test_registry_directions_and_registration():
    assert {name: PROXIES[name].higher_is_better for name in ALL} == {
        "zico": True, "fisher_rao": True, "loss": False, "grad_abs_mean": True, "grad_std": True, "sigeo": True,
    }  # fmt: skip

    @register("test_constant", higher_is_better=False)
    def constant(ctx):
        return {"test_constant": 7.0, "extra": 1.0}

    try:
        assert score(["test_constant"], context()) == {"test_constant": 7.0, "extra": 1.0}
        with pytest.raises(ValueError, match="already registered"):
            register("test_constant", higher_is_better=True)(constant)
    finally:
        del PROXIES["test_constant"]


def test_zico_honours_faithful_mode_and_keeps_its_column_beside_sigeo():
    """Faithful ZiCo is the reference's zero-shot ZiCo: first-element Z minus the last batch's loss (2.25);
    scored with SiGeo, neither replaces the other's value."""
    faithful = score(["sigeo", "zico"], context(settings("faithful")))
    assert faithful["zico"] == pytest.approx(Z_FIRST - 2.25, rel=1e-12)
    assert faithful["sigeo_zico"] == pytest.approx(Z_FIRST, rel=1e-12)
    assert faithful["sigeo"] == pytest.approx(Z_FIRST + F, rel=1e-12)
    fixed = score(["zico", "sigeo"], context(settings("fixed")))
    assert fixed["zico"] == fixed["sigeo_zico"] == pytest.approx(Z_FIXED, rel=1e-12)


def test_a_component_named_like_another_proxys_column_is_an_error():
    def clashing(ctx):
        return {"test_clash": 1.0, "zico": 2.0}

    register("test_clash", higher_is_better=True)(clashing)
    try:
        with pytest.raises(ValueError, match=r"proxy 'test_clash' returns \['zico'\], already returned"):
            score(["zico", "test_clash"], context())
    finally:
        del PROXIES["test_clash"]


def test_settings_come_from_the_proxy_section_and_the_run_seed():
    config = {"datasets": {"d": {"format": "criteo", "source": "synthetic", "synthetic": {"rows": 10}}}, "seed": 5,
              "proxy": {"zico_coef": 1, "fr_coef": 2, "loss_coef": 0, "sigeo_mode": "faithful"}}  # fmt: skip
    assert load_settings(config).datasets["d"].proxy == ProbeSettings(1, 2, 0, "faithful", 5)


# --- the other gradient proxies on the 3-parameter model -----------------------------------------
def test_grad_norm_snip_and_fisher_match_the_hand_computed_values():
    """grad_norm: per batch ‖g_w‖ + |g_b| = 1+1, 1+1, 3√2+3, averaged over the 3 batches.
    snip: mean g = (−2/3, −4/3 | −1), θ = (1, −1 | 0.5) → |−2/3| + |4/3| + |−0.5| = 2.5.
    fisher: mean g² per element = 10/3, 10/3, 11/3 → 31/3."""
    scores = score(["grad_norm", "snip", "fisher"], context())
    assert scores["grad_norm"] == pytest.approx((7 + 3 * math.sqrt(2)) / 3, rel=1e-12)
    assert scores["snip"] == pytest.approx(2.5, rel=1e-12)
    assert scores["fisher"] == pytest.approx(31 / 3, rel=1e-12)


class TinyCTR(nn.Module):
    """logit = u·relu(A x) + v·E[id] + c: one dense path with a ReLU and one embedding table (the stem)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Embedding(3, 2)
        self.fc = nn.Linear(2, 2, bias=False)
        self.out = nn.Linear(4, 1)
        with torch.no_grad():
            self.stem.weight.copy_(torch.tensor([[0.5, -1.0], [2.0, -0.5], [1.0, 3.0]]))
            self.fc.weight.copy_(torch.tensor([[1.0, -2.0], [-1.0, 0.5]]))
            self.out.weight.copy_(torch.tensor([[3.0, -1.0, 0.25, -2.0]]))
            self.out.bias.fill_(-0.5)

    def forward(self, dense: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.fc(dense))
        return self.out(torch.cat([hidden, self.stem(ids).flatten(1)], dim=1)).squeeze(1)


CTR_BATCH = (torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), torch.tensor([[0], [2], [0]]), torch.zeros(3))


def bce(model: nn.Module, batch) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(model(batch[0], batch[1]), batch[2])


def ctr_context(model: nn.Module | None = None) -> ProbeContext:
    return ProbeContext(model or TinyCTR(), [CTR_BATCH], bce, settings())


def test_synflow_matches_the_hand_computed_value():
    """|A| = [[1,2],[1,.5]] on unit inputs: h = (3, 1.5); |u| = (3,1), |v| = (.25,2), |E[1]| = (2,.5), |c| = .5.
    Per sample: A and u each give Σ|u_i| h_i = 10.5, v and E[1] each Σ|v_j||e_j| = 1.5, c gives 0.5 → 24.5;
    the batch has 3 samples → 73.5. The model's weights keep their signs."""
    model = TinyCTR()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert score(["synflow"], ctr_context(model))["synflow"] == pytest.approx(73.5, rel=1e-12)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# Jacobian of the logit: d/dx = Aᵀ(u ⊙ 1[Ax > 0]), d/dE[id] = v = (0.25, −2) for every sample:
#   x=(1,0): Ax=(1,−1) → Aᵀ(3,0) = (3,−6);  x=(0,1): Ax=(−2,.5) → Aᵀ(0,−1) = (1,−.5);  x=(1,1): Ax<0 → 0.
CTR_JACOBIAN = np.array([[3, -6, 0.25, -2], [1, -0.5, 0.25, -2], [0, 0, 0.25, -2]])


def test_jacob_cov_matches_numpy_on_the_hand_computed_jacobian():
    jac = input_jacobian(TinyCTR(), CTR_BATCH[0], CTR_BATCH[1])
    np.testing.assert_allclose(jac.numpy(), CTR_JACOBIAN)
    eig = np.linalg.eigvalsh(np.corrcoef(CTR_JACOBIAN))
    expected = -np.sum(np.log(eig + 1e-5) + 1 / (eig + 1e-5))
    assert score(["jacob_cov"], ctr_context())["jacob_cov"] == pytest.approx(expected, rel=1e-9)
    frozen = TinyCTR().requires_grad_(False)  # needs no parameter gradients (faithful SiGeo freezes the body)
    assert score(["jacob_cov"], ctr_context(frozen))["jacob_cov"] == pytest.approx(expected, rel=1e-9)


def test_jacob_cov_gives_zero_columns_for_an_unused_input():
    class EmbeddingOnly(TinyCTR):
        def forward(self, dense, ids):
            return self.stem(ids).flatten(1) @ torch.tensor([0.25, -2.0])

    jac = input_jacobian(EmbeddingOnly(), CTR_BATCH[0], CTR_BATCH[1])
    np.testing.assert_allclose(jac.numpy(), [[0, 0, 0.25, -2]] * 3)


def test_naswot_matches_numpy_on_a_one_block_supernet():
    """log|K| of K = c cᵀ + (1−c)(1−c)ᵀ over the ReLU codes c of FC and EFC, both computed in numpy."""
    torch.manual_seed(0)
    net = SuperNet(SMALL, 3, [5, 5], num_blocks=1, use_layernorm=False)
    block = Block((0,), (0,), 0, 0, active_nodes=(0, 2), dense_dim=16, sparse_dim=16, interact=False, deep_fm=False)
    arch = Architecture(SMALL, (block,))
    dense, ids = torch.randn(4, 3), torch.tensor([[0, 1], [2, 3], [4, 4], [1, 0]])
    rows = torch.unique(ids + net.stem.offsets)
    ctx = ProbeContext(Candidate(net, arch, rows), [(dense, ids, torch.zeros(4))], bce, settings())
    w = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    fc = dense.numpy() @ w["blocks.0.fc.weight"][:16, :3].T + w["blocks.0.fc.bias"][:16]
    emb = w["stem.embedding.weight"][ids.numpy() + np.array([0, 5])]  # [4, 2 rows, 16]
    efc = emb.transpose(0, 2, 1) @ w["blocks.0.efc.weight"][:16, :2].T + w["blocks.0.efc.bias"][:16]
    codes = np.concatenate([fc > 0, (efc > 0).reshape(4, -1)], axis=1).astype(float)
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
    assert score(["naswot"], ctx)["naswot"] == pytest.approx(np.linalg.slogdet(kernel)[1], rel=1e-9)


def test_params_flops_random_and_oneshot_read_the_stage_inputs():
    ctx = context(extras={"params": 1234, "flops_2x_all_blocks": 5678.0, "hash": "0101", "oneshot": lambda: 0.4321})
    scores = score(["params", "flops", "random", "oneshot"], ctx)
    assert (scores["params"], scores["flops"], scores["oneshot"]) == (1234.0, 5678.0, 0.4321)
    assert scores["random"] == np.random.default_rng([0, zlib.crc32(b"0101")]).random()
    other = context(settings(), extras={"hash": "0110"})
    assert score(["random"], other)["random"] != scores["random"]  # a property of the candidate
    assert score(["random"], context(extras={"hash": "0101"}))["random"] == scores["random"]


def test_every_proxy_declares_its_direction():
    assert {name: proxy.higher_is_better for name, proxy in PROXIES.items()} == {
        "sigeo": True, "zico": True, "fisher_rao": True, "loss": False, "grad_abs_mean": True, "grad_std": True,
        "grad_norm": True, "snip": True, "fisher": True, "synflow": True, "jacob_cov": True, "naswot": True,
        "params": True, "flops": True, "random": True, "oneshot": False, "meco": True, "aznas": True, "swap": True,
    }  # fmt: skip


# --- MeCo, SWAP and AZ-NAS -------------------------------------------------------------------------
def test_meco_swap_and_aznas_maths_match_hand_computed_values():
    """MeCo: columns (1,2,3,4) and (1,3,2,4), centred (−1.5,−.5,.5,1.5) and (−1.5,.5,−.5,1.5), have
    r = 4/5, so the correlation matrix [[1, r], [r, 1]] has λ_min = 1 − r = 0.2.
    SWAP: unit columns (1,0,1), (0,0,0), (1,0,1), (1,1,0) hold 3 distinct patterns.
    AZ-NAS: X = [[1,0],[−1,0],[0,2],[0,−2]] (centred) has covariance diag(1/2, 2), p = (0.2, 0.8);
    g_in = [[2,0],[−2,1]], g_out = [[1],[−1]] give M = g_inᵀ g_out / 2 = (2, −1/2)ᵀ, σ = √4.25."""
    features = torch.tensor([[1.0, 1.0], [2.0, 3.0], [3.0, 2.0], [4.0, 4.0]], dtype=torch.float64)
    assert min_correlation_eigenvalue(features) == pytest.approx(0.2, rel=1e-12)
    dead = torch.cat([features, torch.zeros(4, 1, dtype=torch.float64)], dim=1)  # a constant unit: its row is 0
    assert min_correlation_eigenvalue(dead) == pytest.approx(0.0, abs=1e-12)
    codes = torch.tensor([[1, 0, 1, 1], [0, 0, 0, 1], [1, 0, 1, 0]], dtype=torch.bool)
    assert distinct_unit_patterns(codes) == 3
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]], dtype=torch.float64)
    assert spectral_entropy(x) == pytest.approx(-(0.2 * math.log(0.2 + 1e-8) + 0.8 * math.log(0.8 + 1e-8)), rel=1e-12)
    assert spectral_entropy(x + 5.0) == pytest.approx(spectral_entropy(x), rel=1e-12)  # covariance: centred
    assert spectral_entropy(torch.ones(4, 3, dtype=torch.float64)) == 0.0  # one point: no spectrum
    g_in = torch.tensor([[2.0, 0.0], [-2.0, 1.0]], dtype=torch.float64)
    sigma = math.sqrt(4.25)
    assert trainability_term(g_in, torch.tensor([[1.0], [-1.0]], dtype=torch.float64)) == pytest.approx(
        -sigma - 1 / (sigma + 1e-6) + 2, rel=1e-12
    )
    # more outputs than samples (the B × B branch): g_out = [[1,1,0],[−1,1,1]] gives M = g_inᵀ g_out / 2 =
    # [[2,0,−1],[−1/2,1/2,1/2]], MMᵀ = [[5,−3/2],[−3/2,3/4]], λ_max = (23/4 + √(4.25² + 9)) / 2
    wide = torch.tensor([[1.0, 1.0, 0.0], [-1.0, 1.0, 1.0]], dtype=torch.float64)
    sigma = math.sqrt((23 / 4 + math.sqrt((5 - 3 / 4) ** 2 + 9)) / 2)
    assert trainability_term(g_in, wide) == pytest.approx(-sigma - 1 / (sigma + 1e-6) + 2, rel=1e-9)
    # g_out g_outᵀ singular (equal rows; no Cholesky factor): g_out = [[1,1,−1],[1,1,−1]] gives
    # M = [[0,0,0],[1/2,1/2,−1/2]], σ = √(3/4)
    twin = torch.tensor([[1.0, 1.0, -1.0], [1.0, 1.0, -1.0]], dtype=torch.float64)
    sigma = math.sqrt(3 / 4)
    assert trainability_term(g_in, twin) == pytest.approx(-sigma - 1 / (sigma + 1e-6) + 2, rel=1e-9)


def test_aznas_rank_aggregation_matches_the_hand_computed_ranks():
    """Ranks from the lowest (ties averaged) over N = 3: expressivity (1,2,3) → 1,2,3; progressivity
    (3,1,2) → 3,1,2; trainability (5,5,1) → 2.5,2.5,1; complexity (10,30,20) → 1,3,2."""
    frame = pd.DataFrame({"aznas_expressivity": [1.0, 2.0, 3.0], "aznas_progressivity": [3.0, 1.0, 2.0],
                          "aznas_trainability": [5.0, 5.0, 1.0], "aznas_complexity": [10.0, 30.0, 20.0]})  # fmt: skip
    ranks = [(1, 3, 2.5, 1), (2, 1, 2.5, 3), (3, 2, 1, 2)]
    expected = [sum(math.log(r / 3) for r in row) for row in ranks]
    np.testing.assert_allclose(rank_aggregate(frame), expected, rtol=1e-12)
    frame.loc[1, "aznas_trainability"] = math.nan
    assert math.isnan(rank_aggregate(frame)[1])


def one_block(samples: int = 16):
    """A one-block SMALL supernet (FC and EFC, no LayerNorm), a candidate of it and a probe batch."""
    torch.manual_seed(0)
    net = SuperNet(SMALL, 3, [5, 5], num_blocks=1, use_layernorm=False)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.add_(0.5 + 0.3 * torch.randn_like(p))  # mostly positive: few units are off for every sample
    block = Block((0,), (0,), 0, 0, active_nodes=(0, 2), dense_dim=16, sparse_dim=16, interact=False, deep_fm=False)
    arch = Architecture(SMALL, (block,))
    generator = torch.Generator().manual_seed(1)
    dense = torch.randn(samples, 3, generator=generator)
    ids = torch.randint(0, 5, (samples, 2), generator=generator)
    candidate = Candidate(net, arch, torch.unique(ids + net.stem.offsets))
    return net, candidate, (dense, ids, torch.zeros(samples))


def numpy_block(net: SuperNet, dense: torch.Tensor, ids: torch.Tensor) -> dict[str, np.ndarray]:
    """The one-block subnet's layers in numpy: input dense [B,3] and rows [B,16,2]; FC and EFC pre-activations."""
    w = {k: v.detach().double().numpy() for k, v in net.state_dict().items()}
    rows = w["stem.embedding.weight"][ids.numpy() + np.array([0, 5])].transpose(0, 2, 1)  # [B, E=16, C=2]
    return {
        "dense": dense.double().numpy(),
        "rows": rows,
        "fc": dense.double().numpy() @ w["blocks.0.fc.weight"][:16, :3].T + w["blocks.0.fc.bias"][:16],
        "efc": rows @ w["blocks.0.efc.weight"][:16, :2].T + w["blocks.0.efc.bias"][:16],  # [B, E, 16 rows]
        "w_fc": w["blocks.0.fc.weight"][:16, :3],
        "w_efc": w["blocks.0.efc.weight"][:16, :2],
    }


def test_meco_and_swap_match_numpy_on_a_one_block_supernet():
    """MeCo: λ_min of the correlation of the 8 units drawn by the (seed, 1) generator among the block's
    272 outputs (16 FC, 16×16 EFC) over the 16 samples, × 272/8. SWAP: distinct unit columns of the
    ReLU codes (FC and EFC)."""
    net, candidate, batch = one_block()
    ctx = ProbeContext(candidate, [batch], bce, settings(), extras={"flops_2x_all_blocks": 1.0})
    layers = numpy_block(net, batch[0], batch[1])
    relu = {k: np.maximum(layers[k], 0) for k in ("fc", "efc")}
    outputs = np.concatenate([relu["fc"], relu["efc"].reshape(16, -1)], axis=1)
    units = sampled_units(272, 0, 1)
    eig = np.linalg.eigvalsh(np.nan_to_num(np.corrcoef(outputs[:, units].T)))
    assert eig[0] > 0.01  # the check has a non-trivial value to match
    assert score(["meco"], ctx)["meco"] == pytest.approx(eig[0] * 272 / 8, rel=1e-5)
    codes = (outputs > 0).astype(int)
    patterns = len(np.unique(codes.T, axis=0))
    assert 2 < patterns < 272  # some units share a pattern, some differ
    assert score(["swap"], ctx)["swap"] == patterns


def numpy_entropy(x: np.ndarray) -> float:
    eig = np.clip(np.linalg.eigvalsh(np.cov(x.T, bias=True)), 0, None)
    p = eig / eig.sum()
    return float(-(p * np.log(p + 1e-8)).sum())


def test_aznas_components_match_numpy_on_a_one_block_supernet():
    """Expressivity and progressivity from covariance eigenvalues in numpy; trainability from the block's
    Jacobian written out: g_in(dense) = (g_fc ⊙ 1[fc > 0]) W_fc, g_in(rows) = (g_efc ⊙ 1[efc > 0]) W_efc,
    with g_out the ±1 draws of a generator seeded like the proxy's; complexity = the FLOPs given."""
    net, candidate, batch = one_block()
    candidate.requires_grad_(False)  # the proxy differentiates whatever the parameters' flags (restored after)
    ctx = ProbeContext(candidate, [batch], bce, settings(), extras={"flops_2x_all_blocks": 1234.0})
    scores = score(["aznas"], ctx)
    assert not any(p.requires_grad for p in candidate.parameters())
    n = numpy_block(net, batch[0], batch[1])
    inputs = np.concatenate([n["dense"], n["rows"].reshape(16, -1)], axis=1)
    outputs = np.concatenate([np.maximum(n["fc"], 0), np.maximum(n["efc"], 0).reshape(16, -1)], axis=1)
    e0, e1 = numpy_entropy(inputs), numpy_entropy(outputs)
    generator = torch.Generator().manual_seed(0)
    g_fc, g_efc = ((torch.randint(0, 2, shape, generator=generator, dtype=torch.float64) * 2 - 1).numpy()
                   for shape in ((16, 16), (16, 16, 16)))  # fmt: skip
    g_dense = (g_fc * (n["fc"] > 0)) @ n["w_fc"]
    g_rows = (g_efc * (n["efc"] > 0)) @ n["w_efc"]  # [B, E, 2]
    g_in = np.concatenate([g_dense, g_rows.reshape(16, -1)], axis=1)
    g_out = np.concatenate([g_fc, g_efc.reshape(16, -1)], axis=1)
    sigma = np.linalg.svd(g_in.T @ g_out / 16, compute_uv=False).max()
    assert scores["aznas_expressivity"] == pytest.approx(e1, rel=1e-5)
    assert scores["aznas_progressivity"] == pytest.approx(e1 - e0, rel=1e-4)
    assert scores["aznas_trainability"] == pytest.approx(-sigma - 1 / (sigma + 1e-6) + 2, rel=1e-5)
    assert scores["aznas_complexity"] == 1234.0
    total = e1 + (e1 - e0) + (-sigma - 1 / (sigma + 1e-6) + 2) + math.log(1234.0)
    assert scores["aznas"] == pytest.approx(total, rel=1e-5)


def test_feature_proxies_score_nan_on_a_model_without_layers():
    assert all(math.isnan(score([name], ctr_context())[name]) for name in ("meco", "aznas", "swap"))
