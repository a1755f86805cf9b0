"""The raw archive read by topic: which topics and payloads a source's data is read from, and
the pre-filter of HJ 212 payloads by their DataTime."""

from datetime import datetime, timedelta

from ingest.archive import IncomingMessage, RawArchive, to_us
from ingest.archive_topics import TopicArchive, Wanted, event_filter
from ingest.china_time import CHINA_TZ
from ingest.hj212.encoder import data_packets
from ingest.mqtt.topics import TopicRouter
from ingest.processor import IngestPolicy
from ingest.registry import Gateway, Outlet, Registry

T = datetime(2026, 11, 20, 8, tzinfo=CHINA_TZ)


def packet(mn: str, cn: str = "2051", at: datetime = T) -> bytes:
    [p] = data_packets(
        st="31",
        cn=cn,
        pw="123456",
        mn=mn,
        data_time=at,
        pollutants={"a21026": {"Avg" if cn != "2011" else "Rtd": 40.0, "Flag": "N"}},
        ack=False,
    )
    return p


def test_the_event_filter_keeps_what_feeds_the_range_or_its_hours():
    lo = int(T.timestamp())
    keep = event_filter((lo, lo + 3600), (lo - 86400, lo + 7200))
    assert keep(packet("MN1"))  # in the range
    assert keep(packet("MN1", at=T - timedelta(hours=5)))  # minute data of the range's days
    assert not keep(packet("MN1", "2011", T - timedelta(hours=5)))  # real-time data outside
    assert not keep(packet("MN1", at=T - timedelta(days=3)))  # outside every window
    assert keep(b"##0010QN=1;DataTime=20261399000000&&")  # unreadable: the decoder decides


def test_a_sources_messages_come_from_its_own_topic_and_its_gateways(tmp_path):
    path = tmp_path / "archive.sqlite3"
    archive = RawArchive(path)
    received = to_us(T + timedelta(minutes=1))
    archive.append(
        [
            IncomingMessage(received, "hj212/MN1", packet("MN1")),
            IncomingMessage(received, "hj212/GW1", packet("MN2")),  # the gateway, not for MN1
            IncomingMessage(received + 1, "hj212/GW1", packet("MN1")),
            IncomingMessage(received, "junk/MN1", packet("MN1")),  # routed by nothing
        ]
    )
    archive.close()
    registry = Registry(
        [
            Outlet("E1", "DA001", "MN1", "123456", "gas"),
            Outlet("E1", "DA002", "MN2", "123456", "gas"),
        ],
        gateways=[Gateway("GW1", mns=frozenset({"MN1", "MN2"}))],
    )
    reader = TopicArchive(
        path,
        registry,
        lambda: TopicRouter([("hj212", "hj212/+")]),
        IngestPolicy(),
        build_index=False,
    )
    found = reader.messages(Wanted(mns=frozenset({"MN1"})), received - 10, received + 10)
    assert [m.topic for m in found] == ["hj212/MN1", "hj212/GW1"]
    measurements, _ = reader.decode(found)
    assert {(m.outlet_id, m.value) for m in measurements} == {("DA001", 40.0)}
    assert reader.ensure_topic_index() is False  # not built when told not to
