"""The rule engine's state as bytes, and back: a pickle, streamed through zlib.

Two things keep a snapshot of a large fleet from doubling the pipeline's memory for the
seconds it takes (measured with 100,000 outlet×factor keys: +250 MiB over a 434 MiB state):

- The parameters (limits, thresholds, meters, markings: about 440,000 small objects there)
  are not stored. They are rebuilt from the configuration on every restore anyway
  (``StreamEngine.reconfigure``), and the pickler keeps every object it wrote, and each
  temporary it made to write one, alive until it is done: they were most of the peak.
  They are written as a persistent reference and read back as None, which the restore's
  ``reconfigure`` replaces before the engine is used.
- The pickle goes through zlib as it is written, so the uncompressed bytes never exist as
  one buffer (66 MiB there; the database driver copies what it is given once more).

A snapshot written before this codec is a bare pickle (it starts with the PROTO opcode,
0x80; a zlib stream with 0x78) and is still read.
"""

from __future__ import annotations

import io
import pickle
import zlib
from typing import Any

from rules.markings import Marking, MarkingBook, MarkingCap
from rules.params import FactorParams, OutletParams, Thresholds
from rules.power_params import EnterprisePowerParams, MeterParams, Order

# Everything here is derived from the configuration; see the module docstring.
PARAMETER_TYPES = (
    OutletParams,
    FactorParams,
    Thresholds,
    EnterprisePowerParams,
    MeterParams,
    Order,
    MarkingBook,
    Marking,
    MarkingCap,
)
_PARAMETER = "parameter"


class _Compressing:
    """A write-only file that compresses what the pickler writes, frame by frame."""

    def __init__(self) -> None:
        self._zlib = zlib.compressobj(1)  # level 1: a fifth of the size, at pickling speed
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(self._zlib.compress(data))
        return len(data)

    def finish(self) -> bytes:
        self.parts.append(self._zlib.flush())
        return b"".join(self.parts)


class _StatePickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> str | None:
        return _PARAMETER if isinstance(obj, PARAMETER_TYPES) else None


class _StateUnpickler(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> None:
        if pid != _PARAMETER:
            raise pickle.UnpicklingError(f"unknown reference in a rule snapshot: {pid!r}")
        # A parameter: None here, the configured one once the restore reconfigures.


def encode_state(state: object) -> bytes:
    sink = _Compressing()
    _StatePickler(sink, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
    return sink.finish()


def decode_state(blob: bytes) -> Any:
    """The state, its parameters None until reconfigured. The blob is the service's own
    (its database), so unpickling it is as trusted as the code."""
    if blob[:1] == b"\x78":
        blob = zlib.decompress(blob)
    return _StateUnpickler(io.BytesIO(blob)).load()
