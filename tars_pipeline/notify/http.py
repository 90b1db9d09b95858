"""A small JSON-over-HTTP client for notifications: timeouts, retries, no leaked secrets.

Why not a bare `requests.post`:

- A Day-7 run should survive a webhook that hiccups, so transient failures (connection
  errors, timeouts, HTTP 5xx, 408, 429 and GitHub's rate-limit 403) are retried with
  exponential backoff, honouring `Retry-After` when the server sends one (as Slack and
  GitHub do). Other 4xx answers are the caller's mistake (bad token, archived channel) and
  are not retried: repeating them only burns rate limit.
- A Slack webhook URL *is* a secret (the token is its path) and so is a GitHub token, so
  errors name the target by a redacted label, scrub every secret the caller names from
  response bodies and reasons, and never chain the original exception (whose text, like
  urllib3's `MaxRetryError`, may hold the URL).
- Redirects are not followed: the `Authorization` header would go wherever `Location` says.

The retrying is urllib3's `Retry` on a `requests.Session`, as in the Prometheus source
(`requests` is a dependency already): it owns the attempt loop, the backoff and the
`Retry-After` parsing. `_Retry` adds only what it cannot be configured to do: retry a 403
when its headers say rate limit, give up at once on a `Retry-After` too long to wait, and
ask the caller before repeating a request that may have landed (see `before_retry`).
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
from urllib3.exceptions import InvalidHeader, MaxRetryError, NewConnectionError, ResponseError
from urllib3.util.retry import Retry

from tars_pipeline import __version__

USER_AGENT = f"tars-observability/{__version__}"
# 403 only with rate-limit headers (GitHub's secondary rate limit); see `_retryable`.
RETRYABLE_CLIENT_STATUS = frozenset({408, 429})
RETRY_STATUSES = RETRYABLE_CLIENT_STATUS | frozenset(range(500, 600))
BODY_EXCERPT_CHARS = 300
REDACTED = "***"
_URL_ERRORS = (
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidURL,
)


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
    """The request in flight, as its retry policy sees it (urllib3 passes no context)."""

    target: str
    before_retry: Callable[[], bool] | None
    attempts: int = 1
    waited_too_long: bool = False


_CALL: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("call", default=None)


@dataclass
class HttpClient:
    """POST/GET JSON with a per-attempt timeout and bounded retries.

    `retries` is how many times a failed attempt is repeated (so at most retries + 1
    requests). Attempt n waits `backoff_seconds * 2**n` (capped at `max_backoff_seconds`)
    unless the server's `Retry-After` says otherwise; a `Retry-After` longer than
    `max_retry_after_seconds` fails at once rather than block a Dagster step for an hour.
    No jitter: one TARS run sends a handful of requests, there is no herd to spread.
    `sleep` is how the waits are waited (a test records them instead).
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
            # POST and PATCH too: webhooks are idempotent by design, and GitHub's issue POST
            # is deduplicated by `before_retry`.
            allowed_methods=Retry.DEFAULT_ALLOWED_METHODS | {"POST", "PATCH"},
            respect_retry_after_header=True,
            raise_on_status=False,  # the last answer comes back, with its status and text
        )
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self.session.auth = _no_netrc

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
        timeout, a connection lost after sending): returning False means the first attempt
        did land, and raises RetryCancelledError instead of sending a twin.
        """
        secrets = tuple(secrets)
        data, all_headers = None, dict(headers or {})
        if json_body is not None:
            data = json.dumps(json_body, allow_nan=False, ensure_ascii=False).encode("utf-8")
            all_headers.setdefault("Content-Type", "application/json; charset=utf-8")
        call = _Call(target, before_retry)
        token = _CALL.set(call)
        # Errors are raised after the `try`, never inside an `except`: no chained exception
        # (requests and urllib3 quote the URL in theirs).
        failure = None
        try:
            raw = self.session.request(
                method,
                url,
                data=data,
                headers=all_headers,
                timeout=self.timeout_seconds,
                allow_redirects=False,
            )
        except _URL_ERRORS as error:
            failure = f"invalid URL ({type(error).__name__})"
        except (OSError, urllib3.exceptions.HTTPError) as error:  # requests' errors are OSErrors
            reason = _reason(error, self.timeout_seconds, secrets)
            failure = f"{reason} after {call.attempts} attempt(s)"
        except ValueError as error:  # a header value http.client cannot encode, say
            failure = f"invalid request ({type(error).__name__})"
        finally:
            _CALL.reset(token)
        if failure is not None:
            raise HttpError(failure, target=target, attempts=call.attempts)
        lowered = {name.lower(): value for name, value in raw.headers.items()}
        response = HttpResponse(raw.status_code, lowered, raw.content)
        status = response.status
        if 200 <= status < 300:
            return response
        excerpt = _excerpt(response, secrets)
        if not _retryable(status, response.headers):
            why = (
                "a redirect, not followed: set the final URL"
                if 300 <= status < 400
                else "not retried: a client error does not go away by repeating it"
            )
            message = f"HTTP {status}{excerpt} ({why})"
        elif call.waited_too_long:
            message = (
                f"HTTP {status}{excerpt}; the server asked to wait longer than "
                f"{self.max_retry_after_seconds:.0f} s, giving up after {call.attempts} attempt(s)"
            )
        else:
            message = f"HTTP {status}{excerpt} after {call.attempts} attempt(s)"
        raise HttpError(message, target=target, status=status, attempts=call.attempts)


class _Retry(Retry):
    """urllib3's Retry with the client's waits, GitHub's rate-limit 403, and `before_retry`."""

    def __init__(self, *args: Any, client: HttpClient, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.client = client

    def new(self, **kw: Any) -> Self:
        return super().new(client=self.client, **kw)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        # A 403 is retried only as GitHub's rate limit: `increment` reads its headers.
        return super().is_retry(method, status_code, has_retry_after) or (
            status_code == 403 and self._is_method_retryable(method)
        )

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Self:
        call = _CALL.get()
        if response is not None:
            wait = self.get_retry_after(response)
            too_long = wait is not None and wait > self.client.max_retry_after_seconds
            if too_long or not _retryable(response.status, response.headers):
                if call is not None:
                    call.waited_too_long = too_long
                # With raise_on_status=False, urllib3 hands this answer back as the result.
                raise MaxRetryError(_pool, url, ResponseError(f"HTTP {response.status}"))
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if call is not None:
            call.attempts += 1
        return retry

    def get_backoff_time(self) -> float:
        """`backoff_factor * 2**(n-1)` before retry n: unlike urllib3's, the first one waits."""
        return min(self.backoff_max, self.backoff_factor * 2 ** (len(self.history) - 1))

    def get_retry_after(self, response: Any) -> float | None:
        """Retry-After (seconds or a date; None if unreadable), else a 403's x-ratelimit-reset."""
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
        self.client.sleep(self.get_backoff_time() if wait is None else wait)
        call = _CALL.get()
        if call is None or call.before_retry is None or not self._ambiguous():
            return
        try:
            landed = not call.before_retry()
        except Exception as error:
            error.__context__ = None  # called inside urllib3's `except`: do not chain its error
            raise
        if landed:
            raise RetryCancelledError(call.target) from None

    def _ambiguous(self) -> bool:
        """Whether the failed attempt may have reached the server (a 5xx, a timeout, a reset)."""
        last = self.history[-1]
        if last.error is not None:
            return not self._is_connection_error(last.error)  # not even connected
        return last.status is None or last.status >= 500


def _no_netrc(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """Session auth that adds nothing: without one, requests sends ~/.netrc credentials."""
    return request


def _retryable(status: int, headers: Mapping[str, str]) -> bool:
    """5xx, 408, 429, and GitHub's rate limit: 403 with Retry-After or x-ratelimit-remaining 0."""
    if status == 403:
        return headers.get("retry-after") is not None or headers.get("x-ratelimit-remaining") == "0"
    return status in RETRY_STATUSES


def _reason(error: Exception, timeout_seconds: float, secrets: Iterable[str]) -> str:
    """Why the last attempt failed, from the error urllib3 gave up on (its text has no URL)."""
    cause = error.args[0] if error.args and isinstance(error.args[0], Exception) else error
    if isinstance(cause, MaxRetryError):
        cause = cause.reason or cause
    if isinstance(error, requests.Timeout) or (
        isinstance(cause, urllib3.exceptions.TimeoutError)
        and not isinstance(cause, NewConnectionError)
    ):
        return f"timed out after {timeout_seconds:g} s"
    if isinstance(cause, NewConnectionError) and cause.__cause__ is not None:
        cause = cause.__cause__  # urllib3's own text starts with the connection's repr
    return f"connection failed ({scrub(f'{type(cause).__name__}: {cause}', secrets)})"


def _excerpt(response: HttpResponse, secrets: Iterable[str]) -> str:
    return f" ({scrub(response.text(), secrets)})" if response.body else ""
