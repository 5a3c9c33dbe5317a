"""Exogenous paths: the true market price of every asset and the gas price.

Time is discrete: step ``t`` covers ``dt = step_minutes / 525600`` years.

Prices (model ``gbm``), for every non-quote asset ``j``::

    log S_j(t+1) = log S_j(t) + (mu_j - sigma_j^2 / 2) dt + sigma_j sqrt(dt) Z_j(t)
                   + beta_j * J(t) + shock_j(t)

``Z(t)`` is standard normal with pairwise correlation ``rho`` (Cholesky of the
equicorrelation matrix). ``J(t)`` is a market-wide compound-Poisson jump:
``N(t) ~ Poisson(lambda dt_days)`` jumps each of log size
``Normal(jump_mean, jump_stdev)``. A scheduled shock of size ``drop`` over
``h`` hours adds ``log(1 - drop) / steps(h)`` to each step in its window.

Model ``path``: each listed asset follows its keyframes, spread evenly over the
run and interpolated linearly in log price; unlisted assets stay flat.

These are the prices *before* market impact; the simulator multiplies them by
its impact factor (liquidation selling moves the market).

Gas (gwei): ``g(t) = base * exp(x(t)) * spike(t)`` with ``x`` an
Ornstein-Uhlenbeck process in hours, ``x(t+1) = x(t) e^{-kappa dt_h} +
vol sqrt(dt_h / 24) Z``, and ``spike(t)`` the product of the multipliers of
the spike windows containing ``t``.
"""

from __future__ import annotations

import math

import numpy as np

from zksolv.engine.scenario import Scenario

MINUTES_PER_YEAR = 525_600.0


def _window(start_hour: float, duration_hours: float, step_minutes: float,
            n_steps: int) -> tuple[int, int]:
    a = int(round(start_hour * 60.0 / step_minutes))
    b = a + max(1, int(round(duration_hours * 60.0 / step_minutes)))
    return min(a, n_steps), min(b, n_steps)


def price_path(sc: Scenario, n_steps: int, rng: np.random.Generator) -> np.ndarray:
    """True prices before impact, shape ``(n_steps + 1, n_risky)``, row 0 = start."""
    risky = [a for a in sc.assets if not a.quote]
    k = len(risky)
    p0 = np.array([a.price for a in risky])
    if sc.prices.model == "path":
        out = np.tile(p0, (n_steps + 1, 1))
        for sym, frames in sc.prices.path:
            j = next(i for i, a in enumerate(risky) if a.symbol == sym)
            if len(frames) == 1:
                out[:, j] = frames[0]
                continue
            xs = np.linspace(0.0, n_steps, len(frames))
            out[:, j] = np.exp(np.interp(np.arange(n_steps + 1), xs, np.log(frames)))
        return out
    dt = sc.step_minutes / MINUTES_PER_YEAR
    sigma = np.array([a.volatility for a in risky])
    mu = np.array([a.drift for a in risky])
    beta = np.array([a.jump_beta for a in risky])
    rho = sc.prices.correlation if k > 1 else 0.0
    corr = np.full((k, k), rho) + np.eye(k) * (1.0 - rho)
    try:
        chol = np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:  # rho too negative for k assets: fall back to independent
        chol = np.eye(k)
    z = rng.standard_normal((n_steps, k)) @ chol.T
    steps = (mu - 0.5 * sigma**2) * dt + sigma * math.sqrt(dt) * z
    lam = sc.prices.jump_intensity_per_day * sc.step_minutes / 1440.0
    counts = rng.poisson(lam, n_steps) if lam > 0 else np.zeros(n_steps, dtype=np.int64)
    sizes = rng.normal(sc.prices.jump_mean * counts,
                       sc.prices.jump_stdev * np.sqrt(counts))
    steps += np.outer(sizes, beta)
    for shock in sc.prices.shocks:
        a, b = _window(shock.start_hour, shock.duration_hours, sc.step_minutes, n_steps)
        if b <= a:
            continue
        cols = [i for i, x in enumerate(risky) if x.symbol in shock.assets]
        steps[a:b, cols] += math.log1p(-shock.drop) / (b - a)
    logp = np.vstack([np.log(p0), np.log(p0) + np.cumsum(steps, axis=0)])
    return np.exp(logp)


def gas_path(sc: Scenario, n_steps: int, rng: np.random.Generator) -> np.ndarray:
    """Gas price in gwei at every step, shape ``(n_steps + 1,)``."""
    g = sc.gas
    dt_h = sc.step_minutes / 60.0
    decay = math.exp(-g.mean_reversion_per_hour * dt_h)
    noise = rng.standard_normal(n_steps) * g.volatility * math.sqrt(dt_h / 24.0)
    x = np.zeros(n_steps + 1)
    for t in range(n_steps):
        x[t + 1] = x[t] * decay + noise[t]
    gwei = g.base_gwei * np.exp(x)
    for spike in g.spikes:
        a, b = _window(spike.start_hour, spike.duration_hours, sc.step_minutes, n_steps + 1)
        gwei[a:b] *= spike.multiplier
    return gwei
