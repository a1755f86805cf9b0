"""The service's listening sockets: a response is not held back by Nagle's algorithm.

asyncio sets TCP_NODELAY on an accepted connection only when the listening socket says it
is TCP; without it uvicorn's headers and body, written apart, reach the client ~40 ms apart
(the client's delayed ACK), which every page and API call paid."""

from __future__ import annotations

import asyncio
import socket

from nonsite.http import bind


def test_accepted_connections_have_nodelay():
    listening = bind("127.0.0.1:0")
    assert listening.proto == socket.IPPROTO_TCP
    seen: list[int] = []

    async def main() -> None:
        def accepted(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listening)
        port = listening.getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    assert seen and seen[0] != 0
