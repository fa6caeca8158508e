# SPDX-License-Identifier: MIT
"""Peer of the TLS benchmark: a TLS echo server in asyncio ssl streams, or uvloop with --loop uvloop.

Usage: /usr/bin/python3 tls_asyncio.py [--loop asyncio|uvloop] PORT CERT KEY

Prints "listening on 127.0.0.1:<port>" on stdout (port 0 picks a free port) and serves until
SIGINT or SIGTERM. What an asyncio user writes, the twin of coring's
examples/tls_echo_server.cpp: start_server(ssl=ctx), reader.read + writer.write + await
writer.drain(). The context is ssl.create_default_context(Purpose.CLIENT_AUTH) with the
certificate chain loaded.
"""

import argparse
import asyncio
import signal
import ssl
import sys


async def echo(reader, writer):
    try:
        while data := await reader.read(16384):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass  # the client reset the connection or left without close_notify
    writer.close()


async def serve(port, cert, key):
    loop = asyncio.get_running_loop()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    server = await asyncio.start_server(echo, "127.0.0.1", port, ssl=ctx, backlog=1024)
    host, bound = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{bound}", flush=True)
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda s=sig: stop.done() or stop.set_result(s))
    signo = await stop
    print(f"tls_asyncio: {signal.Signals(signo).name}, stopping", file=sys.stderr)
    server.close()
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("port", type=int)
    parser.add_argument("cert")
    parser.add_argument("key")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # A failed or abandoned handshake is logged by asyncio; the benchmark closes connections
    # without waiting, which is not worth a traceback each.
    loop.set_exception_handler(lambda loop, context: None)
    try:
        loop.run_until_complete(serve(args.port, args.cert, args.key))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
