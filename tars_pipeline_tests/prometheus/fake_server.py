"""A FAKE Prometheus query API on loopback, for the faults a real Prometheus cannot produce.

A real Prometheus has no authentication of its own (401/403 come from the proxy or the
multi-tenant gateway in front of it), does not rate-limit (429 comes from Mimir, Thanos
receive or a gateway), and cannot be made to answer 503 a few times and then recover, or to
stall past a client timeout, on cue. This server plays those parts over real sockets, so the
client's retries, backoff, timeouts and headers are exercised for real; everything a real
Prometheus can do (bad PromQL, no data, NaN, unreachable port, DNS, TLS) is tested against
the real one in test_real_server.py.

Unless answers are scripted, `/api/v1/query_range` answers like Prometheus: one series with
the value 1.0 at every step from start to end.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    broken_off: bool = False  # announce the whole body, send half of it, hang up


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float


class FakePrometheus:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.in_flight = 0
        self.most_in_flight = 0  # the most requests the server was answering at once
        self.default_delay_seconds = 0.0  # for every unscripted answer
        self._script: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *answers: Answer) -> None:
        with self._lock:
            self._script.extend(answers)

    def start(self) -> FakePrometheus:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next(self) -> Answer | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
                with fake._lock:
                    fake.seen.append(Seen(parts.path, query, dict(self.headers), time.time()))
                    fake.in_flight += 1
                    fake.most_in_flight = max(fake.most_in_flight, fake.in_flight)
                self._counted = True
                try:
                    self._answer(parts.path, query)
                finally:
                    self._answered()

            def _answered(self) -> None:
                """Out of the in-flight count, before the body's last bytes go: once they
                are sent, the client may ask its next query before this thread runs again
                (on a loaded machine), and two would seem in flight where one was."""
                if self._counted:
                    self._counted = False
                    with fake._lock:
                        fake.in_flight -= 1

            def _answer(self, path: str, query: dict[str, str]) -> None:
                answer = fake._next() or _default(path, query, fake.default_delay_seconds)
                if answer.delay_seconds:
                    time.sleep(answer.delay_seconds)
                body = answer.body
                payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                try:
                    self.send_response(answer.status)
                    content_type = "text/plain" if isinstance(body, str) else "application/json"
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self._answered()
                    if answer.broken_off:
                        self.wfile.write(payload[: len(payload) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_POST = do_GET  # noqa: N815

        return Handler


def _default(path: str, query: dict[str, str], delay_seconds: float = 0.0) -> Answer:
    if path == "/api/v1/query_range":
        start, end, step = (float(query[key]) for key in ("start", "end", "step"))
        count = int((end - start) // step) + 1
        values = [[start + i * step, "1"] for i in range(count)]
        return Answer(
            200,
            {
                "status": "success",
                "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]},
            },
            delay_seconds=delay_seconds,
        )
    if path.startswith("/api/v1/label/"):
        return Answer(200, {"status": "success", "data": ["api-gateway"]})
    return Answer(404, "404 page not found\n")


def prometheus_error(error_type: str, message: str) -> dict[str, str]:
    """The body Prometheus (and compatible gateways) send with an error status."""
    return {"status": "error", "errorType": error_type, "error": message}
