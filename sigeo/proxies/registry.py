"""The proxy registry: every proxy is a named function over a probe context, with a stated direction.

Callers (the config, the search, the studies, the records' column names) ask for proxies by name, so
adding a proxy is one new module with one decorated function; ``import sigeo.proxies`` imports them
all. Scoring never raises for a broken candidate: NaN/inf scores are kept as they are, and a proxy
that fails with a numerical or runtime error scores NaN (the context keeps why), so one bad subnet
cannot stop a search. Out-of-memory and CUDA errors are not the candidate's fault and are raised:
after a CUDA error every later candidate would fail too, and each would silently score NaN.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..devices import is_device_failure
from ..errors import ConfigError

if TYPE_CHECKING:
    from .gradients import ProbeContext

log = logging.getLogger(__name__)

ProxyFn = Callable[["ProbeContext"], dict[str, float]]


@dataclass(frozen=True)
class Proxy:
    """A registered proxy. ``fn`` returns named scores; the key equal to ``name`` is its score."""

    name: str
    fn: ProxyFn
    higher_is_better: bool


PROXIES: dict[str, Proxy] = {}


def register(name: str, *, higher_is_better: bool) -> Callable[[ProxyFn], ProxyFn]:
    """Decorator adding ``fn`` to :data:`PROXIES` under ``name``; two proxies cannot share a name."""

    def decorate(fn: ProxyFn) -> ProxyFn:
        if name in PROXIES:
            raise ValueError(f"proxy {name!r} is already registered by {PROXIES[name].fn.__module__}")
        PROXIES[name] = Proxy(name=name, fn=fn, higher_is_better=higher_is_better)
        return fn

    return decorate


def get_proxy(name: str) -> Proxy:
    """The proxy called ``name``; an unknown name is a configuration error that lists the known ones."""
    try:
        return PROXIES[name]
    except KeyError:
        raise ConfigError(f"unknown proxy {name!r}; known proxies: {', '.join(sorted(PROXIES))}") from None


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message``: a failure's cause, short enough to count and report."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def score(names: Sequence[str], ctx: ProbeContext) -> dict[str, float]:
    """Run each named proxy once on ``ctx`` and merge their scores into one dict of floats.

    Proxies may return components (SiGeo returns its ZiCo, Fisher–Rao and loss terms as
    ``sigeo_*``); a component named like another proxy's score or component is a programming error,
    since one column would silently replace the other. A proxy that fails scores NaN, with its error
    in ``ctx.failures``; device failures are raised.
    """
    proxies = [get_proxy(name) for name in names]
    merged: dict[str, float] = {}
    for proxy in proxies:
        try:
            values = {key: float(value) for key, value in proxy.fn(ctx).items()}
        except (FloatingPointError, RuntimeError) as exc:
            if is_device_failure(exc):
                raise
            log.warning("proxy %s failed on this candidate, scoring nan: %s", proxy.name, exc)
            ctx.failures[proxy.name] = first_line(exc)
            values = {proxy.name: math.nan}
        clash = sorted(set(values) & set(merged))
        if clash:
            raise ValueError(f"proxy {proxy.name!r} returns {clash}, already returned by another proxy")
        merged.update(values)
    return merged
