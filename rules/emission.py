"""Emission amounts (排放量): the one home of the mass formula (HJ 212 附录D, HJ 75).

An hour's amount is its concentration times the volume that left in it. Flue gas: mg/m³ ×
m³/s (the standard-state flow a00000); wastewater: mg/L × L/s (w00000): both give
C × Q × 3600 s × 10⁻⁶ kg/mg = 0.0036 × C × Q kg. A flow reported per hour (m³/h) is taken
as it is. The amount uses the *measured* concentration: the converted one (折算) is what the
limit is stated in, not what left the stack. The part above the limit is the amount times
(judged − limit) / judged, the converted excess carried back to the measured basis.
"""

from __future__ import annotations

# Flow units (as configured or from the HJ 212 code table) → m³ (or L) per hour, per unit.
_PER_HOUR = {"m³/s": 3600.0, "m3/s": 3600.0, "L/s": 3600.0, "l/s": 3600.0, "m³/h": 1.0, "m3/h": 1.0}
# Volume units per concentration unit that make mg: mg/m³ with m³, mg/L with L.
_MATCH = {"mg/m³": ("m³", "m3"), "mg/m3": ("m³", "m3"), "mg/L": ("L", "l"), "mg/l": ("L", "l")}


def hour_amount_kg(conc: float, conc_unit: str, flow: float, flow_unit: str) -> float | None:
    """kg emitted in an hour at ``conc`` and ``flow`` (None: units that do not combine)."""
    per_hour = _PER_HOUR.get(flow_unit)
    volumes = _MATCH.get(conc_unit)
    if per_hour is None or volumes is None or not flow_unit.startswith(volumes):
        return None
    return conc * flow * per_hour * 1e-6


def excess_kg(amount_kg: float, judged: float, limit: float) -> float:
    """The part of ``amount_kg`` above ``limit`` (0 when the judged value is not above it)."""
    if judged <= limit or judged <= 0:
        return 0.0
    return amount_kg * (judged - limit) / judged
