"""A real HTTP server on loopback that records requests and plays Slack, a webhook and
GitHub's issues API — so the notification tests exercise sockets, headers, retries and
pagination rather than a mocked client.

- Any path answers 200 "ok" unless answers were scripted for it (`script`), which are
  served first, in order: 500 then 200, 429 with Retry-After, 401, a slow answer...
- `/api/repos/<owner>/<repo>/issues` is GitHub: GET lists the stored issues (open and
  closed) filtered by `labels` and paginated `page_size` at a time with a `Link` header;
  POST creates one. Both demand `Authorization: Bearer <github_token>`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

ISSUES_PATH = re.compile(r"^/api/repos/([^/]+)/([^/]+)/issues$")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any

    @property
    def text(self) -> str:
        return json.dumps(self.body, ensure_ascii=False)


@dataclass
class Answer:
    status: int
    body: Any = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0


class FakeServer:
    def __init__(self, *, github_token: str = "ghp_test_token_0123456789", page_size: int = 2):
        self.github_token = github_token
        self.page_size = page_size
        self.requests: list[Recorded] = []
        self.issues: list[dict[str, Any]] = []
        self.create_then_fail: int = 0  # store the issue, then answer 502 (ambiguous failure)
        self._scripts: dict[str, deque[Answer]] = {}
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- test controls --------------------------------------------------------------------
    def script(self, path: str, *answers: Answer) -> None:
        self._scripts.setdefault(path, deque()).extend(answers)

    def requests_to(self, path: str, method: str | None = None) -> list[Recorded]:
        return [
            r for r in self.requests if r.path == path and (method is None or r.method == method)
        ]

    def add_issue(
        self, *, title: str, body: str, labels: list[str], state: str = "open", **extra: Any
    ) -> dict[str, Any]:
        number = len(self.issues) + 1
        issue = {
            "number": number,
            "title": title,
            "body": body,
            "state": state,
            "labels": [{"name": name} for name in labels],
            "html_url": f"https://github.example/issues/{number}",
            **extra,
        }
        self.issues.append(issue)
        return issue

    # -- HTTP -----------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep pytest output clean

            def do_GET(self) -> None:
                server._serve(self, "GET")

            def do_POST(self) -> None:
                server._serve(self, "POST")

        return Handler

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        recorded = Recorded(
            method,
            parts.path,
            {key: values[-1] for key, values in parse_qs(parts.query).items()},
            {key.lower(): value for key, value in handler.headers.items()},
            body,
        )
        with self._lock:
            self.requests.append(recorded)
            queue = self._scripts.get(parts.path)
            answer = queue.popleft() if queue else None
        if answer is None:
            match = ISSUES_PATH.match(parts.path)
            answer = self._github(recorded, match) if match else Answer(200, "ok")
        if answer.delay_seconds:
            time.sleep(answer.delay_seconds)
        payload = answer.body if isinstance(answer.body, str) else json.dumps(answer.body)
        data = payload.encode("utf-8")
        try:
            handler.send_response(answer.status)
            for name, value in answer.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and hung up: that was the point

    def _github(self, request: Recorded, match: re.Match[str]) -> Answer:
        if request.headers.get("authorization") != f"Bearer {self.github_token}":
            return Answer(401, {"message": "Bad credentials"})
        if request.method == "POST":
            with self._lock:
                issue = self.add_issue(
                    title=request.body["title"],
                    body=request.body.get("body", ""),
                    labels=request.body.get("labels", []),
                )
                if self.create_then_fail:
                    self.create_then_fail -= 1
                    return Answer(502, {"message": "Server Error"})
            return Answer(201, issue)
        wanted = set(filter(None, request.query.get("labels", "").split(",")))
        state = request.query.get("state", "open")
        with self._lock:
            matching = [
                issue
                for issue in self.issues
                if wanted <= {label["name"] for label in issue["labels"]}
                and (state == "all" or issue["state"] == state)
            ]
        page = int(request.query.get("page", "1"))
        start = (page - 1) * self.page_size
        headers = {}
        if start + self.page_size < len(matching):
            query = {**request.query, "page": str(page + 1)}
            headers["Link"] = f'<{self.url}{request.path}?{urlencode(query)}>; rel="next"'
        return Answer(200, matching[start : start + self.page_size], headers)
