# SPDX-License-Identifier: MIT
"""The HTTP server benchmark's FastAPI peer (issue 14; run by http_server_run.sh): GET /plaintext
("Hello, World!", text/plain) and GET /json ({"Hello":"World"}) on uvicorn with uvloop and
httptools, one process, access log off. Serves 127.0.0.1:<port> until SIGINT or SIGTERM.

Usage: /usr/bin/python3 http_server_fastapi.py <port>
"""

import sys

import uvicorn
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.get("/plaintext", response_class=PlainTextResponse)
async def plaintext():
    return "Hello, World!"


@app.get("/json")
async def json_():
    return {"Hello": "World"}


def main():
    port = int(sys.argv[1])

    @app.on_event("startup")
    async def announce():
        # uvicorn binds before the startup event; a test request answers right after.
        print(f"listening on 127.0.0.1:{port}", flush=True)

    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                access_log=False, log_level="warning", timeout_keep_alive=300)


if __name__ == "__main__":
    main()
