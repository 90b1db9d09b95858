"""A small JSON-over-HTTP client for notifications: timeouts, retries, no leaked secrets.

Why not a bare `urllib.request.urlopen`:

- A Day-7 run should survive a webhook that hiccups, so transient failures (connection
  errors, timeouts, HTTP 5xx, 429 and GitHub's rate-limit 403) are retried with exponential
  backoff, honouring `Retry-After` when the server sends one (as Slack and GitHub do).
  Other 4xx answers are the caller's mistake (bad token, archived channel) and are not
  retried: repeating them only burns rate limit.
- A Slack webhook URL *is* a secret (the token is its path) and so is a GitHub token, so
  errors name the target by a redacted label, scrub every secret the caller names from
  response bodies and reasons, and never chain the original exception (whose text may
  hold the URL).
- Redirects are not followed: urllib would forward the `Authorization` header to whatever
  host a `Location` names.

Standard library only, so the notifications add no dependency.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tars_pipeline import __version__

USER_AGENT = f"tars-observability/{__version__}"
# 403 only with rate-limit headers (GitHub's secondary rate limit); see `_rate_limited`.
RETRYABLE_CLIENT_STATUS = frozenset({408, 429})
BODY_EXCERPT_CHARS = 300
REDACTED = "***"


def redact_url(url: str, *, keep_path: bool = False) -> str:
    """`scheme://host[:port]/…` — no credentials, no query, and the path only on request.

    Slack and most webhook URLs carry their token in the path; GitHub API paths are not
    secret and help a reader (`keep_path=True`).
    """
    parts = urlsplit(url)
    host = parts.hostname or "?"
    netloc = f"{host}:{parts.port}" if parts.port else host
    path = parts.path if keep_path else ("/…" if parts.path not in ("", "/") else "")
    return f"{parts.scheme or '?'}://{netloc}{path}"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every (non-trivial) secret replaced by ***."""
    for secret in sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def text(self, limit: int = BODY_EXCERPT_CHARS) -> str:
        text = self.body.decode("utf-8", errors="replace").strip()
        return text if len(text) <= limit else text[:limit] + "…"


class HttpError(Exception):
    """A request that failed for good; the message holds no secret."""

    def __init__(
        self,
        message: str,
        *,
        target: str,
        status: int | None = None,
        attempts: int = 1,
    ):
        self.target = target
        self.status = status
        self.attempts = attempts
        super().__init__(f"{target}: {message}")


class RetryCancelledError(Exception):
    """The caller's `before_retry` hook found the retry unnecessary (the effect happened)."""


