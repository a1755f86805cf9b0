"""Python's cyclic garbage collector, paced for a live stream.

The collector's full pass (generation 2) visits every object it tracks. Under live traffic at
7,500 msg/s it ran about five times a minute in each of the service's two processes and
paused each for 60-110 ms (measured with ``gc.callbacks``); a message arriving then waited,
and those waits were the latency's p99. What start-up built (modules, the configuration, the
web app, the rule engine as restored) is most of what a pass visits and never garbage: once
start-up is done it goes to the permanent generation (:func:`gc.freeze`, the remedy the
``gc`` module documents), which no pass visits. Objects are still freed by reference counting
as soon as they are unreachable; the passes still run, over what was made since.

A larger threshold for the youngest generation was tried too and left out: the receiving
process then collected 50,000 objects at a time, each pass a pause of 15-65 ms.

A bulk job is the other way round: ``nonsite replay`` builds millions of small records (an
hour's aggregates, findings) that hold no cycles and live until the job ends, and every pass
visits the growing heap again: a month of 200 outlets spent 4.1 of its 15 s in the collector
(measured against the same run without it). It runs with the passes paused (``paused``), and
so does a long answer: 31 days of an outlet's minute readings are tens of thousands of points
(a year of its hour values, when it still made a Python dict of each, spent half of building
them in the passes: 190 → 106 ms).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from prometheus_client import CollectorRegistry, Gauge


def pace_for_live_stream() -> None:
    """Call once start-up is done, in each long-running process."""
    gc.collect()  # what start-up left as garbage is not frozen with the rest
    gc.freeze()


@contextmanager
def paused() -> Iterator[None]:
    """No collector pass while a bulk job runs (reference counting still frees as usual);
    the collector as it was afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def expose_frozen(registry: CollectorRegistry, process: Literal["service", "pipeline"]) -> None:
    """A gauge of what no collector pass visits (0 until start-up is done). Each process
    has its own name: the service's /metrics serves the pipeline process's families beside
    its own, and a family twice is an error to Prometheus."""
    what = "Objects moved out of the cyclic collector's passes after start-up"
    if process == "service":
        gauge = Gauge("nonsite_heap_frozen_objects", what, registry=registry)
    else:
        gauge = Gauge("nonsite_pipeline_heap_frozen_objects", what, registry=registry)
    gauge.set_function(gc.get_freeze_count)


__all__ = ["expose_frozen", "pace_for_live_stream", "paused"]
