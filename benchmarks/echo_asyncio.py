# SPDX-License-Identifier: MIT
"""Peer of the echo benchmark: an echo server in asyncio, or uvloop with --loop uvloop.

Usage: /usr/bin/python3 echo_asyncio.py [--loop asyncio|uvloop] [--variant streams|protocol] PORT

Prints "listening on 127.0.0.1:<port>" on stdout (port 0 picks a free port) and serves until
SIGINT or SIGTERM. --variant streams (default) is what an asyncio user writes, the twin of
coring's examples/echo_server.cpp: start_server, reader.read + writer.write + await
writer.drain(). --variant protocol is the fastest pure-asyncio form: a Protocol whose
data_received writes straight back to the transport (no StreamReader, no task per read).
"""

import argparse
import asyncio
import signal
import sys


async def echo(reader, writer):
    try:
        while data := await reader.read(16384):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass  # the client reset the connection
    writer.close()


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def serve(variant, port):
    loop = asyncio.get_running_loop()
    if variant == "streams":
        server = await asyncio.start_server(echo, "127.0.0.1", port, backlog=1024)
    else:
        server = await loop.create_server(EchoProtocol, "127.0.0.1", port, backlog=1024)
    host, bound = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{bound}", flush=True)
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda s=sig: stop.done() or stop.set_result(s))
    signo = await stop
    print(f"echo_asyncio: {signal.Signals(signo).name}, stopping", file=sys.stderr)
    server.close()
    # The connections still open end here, as asyncio.run would end them: cancelled, awaited.
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--variant", choices=["streams", "protocol"], default="streams")
    parser.add_argument("port", type=int)
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(serve(args.variant, args.port))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
