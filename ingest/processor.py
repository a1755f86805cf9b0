"""Classify archived messages: readings for the rule stage, dead letters with reasons, replies.

Pure with respect to I/O: it takes archived messages and returns what should happen; the
pipeline commits the dead letters with the checkpoint and publishes the replies.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ingest.archive import DEFAULT_MAX_PAYLOAD_BYTES, ArchivedMessage
from ingest.commands.store import LoggerAnswer
from ingest.frame_readings import (
    DATA_CNS,
    METER_CNS,
    POWER_ST,
    add_frame_readings,
    add_meter_readings,
)
from ingest.hj212.charset import header_mn, readable_as
from ingest.hj212.decoder import LENIENT, DecodeFailure, decode_payload
from ingest.hj212.encoder import reply_9014
from ingest.hj212.errors import DecodeErrorCode
from ingest.hj212.model import DATA_REPLY_CNS, Hj212Frame
from ingest.mqtt.topics import TopicRouter
from ingest.power import DecodedReading, PowerDecodeError, PowerErrorCode, decode_power
from ingest.readings import LoggerSeen, PowerSample, ReadingBatch
from ingest.reasons import RejectReason
from ingest.registry import MeterLogger, Outlet, Registry
from ingest.store import DeadLetter

_MN_IN_RAW = re.compile(rb"MN=([^;&]{1,64})")
# Decode failures of a segment's text: the logger's encoding setting may be wrong.
_TEXT_CODES = frozenset({DecodeErrorCode.NOT_UTF8, DecodeErrorCode.BAD_ENCODING})


@dataclass(frozen=True, slots=True)
class IngestPolicy:
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    check_pw: bool = True
    reply_topic: str = "hj212/{mn}/reply"  # "" disables 9014 replies


@dataclass(slots=True)
class ProcessedBatch:
    readings: ReadingBatch
    dead_letters: list[DeadLetter] = field(default_factory=list)
    replies: list[tuple[str, bytes]] = field(default_factory=list)
    frames_accepted: int = 0
    # Outcome of each message: "accepted", "partial" (some packets dead), "dead_letter".
    outcomes: Counter[str] = field(default_factory=Counter)
    # Values HJ 212 loggers sent for meters that became no power sample, by reason
    # (ingest.frame_readings: unconfigured_code, invalid_flag, no_value).
    unused_power_values: Counter[str] = field(default_factory=Counter)
    # Loggers' answers to the platform's requests (ingest.commands).
    answers: list[LoggerAnswer] = field(default_factory=list)


# What a logger sends in answer to the platform: request reply, execution result, its clock,
# a request to be given the time.
ANSWER_CNS = frozenset({"9011", "9012", "1011", "1013"})


def _answer(frame: Hj212Frame, received_at: datetime) -> LoggerAnswer:
    f = frame.fields
    # A 2005 logger puts the request's QN inside CP (CP=&&QN=…;ExeRtn=1&&).
    qn = frame.qn or (str(f["QN"]) if "QN" in f else None)
    system_time = f.get("SystemTime")
    return LoggerAnswer(
        mn=frame.mn,
        cn=frame.cn,
        qn=qn,
        received_at=received_at,
        qn_rtn=_int(f.get("QnRtn")),
        exe_rtn=_int(f.get("ExeRtn")),
        system_time=system_time if isinstance(system_time, datetime) else None,
    )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


class MessageProcessor:
    def __init__(self, registry: Registry, router: TopicRouter, policy: IngestPolicy) -> None:
        self.registry = registry
        self.router = router
        self.policy = policy

    def process(self, messages: Sequence[ArchivedMessage]) -> ProcessedBatch:
        batch = ProcessedBatch(ReadingBatch(first_seq=messages[0].seq, last_seq=messages[-1].seq))
        for msg in messages:
            before_dead = len(batch.dead_letters)
            before_ok = batch.frames_accepted
            self._process_one(msg, batch)
            dead = len(batch.dead_letters) - before_dead
            ok = batch.frames_accepted - before_ok
            outcome = "dead_letter" if ok == 0 else ("partial" if dead else "accepted")
            batch.outcomes[outcome] += 1
        return batch

    def _dead(
        self,
        batch: ProcessedBatch,
        msg: ArchivedMessage,
        reason: str,
        detail: str,
        payload: bytes | None = None,
        mn: str | None = None,
    ) -> None:
        raw = msg.payload if payload is None else payload
        if mn is None:
            found = _MN_IN_RAW.search(raw[:2048])
            mn = found.group(1).decode("utf-8", "replace") if found else None
        batch.dead_letters.append(
            DeadLetter(
                archive_seq=msg.seq,
                received_at=msg.received_at,
                topic=msg.topic,
                reason=reason,
                detail=detail,
                payload=raw,
                mn=mn,
                # The whole message's size and digest when the archive kept only its start.
                full_size=msg.full_size if payload is None else None,
                full_sha256=msg.full_sha256 if payload is None else None,
            )
        )

    def _process_one(self, msg: ArchivedMessage, batch: ProcessedBatch) -> None:
        # Truncated: the archive kept only its start (it was above the limit when received).
        if msg.full_size is not None or len(msg.payload) > self.policy.max_payload_bytes:
            self._dead(
                batch,
                msg,
                RejectReason.OVERSIZE_PAYLOAD,
                f"{msg.size} bytes, the limit is {self.policy.max_payload_bytes}",
            )
            return
        route = self.router.route(msg.topic)
        if route is None:
            self._dead(
                batch, msg, RejectReason.UNKNOWN_TOPIC, f"no subscription routes {msg.topic!r}"
            )
        elif route.kind == "hj212":
            self._hj212(msg, route.sender, batch)
        else:
            self._power(msg, route.sender, batch)

    def _hj212(self, msg: ArchivedMessage, sender: str, batch: ProcessedBatch) -> None:
        for item in decode_payload(msg.payload, LENIENT, self.registry.encoding_of):
            if isinstance(item, DecodeFailure):
                detail = item.detail
                if item.code in _TEXT_CODES:
                    detail += self._encoding_advice(item.raw)
                self._dead(batch, msg, item.code, detail, payload=item.raw)
                continue
            problem = self._check_frame(item, sender)
            if problem is not None:
                self._dead(batch, msg, problem[0], problem[1], payload=item.raw, mn=item.mn)
                continue
            self._accept_frame(item, msg, sender, batch)

    def _encoding_advice(self, raw: bytes) -> str:
        """The setting that would decode a packet whose text is not in its logger's encoding."""
        mn = header_mn(raw[6:] if raw.startswith(b"##") else raw)
        outlet = self.registry.outlet(mn) if mn is not None else None
        where = f"on {outlet.who}" if outlet else "in [ingest] (for loggers no outlet has)"
        current = self.registry.encoding_of(mn)
        guess = readable_as(raw)
        value = f'"{guess}"' if guess and guess != current else "what it sends (gbk, gb18030)"
        return f"; the data logger's encoding is {current}: set encoding = {value} {where}"

    def _check_frame(self, frame: Hj212Frame, sender: str) -> tuple[str, str] | None:
        """Per-logger rules on a frame the codec accepted: (reason, detail), or None if usable."""
        logger = self.registry.logger(frame.mn)
        if logger is None:
            return RejectReason.UNKNOWN_MN, f"MN {frame.mn!r} is not configured"
        # Attribution before anything else the frame claims: the topic's sender is what the
        # broker authenticated, the MN inside is only what the sender wrote.
        if not self.registry.may_send_mn(sender, frame.mn):
            return RejectReason.FOREIGN_MN, (
                f"MN {frame.mn!r} on the topic of {sender!r}, which may not speak for it "
                "(a logger publishes its own MN on its own topic; a gateway only the MNs of "
                "its [[gateways]] entry)"
            )
        if frame.crc_variant == "modbus" and not logger.accept_modbus_crc:
            return DecodeErrorCode.CRC_MODBUS, (
                f"CRC {frame.crc} is CRC-16/MODBUS; {logger.who} does not accept "
                "that variant (accept_modbus_crc)"
            )
        if frame.length > logger.max_segment_bytes:
            return DecodeErrorCode.SEGMENT_TOO_LONG, (
                f"data segment has {frame.length} bytes, the limit for {logger.who} "
                f"is {logger.max_segment_bytes}"
            )
        if self.policy.check_pw and not self.registry.password_ok(frame.mn, frame.pw):
            return RejectReason.WRONG_PW, f"PW does not match {logger.who}"
        if frame.data_time is None and frame.cn in DATA_CNS:
            return RejectReason.MISSING_DATA_TIME, f"CN {frame.cn} upload without DataTime"
        if isinstance(logger, MeterLogger):
            return self._check_meter_codes(frame)
        return None

    def _check_meter_codes(self, frame: Hj212Frame) -> tuple[str, str] | None:
        """A logger of meters only whose data packet names none of its meters' codes: nothing
        in it can be used, as if its MN were unknown (a configured code it never sends)."""
        meters = self.registry.meters_of(frame.mn) or {}
        codes = frame.pollutants.keys()
        if frame.cn not in METER_CNS or not codes or not codes.isdisjoint(meters):
            return None
        return RejectReason.UNKNOWN_CODE, (
            f"no meter is configured for MN {frame.mn!r} code(s) {', '.join(sorted(codes))}; "
            f"its meters' codes are {', '.join(sorted(meters))}"
        )

    def _accept_frame(
        self, frame: Hj212Frame, msg: ArchivedMessage, sender: str, batch: ProcessedBatch
    ) -> None:
        outlet = self.registry.outlet(frame.mn)  # None: a logger of meters only
        data_time = frame.data_time
        received_at = msg.received_at  # computed from the µs on each access: once
        if data_time is not None:
            self._add_readings(batch, frame, outlet, data_time, received_at, msg.seq)
        if outlet is not None:  # offline detection is per outlet; a meter's is its samples
            batch.readings.loggers.append(
                LoggerSeen(
                    enterprise_id=outlet.enterprise_id,
                    outlet_id=outlet.outlet_id,
                    mn=frame.mn,
                    cn=frame.cn,
                    data_time=data_time,
                    received_at=received_at,
                    archive_seq=msg.seq,
                )
            )
        batch.frames_accepted += 1
        if frame.cn in ANSWER_CNS:
            batch.answers.append(_answer(frame, received_at))
        if self.policy.reply_topic and frame.ack_requested and frame.cn in DATA_REPLY_CNS:
            # Back to the sender's own topic (a gateway's, for the frames it carries): the
            # only reply topic its login may read.
            topic = self.policy.reply_topic.replace("{mn}", sender)
            batch.replies.append((topic, reply_9014(frame)))

    def _add_readings(
        self,
        batch: ProcessedBatch,
        frame: Hj212Frame,
        outlet: Outlet | None,
        data_time: datetime,
        received_at: datetime,
        seq: int,
    ) -> None:
        """The outlet's measurements and device states, and the samples of the meters the
        logger reports (docs/power-telemetry.md)."""
        meters = self.registry.meters_of(frame.mn)
        if outlet is not None:
            add_frame_readings(
                batch.readings, frame, outlet, data_time, received_at, seq, meters or ()
            )
        power_st = frame.st == POWER_ST
        if (meters is not None or power_st) and frame.cn in METER_CNS:
            add_meter_readings(
                batch.readings,
                frame,
                meters or {},
                data_time,
                received_at,
                seq,
                batch.unused_power_values,
                all_power=power_st or outlet is None,
            )

    @staticmethod
    def _decode_unregistered_topic(payload: bytes, level: str) -> list[DecodedReading]:
        """A gateway's batch (each reading names its meter) or a meter we do not know."""
        try:
            return decode_power(payload, topic_meter=None)
        except PowerDecodeError as exc:
            if exc.code != PowerErrorCode.SCHEMA_ERROR:
                raise
            try:  # readings without "meter": the topic names an unconfigured meter
                return decode_power(payload, topic_meter=level)
            except PowerDecodeError:
                raise exc from None

    def _power(self, msg: ArchivedMessage, sender: str, batch: ProcessedBatch) -> None:
        try:
            # power/{meter} names the meter; any other sender is a gateway batching several
            # meters, whose readings must each carry "meter".
            if self.registry.meter(sender) is not None:
                readings = decode_power(msg.payload, topic_meter=sender)
            else:
                readings = self._decode_unregistered_topic(msg.payload, sender)
        except PowerDecodeError as exc:
            self._dead(batch, msg, exc.code, exc.detail, mn=None)
            return
        for reading in readings:
            meter = self.registry.meter(reading.meter_id)
            if meter is None:
                detail = f"meter {reading.meter_id!r} is not configured"
                self._dead(batch, msg, RejectReason.UNKNOWN_METER, detail)
                continue
            if not self.registry.may_send_meter(sender, meter.meter_id):
                detail = (
                    f"meter {meter.meter_id!r} on the topic of {sender!r}, which may not speak "
                    "for it (a meter publishes on its own topic; a gateway only for the meters "
                    "of its [[gateways]] entry)"
                )
                self._dead(batch, msg, RejectReason.FOREIGN_METER, detail)
                continue
            batch.readings.power.append(
                PowerSample(
                    enterprise_id=meter.enterprise_id,
                    meter_id=meter.meter_id,
                    ts=reading.ts,
                    active_power_kw=reading.active_power_kw,
                    current_a=reading.current_a,
                    energy_kwh=reading.energy_kwh,
                    switch_on=reading.switch_on,
                    received_at=msg.received_at,
                    archive_seq=msg.seq,
                )
            )
            batch.frames_accepted += 1
