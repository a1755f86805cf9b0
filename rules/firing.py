"""Fire and clear: when a rule's findings fire and clear, for every rule family.

A finding fires (its condition holds) or clears (it held and has stopped: the clear names the
condition it ends). Every rule keeps one of two kinds of condition, or none:

- **Level** (``Level``): a condition judged window by window (an hour, a day, a month). It
  fires in *every* judged window in which it holds, and clears *once*, in the first judged
  window in which it no longer does; a window that cannot be judged changes nothing (the rule
  does not ask). The held value is what the clear names: the tier and limit for the outlet
  judge. Used by the outlet judge's rules, A1D to A8 and B1 to B11 (``rules.judge``), the
  production link's B8-6, C8-2 and A7-2 (``rules.linkage``), C7 per natural day
  (``rules.power_judge``: the held value is the day the run began, stated as ``since``) and
  B7 on hour packets (``rules.absence``).
- **Episode** (``Episode``): an ongoing condition in continuous time. It fires *once* when it
  starts to hold and clears *once* when it ends; both name when it began. Used by C1, C4, C5
  and C6 (``rules.power_judge``) and B8 and C8, offline (``rules.absence``).
- **Event**: one occurrence, nothing that holds: it fires once and never clears, and keeps no
  state here. A7 (a marking's length), C2, C3, B8-8 across outlets (``rules.copies``) and B7's
  不完整 on hour packets.

The state is a dict of the conditions that hold now, in a slotted class: small, and picklable
for the engine's snapshot (``rules.snapshot_codec``).
"""

from __future__ import annotations

from collections.abc import Container
from typing import Generic, TypeVar

from rules.findings import State

K = TypeVar("K")  # what a condition is kept by: (rule, factor), (rule, source), ...
C = TypeVar("C")  # what a held level condition is remembered as


class Level(Generic[K, C]):
    """Conditions judged window by window: fire while one holds, clear once when it stops."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[K, C] = {}

    def judge(self, key: K, condition: C | None) -> tuple[State, C] | None:
        """One judged window: ``condition`` is what holds in it, None when nothing does.
        ("fire", it) while it holds; ("clear", what held) in the first window it does not;
        None when nothing holds nor ends."""
        if condition is not None:
            self._held[key] = condition
            return "fire", condition
        held = self._held.pop(key, None)
        return None if held is None else ("clear", held)

    def get(self, key: K, default: C) -> C:
        """What holds for ``key``, or ``default`` when nothing does."""
        return self._held.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._held

    def retain(self, keys: Container[K]) -> None:
        """Forget the conditions of sources no longer judged."""
        self._held = {k: v for k, v in self._held.items() if k in keys}


class Episode(Generic[K]):
    """Ongoing conditions: fire once when one starts to hold, clear once when it ends."""

    __slots__ = ("_since",)

    def __init__(self) -> None:
        self._since: dict[K, int] = {}  # key → when the episode began

    def judge(self, key: K, holds: bool, start: int) -> tuple[State, int] | None:
        """The condition judged now (begun at ``start`` when it holds): ("fire", start) when
        it starts, ("clear", when it began) when it ends, else None."""
        if holds:
            return ("fire", start) if self.begin(key, start) else None
        since = self.end(key)
        return None if since is None else ("clear", since)

    def begin(self, key: K, start: int) -> bool:
        """The condition holds, since ``start``: True when the episode begins (fire)."""
        if key in self._since:
            return False
        self._since[key] = start
        return True

    def end(self, key: K) -> int | None:
        """The condition stopped: when the episode that ends began (clear), None if none was
        open."""
        return self._since.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._since

    def retain(self, keys: Container[K]) -> None:
        """Forget the episodes of sources no longer judged."""
        self._since = {k: v for k, v in self._since.items() if k in keys}
