"""Scenario files: what the simulator is asked to replay.

A scenario is a TOML file (read with the standard library's ``tomllib``)
describing the assets and their price path, the gas-price path, the account
population and every engine parameter. ``load_scenario`` accepts the name of
a built-in scenario (``zksolv/engine/scenarios/NAME.toml``) or a path, and
returns a frozen :class:`Scenario`. Every field is checked; a bad file raises
``InputError`` whose message names the file and the dotted field, e.g.::

    crash.toml: population.leverage_median: must be a number > 0, got 'high'

Unknown fields are refused too, so a typo never silently falls back to a
default. The full field reference is ``docs/engine.md``.

Sizes that would otherwise depend on the number of accounts are relative:
the insurance fund is a fraction of initial deposits and order-book depth is a
fraction of the protocol's initial exposure to the asset, so a scenario
behaves the same at 10^3 and at 10^6 accounts.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from zksolv.errors import InputError
from zksolv.safeio import read_bounded

# A scenario is a few kB; a price path of 10^5 points is still well below this.
MAX_SCENARIO_BYTES = 16 << 20
SOCIALISATION_MODES = ("haircut", "adl", "none")
LIQUIDATION_MODES = ("fixed", "auction")
EXECUTION_MODES = ("oracle", "vamm")
MARGIN_MODES = ("cross", "isolated")
SNAPSHOT_HAIRCUTS = ("liquidity", "none")
PRICE_MODELS = ("gbm", "path")


@dataclass(frozen=True)
class AssetSpec:
    """One asset. The quote asset (price 1) is the unit of account; every
    other asset is collateral and, if ``perp``, also a perpetual market."""

    symbol: str
    decimals: int
    price: float
    quote: bool
    volatility: float
    drift: float
    jump_beta: float
    haircut: float
    liquidity_haircut: float
    book_depth: float
    perp: bool
    initial_margin: float
    maintenance_margin: float
    margin_mode: str = "cross"  # "isolated": backs nothing in the cross account


@dataclass(frozen=True)
class Shock:
    """A scheduled move: the listed assets fall by ``drop`` (0.5 = halve)
    spread evenly over ``duration_hours`` from ``start_hour``."""

    start_hour: float
    duration_hours: float
    drop: float
    assets: tuple[str, ...]


@dataclass(frozen=True)
class PriceSpec:
    model: str
    correlation: float
    jump_intensity_per_day: float
    jump_mean: float
    jump_stdev: float
    shocks: tuple[Shock, ...]
    path: tuple[tuple[str, tuple[float, ...]], ...]


@dataclass(frozen=True)
class OracleSpec:
    latency_minutes: float
    heartbeat_minutes: float
    deviation: float


@dataclass(frozen=True)
class GasSpike:
    start_hour: float
    duration_hours: float
    multiplier: float


@dataclass(frozen=True)
class GasSpec:
    base_gwei: float
    volatility: float
    mean_reversion_per_hour: float
    gas_per_liquidation: float
    token: str
    spikes: tuple[GasSpike, ...]


@dataclass(frozen=True)
class PopulationSpec:
    equity_median_usd: float
    equity_sigma: float
    equity_min_usd: float
    equity_max_usd: float
    leverage_median: float
    leverage_sigma: float
    max_leverage: float
    collateral_mix: tuple[tuple[str, float], ...]
    mix_concentration: float
    position_probability: tuple[tuple[str, float], ...]
    long_fraction: tuple[tuple[str, float], ...]
    borrow_probability: float = 0.0
    borrow_ltv_median: float = 0.4
    borrow_ltv_sigma: float = 0.3
    max_utilisation: float = 0.9


@dataclass(frozen=True)
class MarginSpec:
    dynamic: bool
    vol_halflife_hours: float
    max_multiplier: float
    size_weight: float


@dataclass(frozen=True)
class LiquidationSpec:
    partial_fraction: float
    full_below_ratio: float
    penalty: float
    penalty_max: float
    penalty_vol_scaling: float
    liquidator_share: float
    latency_minutes: float
    max_per_step: int
    impact_halflife_hours: float
    mode: str = "fixed"
    execution: str = "oracle"


@dataclass(frozen=True)
class InsuranceSpec:
    initial_fraction: float
    socialisation: str


@dataclass(frozen=True)
class BreakerSpec:
    enabled: bool
    divergence: float


@dataclass(frozen=True)
class AuctionSpec:
    """Descending-price (Dutch) collateral auctions bid on by keepers
    (``liquidation.mode = "auction"``)."""

    start_premium: float
    duration_minutes: float
    reset_below: float
    penalty: float
    keepers: int
    keeper_gas_limit_gwei: float
    keeper_gas_sigma: float
    keeper_discount: float
    keeper_discount_sigma: float


@dataclass(frozen=True)
class VammSpec:
    """A constant-product virtual AMM per perp market
    (``liquidation.execution = "vamm"``)."""

    depth: float
    arbitrage_halflife_hours: float


@dataclass(frozen=True)
class MevSpec:
    """Liquidators bid priority fees for limited block space."""

    enabled: bool
    block_seconds: float
    block_capacity: float
    bid_share: float


@dataclass(frozen=True)
class BridgeSpec:
    """Collateral held on a second chain, counted after a finality delay."""

    enabled: bool
    asset: str
    finality_minutes: float
    share: float
    size: float
    trigger: float


@dataclass(frozen=True)
class PublishedFigure:
    """A published figure the scenario is shaped on, reported beside the
    run's own (``compare`` names a key of the run summary)."""

    what: str
    value: float
    unit: str
    compare: str
    source: str


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    source: str
    seed: int
    accounts: int
    epochs: int
    epoch_minutes: float
    steps_per_epoch: int
    start_timestamp: int
    price_decimals: int
    snapshot_haircuts: str
    assets: tuple[AssetSpec, ...]
    prices: PriceSpec
    oracle: OracleSpec
    gas: GasSpec
    population: PopulationSpec
    margin: MarginSpec
    liquidation: LiquidationSpec
    insurance: InsuranceSpec
    breaker: BreakerSpec
    auction: AuctionSpec = AuctionSpec(1.2, 360.0, 0.0, 0.13, 20, 200.0, 0.5, 0.03, 0.5)
    vamm: VammSpec = VammSpec(0.05, 6.0)
    mev: MevSpec = MevSpec(False, 12.0, 0.001, 0.9)
    bridge: BridgeSpec = BridgeSpec(False, "", 0.0, 0.0, 0.0, 1.5)
    published: tuple[PublishedFigure, ...] = ()

    @property
    def quote_index(self) -> int:
        return next(i for i, a in enumerate(self.assets) if a.quote)

    @property
    def step_minutes(self) -> float:
        return self.epoch_minutes / self.steps_per_epoch


