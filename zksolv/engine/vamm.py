"""A constant-product virtual AMM per perp market (``liquidation.execution = "vamm"``).

Each market m has virtual reserves ``X_m`` (base) and ``Y_m = L_m^2 / X_m``
(quote), so the mark price is ``P_m = Y_m / X_m = L_m^2 / X_m^2``. Tags as in
``docs/engine.md``:

[V1] depth: ``L_m = 200 d_m / sqrt(P_0)`` with ``d_m = depth * OI_m`` the
     notional that moves the mark 1 % (selling ``Delta`` base moves the mark
     by ``(1 + Delta / X)^-2 ~ 1 - 2 Delta / X``; 1 % at ``Delta P = X P / 200``).
[V2] execution: a net trade of ``Delta`` base bought from the curve (``Delta <
     0`` sold) moves ``X -> X - Delta`` and fills at the average price
     ``L^2 / (X (X - Delta))``: below the mark when selling, above when buying.
     Every position closed in the step fills at its market's average price.
[V3] arbitrage: each step, ``log P_m`` moves toward the log index price by the
     factor ``1 - 2^(-step / halflife)``.

The mark is where positions are valued and settled; the curve's state is the
sum of past flows not yet arbitraged away, so two paths with the same net
move but a different order leave the curve, and the fills, in different
places: path dependency.
"""

from __future__ import annotations

import math

import numpy as np

MAX_BUY_FRACTION = 0.9  # a buy never takes more than this share of the base reserve


class Vamm:
    """Virtual reserves of every perp market; all arrays are per market."""

    def __init__(self, prices: np.ndarray, depth_1pct_usd: np.ndarray, halflife_steps: float,
                 ) -> None:
        self.liquidity = 200.0 * np.maximum(depth_1pct_usd, 1e-9) / np.sqrt(prices)
        self.base = self.liquidity / np.sqrt(prices)
        self.arbitrage_decay = math.exp(-math.log(2.0) / max(halflife_steps, 1e-9))

    def mark(self) -> np.ndarray:
        return (self.liquidity / self.base) ** 2

    def arbitrage(self, index: np.ndarray) -> None:
        """[V3] pull the mark toward the index."""
        log_mark = np.log(index) + (np.log(self.mark()) - np.log(index)) * self.arbitrage_decay
        self.base = self.liquidity / np.exp(0.5 * log_mark)

    def execute(self, bought: np.ndarray) -> np.ndarray:
        """[V2] trade ``bought`` base per market (negative = sold) against the
        curve; return the average fill price per market."""
        delta = np.minimum(bought, MAX_BUY_FRACTION * self.base)
        fill = self.liquidity**2 / (self.base * (self.base - delta))
        self.base = self.base - delta
        return fill
