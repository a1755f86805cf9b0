"""B8-8 across outlets: two outlets of one enterprise reporting the same series (copied data).

Each closed outlet-hour hands in the signatures of its factors' series (the same count of
valid records, sum, minimum and maximum, a varying series: ``OutletJudge.hour_signatures``).
An hour's signatures are compared once every outlet of the enterprise has closed that hour
or a later one, or once another outlet is two days further on (an outlet that sends nothing
must not hold the comparison forever); then every factor whose series another outlet also
reported is a finding, naming all the others. Judging the hour only when it is complete makes
the findings the same whichever outlet closes its hours first: the streaming engine closes
them as their data arrive, the batch engine outlet by outlet. (They differ only for an outlet
more than two days behind its neighbours, whose hour the stream compared without it.)

The rule fires once per hour and series (an event, like C2): there is no condition that holds
over hours, so nothing clears.
"""

from __future__ import annotations

from collections.abc import Mapping

from rules.findings import Finding
from rules.params import OutletParams
from rules.timebase import HOUR

Signature = tuple[int, int, int | None, int | None]
WAIT_S = 2 * 86400  # how far ahead another outlet may be before an hour is compared anyway


class CopyWatch:
    """One enterprise's outlet-hours waiting to be compared."""

    def __init__(self, outlets: Mapping[str, OutletParams]) -> None:
        self.outlets = dict(outlets)
        # hour → signature → [(outlet, factor)]
        self._hours: dict[int, dict[Signature, list[tuple[str, str]]]] = {}
        self._closed: dict[str, int] = {}  # outlet → the last hour it closed

    def reconfigure(self, outlets: Mapping[str, OutletParams]) -> None:
        self.outlets = dict(outlets)
        self._closed = {o: h for o, h in self._closed.items() if o in self.outlets}

    def outlet_hour(
        self,
        outlet: str,
        hour: int,
        signatures: tuple[tuple[str, Signature], ...],
        *,
        wait: bool = True,
    ) -> list[Finding]:
        """The outlet closed ``hour`` with these factor signatures; the hours now complete,
        compared (with ``wait`` False nothing is compared yet: the batch engine compares at
        the end)."""
        self._closed[outlet] = max(hour, self._closed.get(outlet, hour))
        if signatures:
            table = self._hours.setdefault(hour, {})
            for factor, signature in signatures:
                table.setdefault(signature, []).append((outlet, factor))
        return self.compare(final=False) if wait else []

    def compare(self, *, final: bool) -> list[Finding]:
        """Compare the complete hours (every hour with ``final``)."""
        out: list[Finding] = []
        if not self._hours:
            return out
        ahead = max(self._closed.values(), default=-(2**62))
        slowest = min((self._closed.get(o, -(2**62)) for o in self.outlets), default=ahead)
        for hour in sorted(self._hours):
            if not final and hour > slowest and hour + WAIT_S > ahead:
                break
            for members in self._hours.pop(hour).values():
                if len({o for o, _ in members}) > 1:
                    out += self._findings(hour, members)
        return out

    def _findings(self, hour: int, members: list[tuple[str, str]]) -> list[Finding]:
        """A finding for each outlet in the group, on its first factor in it (two factors of
        one outlet alike are the outlet judge's B8-8 already)."""
        out: list[Finding] = []
        first: dict[str, str] = {}
        for outlet, factor in sorted(members):
            first.setdefault(outlet, factor)
        for outlet, factor in sorted(first.items()):
            p = self.outlets.get(outlet)
            if p is None:
                continue
            others = [f"{o}/{f}" for o, f in sorted(members) if o != outlet]
            out.append(
                Finding(
                    rule="B8-8",
                    state="fire",
                    enterprise_id=p.enterprise_id,
                    source_id=outlet,
                    factor=factor,
                    window_start=hour,
                    window_end=hour + HOUR,
                    tier="warning",
                    value=None,
                    limit=None,
                    unit="",
                    params_id=p.params_id,
                    params_version=p.version,
                    evidence={"same_as": others, "across": "outlets"},
                )
            )
        return out


def copy_watches(params: Mapping[tuple[str, str], OutletParams]) -> dict[str, CopyWatch]:
    """A watch per enterprise with more than one outlet."""
    by_enterprise: dict[str, dict[str, OutletParams]] = {}
    for (enterprise, outlet), p in params.items():
        by_enterprise.setdefault(enterprise, {})[outlet] = p
    return {e: CopyWatch(o) for e, o in by_enterprise.items() if len(o) > 1}