@dataclass
class HttpClient:
    """POST/GET JSON with a per-attempt timeout and bounded retries.

    `retries` is how many times a failed attempt is repeated (so at most retries + 1
    requests). Attempt n waits `backoff_seconds * 2**n` (capped at `max_backoff_seconds`)
    unless the server's `Retry-After` says otherwise; a `Retry-After` longer than
    `max_retry_after_seconds` fails at once rather than block a Dagster step for an hour.
    No jitter: one TARS run sends a handful of requests, there is no herd to spread.
    """

    timeout_seconds: float = 10.0
    retries: int = 3
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    max_retry_after_seconds: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    opener: urllib.request.OpenerDirector = field(default_factory=lambda: _opener())

    def request(
        self,
        method: str,
        url: str,
        *,
        target: str,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        before_retry: Callable[[], bool] | None = None,
    ) -> HttpResponse:
        """Send one request, retrying transient failures; return the 2xx response.

        `target` names the endpoint in errors (already redacted); `secrets` are scrubbed
        from every error text. `before_retry`, for requests that are not idempotent (a
        GitHub issue POST), runs before a retry that follows an ambiguous failure (5xx,
        timeout): returning False means the first attempt did land, and raises
        RetryCancelledError instead of sending a twin.
        """
        secrets = tuple(secrets)
        data = None
        all_headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if json_body is not None:
            data = json.dumps(json_body, allow_nan=False, ensure_ascii=False).encode("utf-8")
            all_headers["Content-Type"] = "application/json; charset=utf-8"
        all_headers.update(headers or {})
        attempts = self.retries + 1
        for attempt in range(attempts):
            response, failure, ambiguous = self._attempt(
                method, url, data, all_headers, target=target, secrets=secrets
            )
            if response is not None and 200 <= response.status < 300:
                return response
            status = response.status if response is not None else None
            retryable = response is None or _retryable(response)
            if response is not None and not retryable:
                why = (
                    "a redirect, not followed: set the final URL"
                    if 300 <= response.status < 400
                    else "not retried: a client error does not go away by repeating it"
                )
                raise HttpError(
                    f"HTTP {status}{_excerpt(response, secrets)} ({why})",
                    target=target,
                    status=status,
                    attempts=attempt + 1,
                )
            last = attempt == attempts - 1
            delay = self._delay(attempt, response)
            if last or delay is None:
                why = failure or f"HTTP {status}{_excerpt(response, secrets)}"
                if delay is None and not last:
                    why += (
                        f"; the server asked to wait longer than "
                        f"{self.max_retry_after_seconds:.0f} s, giving up"
                    )
                raise HttpError(
                    f"{why} after {attempt + 1} attempt(s)",
                    target=target,
                    status=status,
                    attempts=attempt + 1,
                )
            self.sleep(delay)
            if ambiguous and before_retry is not None and not before_retry():
                raise RetryCancelledError(target)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(
        self,
        method: str,
        url: str,
        data: bytes | None,
        headers: Mapping[str, str],
        *,
        target: str,
        secrets: tuple[str, ...],
    ) -> tuple[HttpResponse | None, str | None, bool]:
        """(response, failure text, ambiguous): ambiguous when the server may have acted."""
        timed_out = f"timed out after {self.timeout_seconds:g} s"
        try:
            request = urllib.request.Request(url, data=data, headers=dict(headers), method=method)
            with self.opener.open(request, timeout=self.timeout_seconds) as raw:
                return _response(raw.status, raw.headers.items(), raw.read()), None, False
        except urllib.error.HTTPError as error:
            body = error.read() if error.fp is not None else b""
            response = _response(error.code, error.headers.items(), body)
            return response, None, response.status >= 500
        except TimeoutError:
            return None, timed_out, True
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                return None, timed_out, True
            reason = scrub(str(error.reason), secrets)
            # A refused connection never reached the server; others (reset) might have.
            ambiguous = not isinstance(error.reason, ConnectionRefusedError)
            return None, f"connection failed ({reason})", ambiguous
        except (OSError, http.client.HTTPException) as error:
            reason = scrub(f"{type(error).__name__}: {error}", secrets)
            return None, f"connection failed ({reason})", True
        except ValueError as error:
            # A malformed URL: urllib and http.client quote the URL in the message.
            raise HttpError(f"invalid URL ({type(error).__name__})", target=target) from None

    def _delay(self, attempt: int, response: HttpResponse | None) -> float | None:
        """Seconds to wait before the next attempt; None when the server wants too long."""
        backoff = min(self.max_backoff_seconds, self.backoff_seconds * 2**attempt)
        if response is None:
            return backoff
        wait = _retry_after_seconds(response)
        if wait is None:
            return backoff
        return None if wait > self.max_retry_after_seconds else max(wait, 0.0)


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would forward the Authorization header to another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _response(status: int, headers: Iterable[tuple[str, str]], body: bytes) -> HttpResponse:
    return HttpResponse(status, {name.lower(): value for name, value in headers}, body)


def _rate_limited(response: HttpResponse) -> bool:
    """GitHub answers a rate limit with 403 and Retry-After or x-ratelimit-remaining: 0."""
    return response.status == 403 and (
        response.header("retry-after") is not None
        or response.header("x-ratelimit-remaining") == "0"
    )


def _retryable(response: HttpResponse) -> bool:
    return (
        response.status >= 500
        or response.status in RETRYABLE_CLIENT_STATUS
        or _rate_limited(response)
    )


def _retry_after_seconds(response: HttpResponse) -> float | None:
    """Retry-After as seconds (delta or HTTP date), or GitHub's x-ratelimit-reset."""
    value = response.header("retry-after")
    if value is not None:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return (when - dt.datetime.now(dt.UTC)).total_seconds()
    reset = response.header("x-ratelimit-reset")
    if response.status == 403 and reset and reset.isdigit():
        return float(reset) - time.time()
    return None


def _excerpt(response: HttpResponse | None, secrets: Iterable[str]) -> str:
    if response is None or not response.body:
        return ""
    return f" ({scrub(response.text(), secrets)})"
