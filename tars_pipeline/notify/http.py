"""A small JSON-over-HTTP client for notifications: timeouts, retries, no leaked secrets.

Why not a bare `requests.post`:

- A Day-7 run should survive a webhook that hiccups, so transient failures (connection
  errors, timeouts, HTTP 5xx, 408, 429 and GitHub's rate-limit 403) are retried with
  exponential backoff, honouring `Retry-After` when the server sends one (as Slack and
  GitHub do). Other 4xx answers are the caller's mistake (bad token, archived channel) and
  are not retried: repeating them only burns rate limit.
- A Slack webhook URL *is* a secret (the token is its path) and so is a GitHub token, so
  errors name the target by a redacted label, scrub every secret the caller names from
  response bodies and reasons, and never chain the original exception (whose text may
  hold the URL). Redirects are not followed: `Authorization` would go to any `Location`.

The retrying is urllib3's `Retry` on a `requests.Session`, as in the Prometheus source:
`requests` is a dependency already, and Retry owns the attempt loop, the backoff and the
`Retry-After` parsing. `_Retry` adds only what configuration cannot: GitHub's rate-limit
403, giving up on a `Retry-After` too long to wait, and `before_retry`.
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader, MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from tars_pipeline import __version__

USER_AGENT = f"tars-observability/{__version__}"
RETRYABLE_CLIENT_STATUS = frozenset({408, 429})
RETRY_STATUSES = RETRYABLE_CLIENT_STATUS | frozenset(range(500, 600))
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
class _Call:
    """The request in flight, for its `_Retry` (urllib3 hands the policy no context)."""

    target: str
    before_retry: Callable[[], bool] | None
    attempts: int = 1


_CALL: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("call", default=None)


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
    session: requests.Session = field(init=False, repr=False)

    def __post_init__(self) -> None:
        retry = _Retry(
            client=self,
            total=self.retries,
            redirect=0,
            backoff_factor=self.backoff_seconds,
            backoff_max=self.max_backoff_seconds,
            status_forcelist=RETRY_STATUSES,
            # Webhooks are idempotent by design, GitHub's issue POST is deduplicated (below).
            allowed_methods=Retry.DEFAULT_ALLOWED_METHODS | {"POST", "PATCH"},
            respect_retry_after_header=True,
            raise_on_status=False,  # the last answer comes back, with its status and text
        )
        self.session = requests.Session()
        self.session.mount("http://", adapter := HTTPAdapter(max_retries=retry))
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self.session.auth = lambda request: request  # adds nothing, but keeps ~/.netrc out

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
        timeout, a connection lost once connected): returning False means the first
        attempt did land, and raises RetryCancelledError instead of sending a twin.
        """
        secrets = tuple(secrets)
        data, all_headers = None, dict(headers or {})
        if json_body is not None:
            data = json.dumps(json_body, allow_nan=False, ensure_ascii=False).encode("utf-8")
            all_headers.setdefault("Content-Type", "application/json; charset=utf-8")
        call = _Call(target, before_retry)
        token = _CALL.set(call)
        failure = None  # HttpError is raised after the `try`, so it chains no exception
        try:
            raw = self.session.request(
                method,
                url,
                data=data,
                headers=all_headers,
                timeout=self.timeout_seconds,
                allow_redirects=False,
            )
        except ValueError as error:  # MissingSchema, InvalidURL, InvalidHeader: quote it
            failure = f"invalid URL or header ({type(error).__name__})"
        except (OSError, urllib3.exceptions.HTTPError) as error:  # requests' are OSErrors
            reason = _reason(error, self.timeout_seconds, secrets)
            failure = f"{reason} after {call.attempts} attempt(s)"
        finally:
            _CALL.reset(token)
        if failure is not None:
            raise HttpError(failure, target=target, attempts=call.attempts)
        lowered = {name.lower(): value for name, value in raw.headers.items()}
        response = HttpResponse(raw.status_code, lowered, raw.content)
        status = response.status
        if 200 <= status < 300:
            return response
        message = f"HTTP {status}{_excerpt(response, secrets)}"
        if 300 <= status < 400:
            message += " (a redirect, not followed: set the final URL)"
        elif not _retryable(status, response.headers):
            message += " (not retried: a client error does not go away by repeating it)"
        elif call.attempts <= self.retries:  # urllib3 stopped early: see `_Retry.increment`
            message += (
                f"; the server asked to wait longer than {self.max_retry_after_seconds:.0f} s, "
                f"giving up after {call.attempts} attempt(s)"
            )
        else:
            message += f" after {call.attempts} attempt(s)"
        raise HttpError(message, target=target, status=status, attempts=call.attempts)


