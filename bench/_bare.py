"""The alerts baseline: a bare Starlette JSON endpoint under the same uvicorn set-up as tickguard.

`python -m bench._bare --port N`: `POST /opentrade` parses the JSON body and answers 202 with a small
JSON object; `GET /healthz` answers 200.
"""
from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


async def opentrade(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"alert_id": 1, "trades": [1], "closing": [], "symbol": body.get("symbolname")}, 202)


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/opentrade", opentrade, methods=["POST"]), Route("/healthz", healthz)])

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, access_log=False, log_level="warning", proxy_headers=False)
