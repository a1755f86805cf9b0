"""Each role's NATS login may do what the role does and nothing else (deploy/nats/nats-auth.conf,
rendered by nonsite.cluster.nats_auth). The roles themselves run with these logins in every
cluster test (tests/nonsite/cluster/harness.py); here, what each must not do is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from ingest.archive import IncomingMessage
from ingest.jetstream.partitions import Partitioner
from ingest.jetstream.publisher import JetStreamLog
from ingest.jetstream.stream import StreamSettings, stored
from nonsite.cluster.nats_auth import generated_passwords
from nonsite.cluster.nats_servers import NatsCluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

SETTINGS = StreamSettings(partitions=4, replicas=1)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    cluster = NatsCluster(
        tmp_path_factory.mktemp("nats-auth"), 1, passwords=generated_passwords(), stream=SETTINGS
    )
    with cluster:
        # The stream, and a message in it, as an ingest node makes them.
        log = JetStreamLog(
            cluster.urls,
            SETTINGS,
            Partitioner({}, SETTINGS.partitions),
            lambda topic: topic.split("/")[1],
            user="ingest",
            password=cluster.passwords["ingest"],  # type: ignore[index]
        )
        log.start()
        try:
            assert log.append([IncomingMessage(1, "hj212/MN0001", b"##0001frame")]) == 1
        finally:
            log.close()
        yield cluster


async def connected(servers: NatsCluster, role: str, errors: list[Exception]) -> Client:
    async def collect(exc: Exception) -> None:
        errors.append(exc)

    return await nats.connect(
        servers.urls, allow_reconnect=False, error_cb=collect, **servers.login(role)
    )


def test_no_login_and_a_wrong_password_are_refused(servers: NatsCluster) -> None:
    async def attempt(**login: str) -> None:
        nc = Client()
        try:
            await nc.connect(servers.urls, allow_reconnect=False, connect_timeout=2, **login)  # type: ignore[arg-type]
        finally:
            await nc.close()  # the refused connection's socket too, before the loop ends

    for login in ({}, {"user": "ingest", "password": "wrong"}):
        with pytest.raises(nats.errors.Error, match=r"[Aa]uthorization"):
            asyncio.run(attempt(**login))


NO_ANSWER = (nats.errors.TimeoutError, nats.errors.NoRespondersError)
REFUSED = "nats: permissions violation for publish to "


def refusals(
    servers: NatsCluster, role: str, tries: Callable[[JetStreamContext], Awaitable[None]]
) -> set[str]:
    """Run ``tries`` logged in as ``role``; the publications the server refused (lower case)."""

    async def run() -> list[Exception]:
        errors: list[Exception] = []
        nc = await connected(servers, role, errors)
        try:
            await tries(nc.jetstream(timeout=2))
            await nc.flush()
            return errors
        finally:
            await nc.close()

    return {str(e).lower() for e in asyncio.run(run())}


@pytest.mark.parametrize("role", ["worker", "web"])
def test_readers_read_but_cannot_write_purge_or_delete_the_stream(
    servers: NatsCluster, role: str
) -> None:
    async def tries(js: JetStreamContext) -> None:
        assert (await js.stream_info(SETTINGS.name)).state.messages == 1
        first = await js.get_msg(SETTINGS.name, 1)
        [member] = stored(1, first.data or b"", first.headers)
        assert member.message.payload == b"##0001frame"
        # A frame forged into the stream in an enterprise's name: no acknowledgement.
        with pytest.raises(NO_ANSWER):
            await js.publish(SETTINGS.node_subject(0, "forger"), b"##forged", timeout=1)
        for forbidden in (js.purge_stream(SETTINGS.name), js.delete_stream(SETTINGS.name)):
            with pytest.raises(NO_ANSWER):
                await asyncio.wait_for(forbidden, 3)
        assert (await js.stream_info(SETTINGS.name)).state.messages == 1

    refused = refusals(servers, role, tries)
    name = SETTINGS.name.lower()
    assert {
        f'{REFUSED}"{SETTINGS.node_subject(0, "forger")}"',
        f'{REFUSED}"$js.api.stream.purge.{name}"',
        f'{REFUSED}"$js.api.stream.delete.{name}"',
    } <= refused, refused


def test_ingest_cannot_consume_the_stream_or_delete_it(servers: NatsCluster) -> None:
    async def tries(js: JetStreamContext) -> None:
        assert (await js.get_msg(SETTINGS.name, 1)).seq == 1  # its own last pack's lookup
        with pytest.raises(NO_ANSWER):
            await js.add_consumer(SETTINGS.name, durable_name="reader")
        with pytest.raises(NO_ANSWER):
            await js.delete_stream(SETTINGS.name)

    refused = refusals(servers, "ingest", tries)
    name = SETTINGS.name.lower()
    assert {
        f'{REFUSED}"$js.api.consumer.durable.create.{name}.reader"',
        f'{REFUSED}"$js.api.stream.delete.{name}"',
    } <= refused, refused
