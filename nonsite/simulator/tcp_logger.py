"""A data logger that speaks HJ 212 over TCP as real ones do (HJ 212-2017 §6.5, Table 1).

It connects to the platform (and reconnects with backoff), uploads packets, and resends one
whose 9014 does not come within ``over_time_s``, at most ``re_count`` times. It keeps what it
uploaded, so it can answer the platform's requests from its own history:

- a recall (2051/2061/2031 with BeginTime/EndTime): 9011 QnRtn=1, the stored packets of that
  interval (each its own upload, answered with 9014), then 9012 ExeRtn=1, or 100 without data;
- 1011 (its clock): 9011, a 1011 upload with SystemTime and the request's QN, 9012;
- 1012 (set its clock): 9011, its clock is set, 9012;
- any other request: 9011 QnRtn=8 (CN 错误), as a logger answers a command it does not know.

Used by the demo (some of its fleet connects over TCP) and by the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from ingest.hj212.decoder import DecodeFailure, decode_payload
from ingest.hj212.encoder import encode_packet, encode_segment, reply_9011, reply_9012
from ingest.hj212.model import Hj212Frame
from ingest.hj212.stream import StreamFramer
from ingest.hj212.timefmt import format_hj212_time

log = logging.getLogger(__name__)

RECALLABLE = frozenset({"2051", "2061", "2031"})


class TcpLogger:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        mn: str,
        over_time_s: float = 5.0,
        re_count: int = 3,
        clock_offset_s: float = 0.0,
    ) -> None:
        self.host, self.port, self.mn = host, port, mn
        self.over_time_s, self.re_count = over_time_s, re_count
        self.clock_offset_s = clock_offset_s  # how far its clock is from the true time
        self.history: dict[tuple[str, datetime], bytes] = {}  # (CN, DataTime) → packet
        self.requests: list[Hj212Frame] = []  # what the platform asked, in order
        self.unanswered = 0  # uploads given up after re_count resends
        self._writer: asyncio.StreamWriter | None = None
        self._acks: dict[str, asyncio.Future[None]] = {}
        self._connected = asyncio.Event()
        self._reader_task: asyncio.Task[None] | None = None
        self._closing = False
        self._pending_requests: asyncio.Queue[Hj212Frame] = asyncio.Queue()
        self._answering: asyncio.Task[None] | None = None

    # -- connection ---------------------------------------------------------------------

    async def connect(self, timeout: float = 10.0) -> None:
        """Connect now (and keep reconnecting in the background after a drop)."""
        self._reader_task = asyncio.create_task(self._run(), name=f"logger-{self.mn}")
        self._answering = asyncio.create_task(self._answer_requests(), name=f"answer-{self.mn}")
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def close(self) -> None:
        self._closing = True
        if self._writer is not None:
            self._writer.close()
        for task in (self._reader_task, self._answering):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await task

    async def _run(self) -> None:
        delay = 0.2
        while not self._closing:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            delay = 0.2
            self._writer = writer
            self._connected.set()
            try:
                await self._read(reader)
            except (ConnectionError, OSError):
                pass
            finally:
                self._connected.clear()
                self._writer = None
                writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        framer = StreamFramer()
        while data := await reader.read(65536):
            for piece in framer.feed(data):
                for item in decode_payload(piece + b"\r\n"):
                    if not isinstance(item, DecodeFailure):
                        await self._received(item)

    # -- uploading ---------------------------------------------------------------------

    def remember(self, packet: bytes) -> None:
        """Keep an upload in the logger's history (what a recall is answered from)."""
        for item in decode_payload(packet):
            if not isinstance(item, DecodeFailure) and item.data_time is not None:
                self.history[(item.cn, item.data_time)] = packet

    async def upload(self, packets: Iterable[bytes], *, keep: bool = True) -> int:
        """Send packets in order, each resent until answered (when it asks for a reply);
        returns how many were answered."""
        answered = 0
        for packet in packets:
            if keep:
                self.remember(packet)
            answered += await self._send_until_answered(packet)
        return answered

    async def _send_until_answered(self, packet: bytes) -> int:
        frames = [f for f in decode_payload(packet) if not isinstance(f, DecodeFailure)]
        wants_reply = bool(frames) and frames[0].ack_requested and frames[0].qn is not None
        for _attempt in range(1 + self.re_count):
            await self._connected.wait()
            waiter: asyncio.Future[None] | None = None
            if wants_reply:
                waiter = asyncio.get_running_loop().create_future()
                self._acks[str(frames[0].qn)] = waiter
            if not await self._write(packet):
                continue
            if waiter is None:
                return 0
            try:
                await asyncio.wait_for(waiter, self.over_time_s)
                return 1
            except TimeoutError:
                continue  # resend, as the standard's OverTime/ReCount say
        self.unanswered += 1
        return 0

    async def _write(self, packet: bytes) -> bool:
        writer = self._writer
        if writer is None:
            return False
        try:
            writer.write(packet if packet.endswith(b"\r\n") else packet + b"\r\n")
            await writer.drain()
        except (ConnectionError, OSError):
            return False
        return True

    # -- the platform's packets ---------------------------------------------------------

    def clock(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset_s)

    async def _received(self, frame: Hj212Frame) -> None:
        if frame.cn == "9014":
            waiter = self._acks.pop(frame.qn or "", None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            return
        if frame.cn in ("9013", "9011", "9012"):
            return
        self.requests.append(frame)
        # Answered in order by one task: the reading goes on meanwhile (a recall's uploads
        # wait for 9014s that only the reading can see).
        self._pending_requests.put_nowait(frame)

    async def _answer_requests(self) -> None:
        while True:
            await self._answer(await self._pending_requests.get())

    async def _answer(self, frame: Hj212Frame) -> None:
        if frame.cn in RECALLABLE:
            await self._recall(frame)
        elif frame.cn == "1011":
            await self._write(reply_9011(frame))
            await self._write(self._time_upload(frame))
            await self._write(reply_9012(frame))
        elif frame.cn == "1012":
            await self._write(reply_9011(frame))
            wanted = frame.fields.get("SystemTime")
            if isinstance(wanted, datetime):
                self.clock_offset_s = (wanted - datetime.now(UTC)).total_seconds()
            await self._write(reply_9012(frame))
        else:
            await self._write(reply_9011(frame, qn_rtn=8))

    async def _recall(self, request: Hj212Frame) -> None:
        begin, end = request.fields.get("BeginTime"), request.fields.get("EndTime")
        await self._write(reply_9011(request))
        if not isinstance(begin, datetime) or not isinstance(end, datetime):
            await self._write(reply_9012(request, exe_rtn=3))
            return
        found = sorted(
            (t, p) for (cn, t), p in self.history.items() if cn == request.cn and begin <= t <= end
        )
        await self.upload((p for _, p in found), keep=False)
        await self._write(reply_9012(request, exe_rtn=1 if found else 100))

    def _time_upload(self, request: Hj212Frame) -> bytes:
        segment = encode_segment(
            qn=request.qn,
            st=request.st,
            cn="1011",
            pw=request.pw,
            mn=self.mn,
            flag=4,
            cp=f"SystemTime={format_hj212_time(self.clock())}",
        )
        return encode_packet(segment)
