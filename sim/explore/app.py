"""The explore server: one page and four JSON endpoints, for loopback only (``python -m sim explore``).

Starlette because it is small and asynchronous: a slider sends a request per step, and the
server answers only the newest. Every request carries the page's sequence number (one counter
for every kind: a slider step, its full run and its bands share theirs); a request older than
the newest seen of any kind is answered ``{"stale": true}`` without work, and a full run or a
band computation already under way stops at its next month or chunk when a newer request
arrives (``Cancelled``): the page has moved on and would drop the answer, and the work would
only take the processor from the answer it waits for. The work runs in a thread, one request
of a kind at a time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sim.errors import InputError
from sim.explore.answers import Cancelled, Explorer, gap
from sim.explore.page import STATIC, page
from sim.explore.save import save

LOOPBACK = "127.0.0.1"
STATIC_FILES = {
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
    "explore.js": "text/javascript",
    "explore.css": "text/css",
}


class Latest:
    """The newest sequence number the page sent (any kind), and one lock per kind (work runs one at a time)."""

    def __init__(self) -> None:
        self.seq: int | None = None
        self.locks: dict[str, asyncio.Lock] = {}

    def arrive(self, seq: int) -> None:
        self.seq = seq if self.seq is None else max(seq, self.seq)

    def newest(self, seq: int) -> bool:
        return self.seq == seq

    def lock(self, kind: str) -> asyncio.Lock:
        return self.locks.setdefault(kind, asyncio.Lock())


def create_app(explorer: Explorer, save_folder: Path) -> Starlette:
    """The ASGI app for one explored scenario."""
    latest = Latest()
    html = page(explorer)

    async def index(request: Request) -> Response:
        return HTMLResponse(html)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            return Response("not found", status_code=404)
        return Response((STATIC / name).read_bytes(), media_type=STATIC_FILES[name])

    async def answer(request: Request, kind: str, work: Callable[[dict, Callable[[], bool]], Any]) -> Response:
        try:
            body = await request.json()
            seq, values = int(body["seq"]), body["values"]
            if not isinstance(values, dict):
                raise ValueError("values must be an object")
        except (ValueError, KeyError, TypeError, json.JSONDecodeError) as error:
            return JSONResponse({"error": f"expected JSON {{seq, values}}: {error}"}, status_code=400)
        latest.arrive(seq)
        async with latest.lock(kind):
            if not latest.newest(seq):
                return JSONResponse({"seq": seq, "stale": True})
            try:
                result = await run_in_threadpool(work, values, lambda: latest.newest(seq))
            except Cancelled:
                return JSONResponse({"seq": seq, "stale": True})
            except InputError as error:
                return JSONResponse({"seq": seq, "error": str(error)}, status_code=422)
        return JSONResponse({"seq": seq, **result})

    async def stockflow(request: Request) -> Response:
        return await answer(request, "stockflow", lambda values, _: explorer.stockflow(values).json())

    async def full(request: Request) -> Response:
        def work(values: dict, wanted: Callable[[], bool]) -> dict:
            result = explorer.full(values, wanted)
            approx = explorer.stockflow(values)
            return {**result.json(), "gap": gap(approx, result)}

        return await answer(request, "full", work)

    async def bands(request: Request) -> Response:
        return await answer(request, "bands", lambda values, wanted: {"bands": explorer.bands(values, wanted)})

    async def save_scenario(request: Request) -> Response:
        try:
            body = await request.json()
            name, values = str(body["name"]), dict(body["values"])
        except (ValueError, KeyError, TypeError) as error:
            return JSONResponse({"error": f"expected JSON {{name, values}}: {error}"}, status_code=400)
        try:
            path = await run_in_threadpool(save, explorer.scenario, values, name, save_folder)
        except InputError as error:
            return JSONResponse({"error": str(error)}, status_code=422)
        return JSONResponse({"path": str(path), "toml": path.read_text(encoding="utf-8")})

    return Starlette(
        routes=[
            Route("/", index),
            Route("/static/{name}", static),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Route("/api/stockflow", stockflow, methods=["POST"]),
            Route("/api/full", full, methods=["POST"]),
            Route("/api/bands", bands, methods=["POST"]),
            Route("/api/save", save_scenario, methods=["POST"]),
        ]
    )


def serve(explorer: Explorer, save_folder: Path, port: int = 8765, open_browser: bool = True) -> None:
    """Serve the page on 127.0.0.1 until interrupted; open it in the default browser."""
    import threading
    import webbrowser

    import uvicorn

    url = f"http://{LOOPBACK}:{port}/"
    config = uvicorn.Config(create_app(explorer, save_folder), host=LOOPBACK, port=port, log_level="warning")
    server = uvicorn.Server(config)
    print(f"explore {explorer.scenario.name}: {url} (Ctrl-C stops)", flush=True)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, [url]).start()
    server.run()
