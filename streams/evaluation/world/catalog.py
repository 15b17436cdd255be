"""What a random world may contain: sensor metrics, commodities, complaint categories, texts,
calendar. Only names, units, categories, channels and market kinds that the ingest accepts
(``streams/schemas.py``, the packaged signal catalogue ``streams/data/signals.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from streams.core.signals import packaged
from streams.core.units import PRICE_UNITS

#: the city's local time (event times on the wire are UTC or carry an offset)
UTC_OFFSET_H = 8.0


@dataclass(frozen=True)
class MetricSpec:
    """One sensor metric's normal behaviour (canonical unit, as in ``streams.core.units``)."""

    base: tuple[float, float]  # typical level range (drawn per channel)
    noise: tuple[float, float]  # relative (mult) or absolute (add) measurement noise
    drift: float  # stationary sd of the slow AR(1) drift (log for mult, absolute for add)
    additive: bool = False  # effects add (pH, dB, metres) instead of multiplying
    diurnal: str = "flat"  # rush | afternoon | night_low | flat


METRICS: dict[str, MetricSpec] = {
    "pm25": MetricSpec((18.0, 70.0), (0.08, 0.18), 0.25, diurnal="rush"),
    "pm10": MetricSpec((35.0, 110.0), (0.08, 0.18), 0.25, diurnal="rush"),
    "no2": MetricSpec((18.0, 55.0), (0.08, 0.15), 0.2, diurnal="rush"),
    "so2": MetricSpec((4.0, 18.0), (0.10, 0.20), 0.25),
    "o3": MetricSpec((35.0, 95.0), (0.06, 0.12), 0.2, diurnal="afternoon"),
    "water_cod": MetricSpec((10.0, 25.0), (0.04, 0.10), 0.12),
    "water_nh3n": MetricSpec((0.3, 1.2), (0.05, 0.12), 0.15),
    "water_ph": MetricSpec((7.0, 8.2), (0.02, 0.06), 0.08, additive=True),
    "noise_db": MetricSpec((46.0, 62.0), (1.0, 2.5), 1.5, additive=True, diurnal="night_low"),
    "water_level_m": MetricSpec((1.0, 4.5), (0.005, 0.03), 0.08, additive=True),
}

#: station type -> metrics it measures (a station measures a drawn non-empty subset)
STATION_TYPES: dict[str, tuple[str, ...]] = {
    "air": ("pm25", "pm10", "no2", "so2", "o3"),
    "pm_micro": ("pm25", "pm10"),
    "water": ("water_cod", "water_nh3n", "water_ph"),
    "noise": ("noise_db",),
    "gauge": ("water_level_m",),
}

#: cadences a station may report at, seconds (1 min to 1 h)
CADENCES = (60, 120, 300, 600, 900, 1800, 3600)


def sensor_units(metric: str) -> dict[str, float]:
    """Accepted units of ``metric`` -> factor to its canonical unit (the packaged signal
    catalogue's, which the ingest reads by default)."""
    return dict(packaged().metrics[metric].accepted)


@dataclass(frozen=True)
class Commodity:
    price: tuple[float, float]  # canonical price range (drawn per world)
    units: tuple[tuple[str, float], ...]  # (accepted price unit, weight)
    volatility: float  # day-to-day log sd of the city index


_KG = (("CNY/kg", 0.5), ("CNY/jin", 0.35), ("CNY/500g", 0.15))
COMMODITIES: dict[str, Commodity] = {
    "pork": Commodity((22.0, 32.0), _KG, 0.015),
    "beef": Commodity((60.0, 88.0), _KG, 0.008),
    "eggs": Commodity((9.0, 13.0), _KG, 0.012),
    "rice": Commodity((5.0, 8.0), _KG, 0.004),
    "cabbage": Commodity((2.0, 5.0), _KG, 0.03),
    "apples": Commodity((8.0, 14.0), _KG, 0.01),
    "cooking_oil": Commodity((12.0, 20.0), (("CNY/L", 1.0),), 0.005),
    "milk": Commodity((10.0, 16.0), (("CNY/L", 1.0),), 0.005),
    "bottled_water": Commodity((1.5, 3.0), (("CNY/item", 0.8), ("CNY/dozen", 0.2)), 0.003),
    "face_masks": Commodity((0.5, 2.0), (("CNY/item", 1.0),), 0.01),
    "cold_medicine": Commodity((15.0, 30.0), (("CNY/item", 1.0),), 0.004),
}