class _Retry(Retry):
    """urllib3's Retry, waiting through `HttpClient.sleep` (the first retry too)."""

    def __init__(self, *args: Any, client: HttpClient, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.client = client

    def new(self, **kw: Any) -> Self:
        return super().new(client=self.client, **kw)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        # Every 403 goes on to `increment`, which has the headers that tell a rate limit.
        return status_code == 403 or super().is_retry(method, status_code, has_retry_after)

    def increment(
        self, method: Any = None, url: Any = None, response: Any = None, *args: Any, **kwargs: Any
    ) -> Self:
        if response is not None and (
            not _retryable(response.status, response.headers)
            or (self.get_retry_after(response) or 0) > self.client.max_retry_after_seconds
        ):  # with raise_on_status=False, urllib3 then returns this answer instead of raising
            raise MaxRetryError(None, url, ResponseError(f"HTTP {response.status}"))
        retry = super().increment(method, url, response, *args, **kwargs)
        if call := _CALL.get():
            call.attempts += 1
        return retry

    def get_backoff_time(self) -> float:
        return min(self.backoff_max, self.backoff_factor * 2 ** (len(self.history) - 1))

    def get_retry_after(self, response: Any) -> float | None:
        """Retry-After (None when unreadable), else the x-ratelimit-reset of a GitHub 403."""
        try:
            seconds = super().get_retry_after(response)
        except InvalidHeader:
            return None
        reset = response.headers.get("x-ratelimit-reset", "")
        if seconds is None and response.status == 403 and reset.isdigit():
            return max(float(reset) - time.time(), 0.0)
        return seconds

    def sleep(self, response: Any = None) -> None:
        wait = self.get_retry_after(response) if response is not None else None
        self.client.sleep(float(self.get_backoff_time() if wait is None else wait))
        call, last = _CALL.get(), self.history[-1]
        # Ambiguous, the request may have landed: a 5xx, or an error once connected.
        connected = last.error is None or not self._is_connection_error(last.error)
        if call is None or call.before_retry is None or (last.status or 500) < 500 or not connected:
            return
        try:
            landed = not call.before_retry()
        except Exception as error:
            error.__context__ = None  # raised inside urllib3's `except`: chain not its error
            raise
        if landed:
            raise RetryCancelledError(call.target) from None


def _retryable(status: int, headers: Mapping[str, str]) -> bool:
    """5xx, 408, 429, and GitHub's rate limit: 403 with Retry-After or x-ratelimit-remaining 0."""
    if status == 403:
        return headers.get("retry-after") is not None or headers.get("x-ratelimit-remaining") == "0"
    return status in RETRY_STATUSES


def _reason(error: BaseException, timeout_seconds: float, secrets: Iterable[str]) -> str:
    """The root cause, the socket's own error: requests' and urllib3's texts quote the URL."""
    while (inner := error.__cause__ or error.__context__) is not None:
        error = inner
    if isinstance(error, TimeoutError):
        return f"timed out after {timeout_seconds:g} s"
    return f"connection failed ({scrub(f'{type(error).__name__}: {error}', secrets)})"


def _excerpt(response: HttpResponse, secrets: Iterable[str]) -> str:
    return f" ({scrub(response.text(), secrets)})" if response.body else ""
