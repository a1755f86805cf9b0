"""The collector paused for a bulk job, and as it was afterwards whatever happened."""

from __future__ import annotations

import gc

import pytest

from nonsite.collector import paused


def test_no_pass_runs_while_paused_and_the_collector_is_back_after() -> None:
    assert gc.isenabled()
    passes: list[str] = []

    def count(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(phase)

    gc.callbacks.append(count)
    try:
        with paused():
            assert not gc.isenabled()
            kept = [[i] for i in range(200_000)]  # enough allocations for many passes
            during = list(passes)
        assert during == []
        assert gc.isenabled()
        del kept
    finally:
        gc.callbacks.remove(count)


def test_an_error_inside_still_brings_the_collector_back() -> None:
    with pytest.raises(RuntimeError), paused():
        raise RuntimeError("the job failed")
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    try:
        with paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