#: shop kind -> commodities it may sell
SHOP_GOODS: dict[str, tuple[str, ...]] = {
    "wet_market": ("pork", "beef", "eggs", "cabbage", "apples", "rice"),
    "supermarket": ("pork", "eggs", "rice", "cabbage", "apples", "cooking_oil", "milk",
                    "bottled_water"),
    "convenience": ("eggs", "milk", "bottled_water"),
    "pharmacy": ("face_masks", "cold_medicine"),
}


def price_factor(unit: str) -> float:
    """Factor from ``unit`` to its canonical price unit (the ingest's table)."""
    return PRICE_UNITS[unit][1]


#: complaint category -> (share of the background, extra share at night)
CATEGORIES: dict[str, tuple[float, float]] = {
    "noise": (0.22, 0.45), "sanitation": (0.14, 0.0), "traffic": (0.10, 0.0),
    "odor": (0.07, 0.02), "water_quality": (0.05, 0.0), "air_quality": (0.04, 0.0),
    "food_safety": (0.07, 0.0), "illness": (0.03, 0.01), "price": (0.08, 0.0),
    "product_quality": (0.07, 0.0), "flooding": (0.02, 0.0), "other": (0.11, 0.02),
}
CHANNELS = ("hotline", "app", "web", "wechat")

TEXTS: dict[str, tuple[str, ...]] = {
    "noise": ("{place}附近夜间噪音很大，无法入睡。", "Loud music from a bar near {place}.",
              "{place}工地一直在施工，太吵了。"),
    "sanitation": ("{place}垃圾堆了好几天没人清理。", "Overflowing bins at {place}."),
    "traffic": ("{place}路口信号灯坏了。", "Cars parked on the pavement at {place}."),
    "odor": ("{place}有很刺鼻的气味，联系电话{phone}。", "Chemical smell near {place}.",
             "{place}河边臭味很重。"),
    "water_quality": ("{place}自来水发黄有异味。", "The river at {place} changed colour."),
    "air_quality": ("{place}空气很差，灰蒙蒙的。", "Smoke and dust in the air at {place}."),
    "food_safety": ("在{place}买的肉变质了。", "Restaurant at {place} is filthy, mail {email}."),
    "illness": ("家里几个人吃完饭后上吐下泻，住在{place}。",
                "Kids coughing and rashes since yesterday at {place}, ID {idno}."),
    "price": ("{place}的{goods}一夜涨价一倍！", "Shop at {place} overcharging for {goods}."),
    "product_quality": ("在{place}买的充电器冒烟了。", "Toy bought at {place} broke into "
                        "sharp pieces."),
    "flooding": ("{place}路面积水很深，车都熄火了。", "Water coming into basements at {place}."),
    "other": ("{place}的路灯不亮。", "Question about permits, call me on {phone}."),
}
PLACES = ("人民路", "菜市场", "学校门口", "河滨路", "Station Square", "Block 9", "新村",
          "Lotus Lane", "幸福小区", "东门")

#: Chinese public holidays (local dates) in the years worlds are drawn from
_HOLIDAY_BLOCKS: tuple[tuple[date, int], ...] = (
    (date(2024, 1, 1), 1), (date(2024, 2, 10), 8), (date(2024, 4, 4), 3),
    (date(2024, 5, 1), 5), (date(2024, 6, 10), 1), (date(2024, 9, 15), 3),
    (date(2024, 10, 1), 7), (date(2025, 1, 1), 1), (date(2025, 1, 28), 8),
    (date(2025, 4, 4), 3), (date(2025, 5, 1), 5), (date(2025, 5, 31), 3),
    (date(2025, 10, 1), 8),
)
HOLIDAY_STARTS = tuple(d for d, _ in _HOLIDAY_BLOCKS)
HOLIDAYS: frozenset[date] = frozenset(
    d + timedelta(days=i) for d, n in _HOLIDAY_BLOCKS for i in range(n))
FIRST_DAY, LAST_DAY = date(2024, 1, 8), date(2025, 11, 1)

DEPARTMENTS: dict[str, tuple[str, ...]] = {
    "env": ("ecology_bureau", "ecology_environment", "eeb.monitoring", "env-protection"),
    "complaint": ("citizen_hotline", "citizen_service_12345", "hotline.12345", "xinfang"),
    "market": ("market_regulation", "amr", "samr.district", "market-supervision"),
}