class _Table:
    """A TOML table with the file name and dotted path, for error messages."""

    def __init__(self, data: Any, source: str, path: str) -> None:
        self.source = source
        self.path = path
        if not isinstance(data, dict):
            raise self.error(path, f"must be a table, got {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def error(self, field: str, reason: str) -> InputError:
        return InputError(f"{self.source}: {field or '(top level)'}", reason)

    def _field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        return self.data.get(key, default)

    def number(self, key: str, default: float | None = None, *, lo: float | None = None,
               hi: float | None = None, lo_open: bool = False) -> float:
        self.used.add(key)
        if key not in self.data:
            if default is None:
                raise self.error(self._field(key), "missing (required)")
            return float(default)
        v = self.data[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise self.error(self._field(key), f"must be a number, got {v!r}")
        v = float(v)
        if lo is not None and (v < lo or (lo_open and v == lo)):
            op = ">" if lo_open else ">="
            raise self.error(self._field(key), f"must be a number {op} {lo:g}, got {v:g}")
        if hi is not None and v > hi:
            raise self.error(self._field(key), f"must be a number <= {hi:g}, got {v:g}")
        return v

    def integer(self, key: str, default: int | None = None, *, lo: int = 0,
                hi: int | None = None) -> int:
        self.used.add(key)
        if key not in self.data:
            if default is None:
                raise self.error(self._field(key), "missing (required)")
            return default
        v = self.data[key]
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(self._field(key), f"must be an integer, got {v!r}")
        if v < lo or (hi is not None and v > hi):
            bound = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
            raise self.error(self._field(key), f"must be an integer {bound}, got {v}")
        return v

    def string(self, key: str, default: str | None = None,
               choices: tuple[str, ...] | None = None) -> str:
        self.used.add(key)
        if key not in self.data:
            if default is None:
                raise self.error(self._field(key), "missing (required)")
            return default
        v = self.data[key]
        if not isinstance(v, str):
            raise self.error(self._field(key), f"must be a string, got {v!r}")
        if choices is not None and v not in choices:
            raise self.error(self._field(key), f"must be one of {', '.join(choices)}, got {v!r}")
        return v

    def boolean(self, key: str, default: bool) -> bool:
        self.used.add(key)
        v = self.data.get(key, default)
        if not isinstance(v, bool):
            raise self.error(self._field(key), f"must be true or false, got {v!r}")
        return v

    def table(self, key: str) -> _Table:
        self.used.add(key)
        return _Table(self.data.get(key, {}), self.source, self._field(key))

    def tables(self, key: str) -> list[_Table]:
        self.used.add(key)
        v = self.data.get(key, [])
        if not isinstance(v, list):
            raise self.error(self._field(key), "must be an array of tables ([[...]])")
        return [_Table(t, self.source, f"{self._field(key)}[{i}]") for i, t in enumerate(v)]

    def weights(self, key: str, allowed: tuple[str, ...], *, hi: float | None = None,
                ) -> tuple[tuple[str, float], ...]:
        t = self.table(key)
        out = []
        for sym in t.data:
            if sym not in allowed:
                raise self.error(t._field(sym),
                                 f"unknown asset {sym!r} (allowed: {', '.join(allowed)})")
            out.append((sym, t.number(sym, lo=0.0, hi=hi)))
        return tuple(out)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(self._field(unknown[0]), "unknown field (check the spelling; "
                             "the field reference is docs/engine.md)")


MECHANISM_SCENARIOS = (
    ("auction", "auction-2020-03"),
    ("vamm", "vamm-down-up"),
    ("isolated", "contagion-isolated"),
    ("mev", "mev-congestion"),
    ("bridge", "bridge-finality"),
)
"""Each liquidation mechanism and the built-in scenario that shows its failure."""


def without_mechanism(sc: Scenario, mechanism: str) -> Scenario:
    """The same scenario with one mechanism switched off (for benchmarks)."""
    if mechanism == "auction":
        return replace(sc, liquidation=replace(sc.liquidation, mode="fixed"))
    if mechanism == "vamm":
        return replace(sc, liquidation=replace(sc.liquidation, execution="oracle"))
    if mechanism == "isolated":
        return replace(sc, assets=tuple(replace(a, margin_mode="cross") for a in sc.assets))
    if mechanism == "mev":
        return replace(sc, mev=replace(sc.mev, enabled=False))
    if mechanism == "bridge":
        return replace(sc, bridge=replace(sc.bridge, enabled=False))
    raise ValueError(f"unknown mechanism {mechanism!r}")


def builtin_names() -> tuple[str, ...]:
    root = resources.files("zksolv.engine").joinpath("scenarios")
    return tuple(sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml")))


def resolve_scenario_path(name_or_path: str) -> tuple[str, str]:
    """Return (source label, TOML text) for a built-in name or a file path."""
    if name_or_path in builtin_names():
        res = resources.files("zksolv.engine").joinpath("scenarios", f"{name_or_path}.toml")
        return f"{name_or_path}.toml (built-in)", res.read_text(encoding="utf-8")
    path = Path(name_or_path)
    if not path.exists():
        raise InputError(name_or_path, "no such scenario file, and not a built-in scenario "
                         f"(built-ins: {', '.join(builtin_names())})")
    data, _ = read_bounded(path, MAX_SCENARIO_BYTES, what="scenario file")
    try:
        return str(path), data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not UTF-8 ({exc.reason})") from exc


def load_scenario(name_or_path: str) -> Scenario:
    """Load and validate a scenario (built-in name or TOML file path)."""
    source, text = resolve_scenario_path(name_or_path)
    return parse_scenario(text, source)


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(source, f"invalid TOML: {exc}") from exc
    except RecursionError as exc:
        raise InputError(source, "invalid TOML: nested too deeply") from exc
    except ValueError as exc:  # an integer of thousands of digits
        raise InputError(source, f"invalid TOML: {exc}") from exc
    top = _Table(data, source, "")

    asset_tables = top.tables("assets")
    if not asset_tables:
        raise top.error("assets", "at least one [[assets]] table is required")
    assets: list[AssetSpec] = []
    for t in asset_tables:
        sym = t.string("symbol")
        if not sym or not sym.replace("-", "").replace("_", "").replace(".", "").isalnum() \
                or len(sym) > 16:
            raise t.error(t._field("symbol"), f"bad symbol {sym!r} (1-16 of A-Z a-z 0-9 . _ -)")
        if any(a.symbol == sym for a in assets):
            raise t.error(t._field("symbol"), f"duplicate asset {sym!r}")
        quote = t.boolean("quote", False)
        perp = t.boolean("perp", False)
        if quote and perp:
            raise t.error(t._field("perp"), "the quote asset cannot be a perpetual market")
        imf = t.number("initial_margin", 0.1, lo=0.0, hi=1.0, lo_open=True)
        mmf = t.number("maintenance_margin", 0.05, lo=0.0, hi=1.0, lo_open=True)
        if mmf > imf:
            raise t.error(t._field("maintenance_margin"),
                          f"must not exceed initial_margin ({mmf:g} > {imf:g})")
        assets.append(AssetSpec(
            symbol=sym,
            decimals=t.integer("decimals", lo=0, hi=12),
            price=1.0 if quote else t.number("price", lo=0.0, lo_open=True),
            quote=quote,
            volatility=0.0 if quote else t.number("volatility", 0.5, lo=0.0, hi=10.0),
            drift=0.0 if quote else t.number("drift", 0.0, lo=-10.0, hi=10.0),
            jump_beta=0.0 if quote else t.number("jump_beta", 1.0, lo=0.0, hi=10.0),
            haircut=0.0 if quote else t.number("haircut", 0.1, lo=0.0, hi=1.0),
            liquidity_haircut=0.0 if quote else t.number("liquidity_haircut", 0.0, lo=0.0,
                                                         hi=10.0),
            book_depth=1e9 if quote else t.number("book_depth", 0.05, lo=0.0, lo_open=True),
            perp=perp,
            initial_margin=imf,
            maintenance_margin=mmf,
            margin_mode="cross" if quote else t.string("margin", "cross", MARGIN_MODES),
        ))
        if assets[-1].margin_mode == "isolated" and perp:
            raise t.error(t._field("margin"), "an isolated asset cannot also be a perp market "
                          "(it backs no position; see docs/engine.md)")
        if quote:
            t.raw("price")  # allowed but ignored: the quote asset is worth 1 by definition
        t.finish()
    quotes = [a for a in assets if a.quote]
    if len(quotes) != 1:
        raise top.error("assets", f"exactly one asset must have quote = true, found {len(quotes)}")
    symbols = tuple(a.symbol for a in assets)
    risky = tuple(a.symbol for a in assets if not a.quote)
    perps = tuple(a.symbol for a in assets if a.perp)
    if not perps:
        raise top.error("assets", "at least one asset must have perp = true")

    time = top.table("time")
    epoch_minutes = time.number("epoch_minutes", 60.0, lo=0.0, lo_open=True)
    steps = time.integer("steps_per_epoch", 12, lo=1, hi=1440)
    start = time.integer("start_timestamp", 1_700_000_000, lo=0, hi=(1 << 62))
    time.finish()

    pt = top.table("prices")
    model = pt.string("model", "gbm", PRICE_MODELS)
    shocks = []
    for s in pt.tables("shocks"):
        names = s.raw("assets", list(risky))
        if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
            raise s.error(s._field("assets"), "must be a list of asset symbols")
        for x in names:
            if x not in risky:
                raise s.error(s._field("assets"),
                              f"unknown or quote asset {x!r} (allowed: {', '.join(risky)})")
        shocks.append(Shock(s.number("start_hour", lo=0.0),
                            s.number("duration_hours", lo=0.0, lo_open=True),
                            s.number("drop", lo=-10.0, hi=0.99), tuple(names)))
        s.finish()
    path_items: list[tuple[str, tuple[float, ...]]] = []
    if pt.has("path"):
        path_t = pt.table("path")
        for sym, v in path_t.data.items():
            path_t.used.add(sym)
            if sym not in risky:
                raise pt.error(path_t._field(sym),
                               f"unknown or quote asset {sym!r} (allowed: {', '.join(risky)})")
            if (not isinstance(v, list) or not v or not all(
                    isinstance(x, int | float) and not isinstance(x, bool) and x > 0 for x in v)):
                raise pt.error(path_t._field(sym), "must be a non-empty list of prices > 0")
            path_items.append((sym, tuple(float(x) for x in v)))
    elif model == "path":
        raise pt.error("prices.path", "model = 'path' needs a [prices.path] table")
    prices = PriceSpec(
        model=model,
        correlation=pt.number("correlation", 0.5, lo=-0.99, hi=0.999),
        jump_intensity_per_day=pt.number("jump_intensity_per_day", 0.0, lo=0.0, hi=1000.0),
        jump_mean=pt.number("jump_mean", 0.0, lo=-5.0, hi=5.0),
        jump_stdev=pt.number("jump_stdev", 0.0, lo=0.0, hi=5.0),
        shocks=tuple(shocks),
        path=tuple(path_items),
    )
    pt.finish()

    ot = top.table("oracle")
    oracle = OracleSpec(ot.number("latency_minutes", 0.0, lo=0.0),
                        ot.number("heartbeat_minutes", 60.0, lo=0.0, lo_open=True),
                        ot.number("deviation", 0.005, lo=0.0, hi=1.0))
    ot.finish()

    gt = top.table("gas")
    spikes = []
    for s in gt.tables("spikes"):
        spikes.append(GasSpike(s.number("start_hour", lo=0.0),
                               s.number("duration_hours", lo=0.0, lo_open=True),
                               s.number("multiplier", lo=0.0, lo_open=True)))
        s.finish()
    gas = GasSpec(
        base_gwei=gt.number("base_gwei", 20.0, lo=0.0),
        volatility=gt.number("volatility", 0.5, lo=0.0, hi=100.0),
        mean_reversion_per_hour=gt.number("mean_reversion_per_hour", 0.5, lo=0.0),
        gas_per_liquidation=gt.number("gas_per_liquidation", 500_000.0, lo=0.0),
        token=gt.string("token", risky[0] if risky else symbols[0], symbols),
        spikes=tuple(spikes),
    )
    gt.finish()

    pop = top.table("population")
    population = PopulationSpec(
        equity_median_usd=pop.number("equity_median_usd", 10_000.0, lo=0.0, lo_open=True),
        equity_sigma=pop.number("equity_sigma", 1.0, lo=0.0, hi=5.0),
        equity_min_usd=pop.number("equity_min_usd", 100.0, lo=0.0, lo_open=True),
        equity_max_usd=pop.number("equity_max_usd", 10_000_000.0, lo=0.0, lo_open=True),
        leverage_median=pop.number("leverage_median", 3.0, lo=0.0, lo_open=True),
        leverage_sigma=pop.number("leverage_sigma", 0.5, lo=0.0, hi=5.0),
        max_leverage=pop.number("max_leverage", 10.0, lo=0.0, lo_open=True),
        collateral_mix=pop.weights("collateral_mix", symbols),
        mix_concentration=pop.number("mix_concentration", 2.0, lo=0.0, lo_open=True),
        position_probability=pop.weights("position_probability", perps, hi=1.0),
        long_fraction=pop.weights("long_fraction", perps, hi=1.0),
        borrow_probability=pop.number("borrow_probability", 0.0, lo=0.0, hi=1.0),
        borrow_ltv_median=pop.number("borrow_ltv_median", 0.4, lo=0.0, hi=1.0, lo_open=True),
        borrow_ltv_sigma=pop.number("borrow_ltv_sigma", 0.3, lo=0.0, hi=5.0),
        max_utilisation=pop.number("max_utilisation", 0.9, lo=0.0, hi=1.0),
    )
    if population.equity_min_usd > population.equity_max_usd:
        raise pop.error("population.equity_min_usd", "must not exceed equity_max_usd")
    if not population.collateral_mix or sum(w for _, w in population.collateral_mix) <= 0:
        raise pop.error("population.collateral_mix", "needs at least one asset with weight > 0")
    pop.finish()

    mt = top.table("margin")
    margin = MarginSpec(mt.boolean("dynamic", False),
                        mt.number("vol_halflife_hours", 24.0, lo=0.0, lo_open=True),
                        mt.number("max_multiplier", 3.0, lo=1.0),
                        mt.number("size_weight", 0.0, lo=0.0, hi=100.0))
    mt.finish()

    lt = top.table("liquidation")
    liquidation = LiquidationSpec(
        partial_fraction=lt.number("partial_fraction", 0.25, lo=0.0, hi=1.0, lo_open=True),
        full_below_ratio=lt.number("full_below_ratio", 0.5, lo=0.0, hi=1.0),
        penalty=lt.number("penalty", 0.01, lo=0.0, hi=0.5),
        penalty_max=lt.number("penalty_max", 0.05, lo=0.0, hi=0.5),
        penalty_vol_scaling=lt.number("penalty_vol_scaling", 0.0, lo=0.0, hi=100.0),
        liquidator_share=lt.number("liquidator_share", 0.5, lo=0.0, hi=1.0),
        latency_minutes=lt.number("latency_minutes", 0.0, lo=0.0),
        max_per_step=lt.integer("max_per_step", 0, lo=0),
        impact_halflife_hours=lt.number("impact_halflife_hours", 6.0, lo=0.0, lo_open=True),
        mode=lt.string("mode", "fixed", LIQUIDATION_MODES),
        execution=lt.string("execution", "oracle", EXECUTION_MODES),
    )
    if liquidation.penalty_max < liquidation.penalty:
        raise lt.error("liquidation.penalty_max", "must be >= liquidation.penalty")
    lt.finish()

    it = top.table("insurance")
    insurance = InsuranceSpec(it.number("initial_fraction", 0.02, lo=0.0, hi=10.0),
                              it.string("socialisation", "haircut", SOCIALISATION_MODES))
    it.finish()

    bt = top.table("circuit_breaker")
    breaker = BreakerSpec(bt.boolean("enabled", False),
                          bt.number("divergence", 0.1, lo=0.0, lo_open=True))
    bt.finish()

    at = top.table("auction")
    auction = AuctionSpec(
        start_premium=at.number("start_premium", 1.2, lo=0.0, hi=10.0, lo_open=True),
        duration_minutes=at.number("duration_minutes", 360.0, lo=0.0, lo_open=True),
        reset_below=at.number("reset_below", 0.0, lo=0.0, hi=1.0),
        penalty=at.number("penalty", 0.13, lo=0.0, hi=1.0),
        keepers=at.integer("keepers", 20, lo=0, hi=10_000),
        keeper_gas_limit_gwei=at.number("keeper_gas_limit_gwei", 200.0, lo=0.0, lo_open=True),
        keeper_gas_sigma=at.number("keeper_gas_sigma", 0.5, lo=0.0, hi=5.0),
        keeper_discount=at.number("keeper_discount", 0.03, lo=0.0, hi=1.0),
        keeper_discount_sigma=at.number("keeper_discount_sigma", 0.5, lo=0.0, hi=5.0),
    )
    at.finish()

    vt = top.table("vamm")
    vamm = VammSpec(depth=vt.number("depth", 0.05, lo=0.0, lo_open=True),
                    arbitrage_halflife_hours=vt.number("arbitrage_halflife_hours", 6.0,
                                                       lo=0.0, lo_open=True))
    vt.finish()

    et = top.table("mev")
    mev = MevSpec(enabled=et.boolean("enabled", False),
                  block_seconds=et.number("block_seconds", 12.0, lo=0.0, lo_open=True),
                  block_capacity=et.number("block_capacity", 0.001, lo=0.0, hi=1.0,
                                           lo_open=True),
                  bid_share=et.number("bid_share", 0.9, lo=0.0, hi=1.0))
    et.finish()

    bgt = top.table("bridge")
    bridge = BridgeSpec(
        enabled=bgt.boolean("enabled", False),
        asset=bgt.string("asset", risky[0] if risky else symbols[0], risky or symbols),
        finality_minutes=bgt.number("finality_minutes", 0.0, lo=0.0),
        share=bgt.number("share", 0.0, lo=0.0, hi=1.0),
        size=bgt.number("size", 0.5, lo=0.0, hi=100.0),
        trigger=bgt.number("trigger", 1.5, lo=1.0, hi=100.0),
    )
    if bridge.enabled and any(a.symbol == bridge.asset and a.margin_mode == "isolated"
                              for a in assets):
        raise bgt.error("bridge.asset", f"{bridge.asset!r} is isolated: a top-up of it would "
                        "back nothing in the cross account")
    bgt.finish()

    published = []
    for ft in top.tables("published"):
        published.append(PublishedFigure(
            what=ft.string("what"), value=ft.number("value"), unit=ft.string("unit", ""),
            compare=ft.string("compare", ""), source=ft.string("source")))
        ft.finish()

    scenario = Scenario(
        name=top.string("name"),
        description=top.string("description", ""),
        source=source,
        seed=top.integer("seed", 0, lo=0, hi=(1 << 63) - 1),
        accounts=top.integer("accounts", 10_000, lo=1, hi=10_000_000),
        epochs=top.integer("epochs", 48, lo=1, hi=100_000),
        epoch_minutes=epoch_minutes,
        steps_per_epoch=steps,
        start_timestamp=start,
        price_decimals=top.integer("price_decimals", 8, lo=0, hi=18),
        snapshot_haircuts=top.string("snapshot_haircuts", "none", SNAPSHOT_HAIRCUTS),
        assets=tuple(assets),
        prices=prices,
        oracle=oracle,
        gas=gas,
        population=population,
        margin=margin,
        liquidation=liquidation,
        insurance=insurance,
        breaker=breaker,
        auction=auction,
        vamm=vamm,
        mev=mev,
        bridge=bridge,
        published=tuple(published),
    )
    top.finish()
    return scenario
