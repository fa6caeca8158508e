# SPDX-License-Identifier: MIT
"""The HTTP server benchmark's aiohttp.web peer (issue 14; run by http_server_run.sh): GET
/plaintext ("Hello, World!", text/plain) and GET /json ({"Hello":"World"}) on aiohttp.web with
uvloop, access log off. Serves 127.0.0.1:<port> until SIGINT or SIGTERM.

Usage: /usr/bin/python3 http_server_aiohttp.py <port>
"""

import asyncio
import signal
import sys

import uvloop
from aiohttp import web


async def plaintext(request):
    return web.Response(text="Hello, World!")


async def json_(request):
    return web.json_response({"Hello": "World"})


async def serve(port):
    app = web.Application()
    app.router.add_get("/plaintext", plaintext)
    app.router.add_get("/json", json_)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=300)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    uvloop.install()
    asyncio.run(serve(int(sys.argv[1])))
