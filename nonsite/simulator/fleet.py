"""The demo's fleet: about two hundred enterprises of the kinds the rules know, as a
configuration (the same shape a TOML file gives), generated from a seed.

  coal power plants with CEMS (ultra-low emission), industrial boilers, one MSW incinerator,
  municipal wastewater plants, and small power-metered factories (a production line and the
  dust collector or scrubber that serves it).
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

# What a flue-gas CEMS reports: the pollutants, and O2, temperature, pressure, humidity and
# flow (the converted concentration needs O2; the rules need the flow to know it produces).
GAS = ["a34013", "a21026", "a21002", "a19001", "a01012", "a01013", "a01014", "a00000"]
INCINERATOR = [*GAS, "a21024", "a21005", "a01901"]
WATER = ["w01018", "w21003", "w21011", "w21001", "w01001", "w00000"]
REGIONS = ("滨江区", "城东区", "城西区", "高新区", "经开区")
SURNAMES = (
    "华能",
    "国电",
    "江南",
    "绿源",
    "华美",
    "佳木",
    "宏达",
    "新安",
    "恒通",
    "金山",
    "瑞丰",
    "永利",
)


def _pw(mn: str) -> str:
    """Each simulated logger its own PW (the PW check is on), the same on every run."""
    return hashlib.sha256(f"nonsite-sim:{mn}".encode()).hexdigest()[:8]


def _mn(i: int, j: int) -> str:
    """A 24-character MN, unique per enterprise and outlet."""
    return f"3301{i:04d}{j:02d}A8900000000000"


def demo_fleet(n: int = 200, *, seed: int = 212) -> dict[str, Any]:
    """Enterprises and brigades for a configuration dict (``parse_config`` validates it)."""
    rng = random.Random(seed)
    brigades = [
        {"id": f"B{k + 1:02d}", "name": f"{region}生态环境执法大队"}
        for k, region in enumerate(REGIONS)
    ]
    enterprises: list[dict[str, Any]] = []
    kinds = (
        ["power"] * (n // 10)
        + ["boiler"] * (n // 5)
        + ["incinerator"]
        + ["wastewater"] * (n * 3 // 20)
    )
    kinds += ["factory"] * (n - len(kinds))
    for i, kind in enumerate(kinds):
        region = REGIONS[i % len(REGIONS)]
        ent_id = f"E{i + 1:03d}"
        name = f"{rng.choice(SURNAMES)}{_KIND_NAMES[kind]}{i + 1:03d}"
        e: dict[str, Any] = {
            "id": ent_id,
            "name": name,
            "region": region,
            "industry": _INDUSTRY[kind],
            "brigade": brigades[i % len(REGIONS)]["id"],
            "positive_list": i % 7 == 0,
            # 重点监管: power plants, the incinerator and wastewater plants; 特殊: every tenth
            "supervision_class": (
                "key"
                if kind in ("power", "incinerator", "wastewater")
                else "special"
                if i % 10 == 3
                else "general"
            ),
            "size": "large" if kind in ("power", "incinerator") else "medium",
            "outlets": [],
            "meters": [],
        }
        if kind == "power":
            e["outlets"] = [
                {
                    "id": f"DA{k:03d}",
                    "name": f"{k}号机组",
                    "kind": "gas",
                    "mn": _mn(i, k),
                    "preset": "thermal_power_coal_boiler",
                    "factors": GAS,
                }
                for k in (1, 2)
            ]
        elif kind == "boiler":
            e["outlets"] = [
                {
                    "id": "DA001",
                    "name": "锅炉房排口",
                    "kind": "gas",
                    "mn": _mn(i, 1),
                    "preset": "industrial_boiler_coal",
                    "factors": GAS,
                }
            ]
        elif kind == "incinerator":
            e["outlets"] = [
                {
                    "id": "DA001",
                    "name": "1号焚烧线",
                    "kind": "gas",
                    "mn": _mn(i, 1),
                    "preset": "msw_incineration",
                    "factors": INCINERATOR,
                }
            ]
        elif kind == "wastewater":
            e["outlets"] = [
                {
                    "id": "DW001",
                    "name": "总排口",
                    "kind": "water",
                    "mn": _mn(i, 1),
                    "preset": "municipal_wwtp_1A",
                    "factors": WATER,
                }
            ]
        else:
            e["meters"] = [
                {"id": f"{ent_id}-P1", "name": "生产线", "role": "production", "rated_kw": 200.0},
                {
                    "id": f"{ent_id}-K1",
                    "name": "除尘器",
                    "role": "control",
                    "rated_kw": 45.0,
                    "serves": [f"{ent_id}-P1"],
                },
            ]
        for outlet in e["outlets"]:
            outlet["pw"] = _pw(outlet["mn"])
        enterprises.append(e)
    return {"brigades": brigades, "enterprises": enterprises}


_KIND_NAMES = {
    "power": "热电",
    "boiler": "热力",
    "incinerator": "生活垃圾焚烧发电厂",
    "wastewater": "污水处理厂",
    "factory": "制造",
}
_INDUSTRY = {
    "power": "thermal_power",
    "boiler": "heating",
    "incinerator": "msw_incineration",
    "wastewater": "municipal_wastewater",
    "factory": "manufacturing",
}
