"""The execution monitoring dashboard: one web page and the JSON it reads, served by the monitor.

The page (dashboard.html, no external scripts: trading floors are closed networks) polls
``/api/executions`` and ``/api/alerts`` twice a second and draws live orders with progress
bars against their schedule, slippage and participation, the alerts, and two charts: the fills
of the selected order against its arrival mid, and slippage by order. The JSON is what
MonitorService returns, from the same `Monitor`, so the page and the API cannot disagree.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
from importlib.resources import files
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse

from fillpath.core.errors import NotFound
from fillpath.monitor.service import Monitor

_PAGE = files("fillpath.monitor").joinpath("dashboard.html").read_text(encoding="utf-8")


def create_app(monitor: Monitor) -> FastAPI:
    app = FastAPI(title="fillpath execution monitor", docs_url="/api/docs", redoc_url=None)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return _PAGE

    @app.get("/api/executions")
    def executions() -> list[dict[str, Any]]:
        return [x.to_document(fills=True) for x in monitor.all_executions()]

    @app.get("/api/executions/{order_id}")
    def execution(order_id: str) -> dict[str, Any]:
        try:
            return monitor.execution(order_id).to_document(fills=True)
        except NotFound as err:
            raise HTTPException(status_code=404, detail=str(err)) from err

    @app.get("/api/alerts")
    def alerts(limit: int = 50) -> list[dict[str, Any]]:
        page, _ = monitor.alerts(page_size=max(1, min(limit, 1000)))
        return [dataclasses.asdict(a) for a in page]

    return app


class Dashboard:
    """The app served by uvicorn on a thread of its own."""

    def __init__(self, monitor: Monitor, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, int(port)))
        self.host = host
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(create_app(monitor), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True,
            name="monitor-dashboard",
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> Dashboard:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
