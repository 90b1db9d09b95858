"""Prometheus source: KPI samples from a Prometheus-compatible HTTP API.

Works with Prometheus and the backends that serve its query API (Thanos, Mimir/Cortex,
VictoriaMetrics). Each KPI's PromQL template is filled in per service and run as a range
query over the day's window at the configured step, so one (service, KPI) query returns one
series: the samples of the input contract (base.py).

What this module takes care of, because Prometheus will not:

- **Escaping.** `{service}` is a label value from the source or the config; it is escaped
  for a PromQL string literal, so a name containing `"` or `}` cannot change the query.
- **The 11,000-points limit.** Prometheus refuses a range query with more than 11,000
  points per series; a long window or a short step is split into chunks that meet exactly
  (query_range includes both ends), and merged without duplicate or missing timestamps.
- **Values.** The API returns values as strings, `"NaN"` and `"+Inf"` included. Those are
  dropped and reported as gaps (coverage), never turned into zeros.
- **Faults.** Connection errors, timeouts, HTTP 429 and 5xx are retried with exponential
  backoff; whatever still fails becomes one `TarsUserError` that names the setting or the
  KPI to fix. Nothing is stored for a day whose fetch failed: the asset writes only after
  `fetch_day` returns.

The HTTP client is prometheus-api-client's `PrometheusConnect`, configured from the
validated `source:` block itself (`PrometheusSourceConfig`, with --prometheus-url already
applied by `with_prometheus_url`). The config only *names* the environment variables that
hold credentials; they are read when a client connects and kept nowhere else, so nothing
Dagster serialises or logs (resources, run config, the config object) holds a secret.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from pydantic import ValidationError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tars_pipeline import __version__
from tars_pipeline.config import KpiDefinition, PrometheusSourceConfig, Release, TarsConfig
from tars_pipeline.errors import TarsUserError
from tars_pipeline.notify.http import redact_url, scrub
from tars_pipeline.sources.base import (
    DayFetch,
    coverage_of,
    empty_samples,
    expected_points,
)

MAX_POINTS_PER_SERIES = 11_000
"""Prometheus's hard limit on the points of one series in one range query."""
RETRY_STATUSES = (429, 500, 502, 503, 504)
RETRY_AFTER_CAP_SECONDS = 30.0
"""A server asking for a longer pause than this (Retry-After) is not waited for longer."""
PLACEHOLDER = re.compile(r"\{(service|service_label|rate_window)\}")
"""The placeholders of a KPI query; any other `{...}` is PromQL's own (label matchers)."""
URL_SETTING = "source.url / --prometheus-url"
"""Where a wrong URL is fixed, for error messages: tars.yaml, or a CLI's flag."""

Progress = Callable[[str], None]
Warn = Callable[[str], None]


# --- Pure helpers -------------------------------------------------------------------------------


def promql_string(value: str) -> str:
    """`value` escaped for the inside of a double-quoted PromQL string literal.

    PromQL strings follow Go's escaping: a backslash, a double quote and a line break must be
    escaped, anything else stands for itself. Escaping the backslash first keeps a name like
    `a\\"b` from smuggling in a closing quote.
    """
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def render_query(template: str, *, service: str, service_label: str, rate_window: str) -> str:
    """The KPI's PromQL for one service.

    `{service}` becomes the escaped service name; `{service_label}` and `{rate_window}` come
    from the validated source settings. One pass with a function replacement, so a service
    name that itself contains `{rate_window}` is not expanded again.
    """
    values = {
        "service": promql_string(service),
        "service_label": service_label,
        "rate_window": rate_window,
    }
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def range_chunks(
    start: dt.datetime, points: int, step_seconds: int, max_points: int
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The (first, last) evaluation times of each range query, both inclusive.

    Prometheus evaluates `start, start + step, ...` up to and including `end`, so a chunk
    of n points ends at `first + (n - 1) * step` and the next chunk starts one step later:
    consecutive chunks neither overlap nor leave a gap.
    """
    if points <= 0:
        return []
    per_chunk = max(1, min(max_points, MAX_POINTS_PER_SERIES))
    step = dt.timedelta(seconds=step_seconds)
    return [
        (start + first * step, start + (min(first + per_chunk, points) - 1) * step)
        for first in range(0, points, per_chunk)
    ]


def parse_values(values: Sequence[Sequence[Any]]) -> tuple[np.ndarray, np.ndarray]:
    """A matrix series' `[[ts, "value"], ...]` as (epoch milliseconds, float values).

    Values stay as parsed: `"NaN"`, `"+Inf"` and `"-Inf"` become nan/inf, for the caller to
    drop and count. Timestamps are rounded to milliseconds, Prometheus's own resolution.
    """
    if not values:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    stamps = np.asarray([point[0] for point in values], dtype=np.float64)
    numbers = np.asarray([point[1] for point in values], dtype=np.float64)
    return np.rint(stamps * 1000).astype(np.int64), numbers


def merge_chunks(
    parts: Sequence[tuple[np.ndarray, np.ndarray]], start_ms: int, end_ms: int
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate chunk results in time order, one value per timestamp, inside [start, end)."""
    if not parts:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    stamps = np.concatenate([part[0] for part in parts])
    values = np.concatenate([part[1] for part in parts])
    if len(stamps) > 1 and not (np.diff(stamps) > 0).all():  # one chunk is sorted, unique
        stamps, first = np.unique(stamps, return_index=True)  # sorted; keeps the first
        values = values[first]
    inside = (stamps >= start_ms) & (stamps < end_ms)
    return stamps[inside], values[inside]


def with_prometheus_url(config: TarsConfig, url: str) -> TarsConfig:
    """The config with its metric source pointed at `url` (the CLIs' --prometheus-url).

    A Prometheus source keeps its other settings (auth variables, headers, TLS, rate
    window); any other source is replaced by a Prometheus source with the defaults, so the
    seed's `tars-ga-kpi --prometheus-url http://prometheus:9090` works with the bundled
    snapshot config too.
    """
    settings = (
        config.source.model_dump(exclude={"url"})
        if isinstance(config.source, PrometheusSourceConfig)
        else {}
    )
    try:
        source = PrometheusSourceConfig(**settings, url=url)
    except ValidationError as error:
        message = "; ".join(item["msg"].removeprefix("Value error, ") for item in error.errors())
        shown = redact_url(url, keep_path=True)
        raise TarsUserError(f"{message} (got {shown!r})", where="--prometheus-url") from None
    return config.model_copy(update={"source": source})


PROGRESS_TAG = "tars/progress"
"""Run tag the CLIs set to "terminal" when their stderr is a TTY (see `run_progress`)."""


def stderr_progress(message: str) -> None:
    print(f"  … {message}", file=sys.stderr, flush=True)


def terminal_progress() -> Progress | None:
    """One line per KPI fetch on a terminal; nothing when stderr is a log file or a pipe."""
    return stderr_progress if sys.stderr.isatty() else None


def run_progress(tags: Mapping[str, str]) -> Progress | None:
    """Progress for a Dagster step: on only when the CLI that launched the run is on a TTY.

    Inside a step Dagster has pointed stderr at the compute log (and mirrors it back to the
    terminal), so `isatty()` is always false there; the CLI decides before the run instead.
    """
    return stderr_progress if tags.get(PROGRESS_TAG) == "terminal" else None


# --- Credentials --------------------------------------------------------------------------------


def _from_env(name: str | None) -> str | None:
    """The value of the environment variable `name`; None when unnamed, unset or empty."""
    return (os.environ.get(name) or None) if name else None


def _resolve_ca_bundle(source: PrometheusSourceConfig, base_dir: Path | None) -> Path | None:
    """`source.ca_bundle`, a relative path taken from `base_dir` (tars.yaml's folder)."""
    ca_bundle = source.ca_bundle
    if ca_bundle is not None and not ca_bundle.is_absolute() and base_dir is not None:
        return base_dir / ca_bundle
    return ca_bundle


class _BrokenBodyError(Exception):
    """The server's answer ended before its body did."""


class _CappedRetry(Retry):
    """urllib3's Retry, but a Retry-After header cannot stall a run for an hour."""

    def get_retry_after(self, response: Any) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, RETRY_AFTER_CAP_SECONDS)


# --- The HTTP client -----------------------------------------------------------------------------


class PrometheusClient:
    """`PrometheusConnect`, configured from the source config, with errors a user can act on.

    Credentials are read from the variables the config names when the client is made, and
    go only to the HTTP session; the client itself keeps which kind was sent, not its value.

    prometheus-api-client reports an HTTP error as an exception whose text holds the status
    and a bytes repr of the body; a response hook keeps the last response so the status and
    Prometheus's own `error` text can be read properly instead.
    """

    def __init__(self, settings: PrometheusSourceConfig, *, base_dir: Path | None = None):
        self.settings = settings
        self.url = settings.url.rstrip("/")
        # The last response of *this thread*: a day's series are fetched concurrently.
        self._local = threading.local()
        bearer_token = _from_env(settings.bearer_token_env)
        username = _from_env(settings.username_env)
        password = _from_env(settings.password_env)
        if bearer_token and username:
            raise TarsUserError(
                "both a bearer token and basic-auth credentials are set",
                where=f"${settings.bearer_token_env} and ${settings.username_env}",
                remedy="set only one of them for this Prometheus",
            )
        # Which credentials go with each request, for error messages; never their value.
        self.sends: str | None = "bearer" if bearer_token else "basic" if username else None
        # What no message may quote: a server (or a proxy) that echoes the request back in
        # its error body would otherwise put the token on stderr and in the event log.
        # Kept in a closure, not as an attribute: the client's repr and vars never hold one.
        # ~/.netrc credentials go out as requests would send them, and are scrubbed too.
        netrc_auth = None if bearer_token or username else requests.utils.get_netrc_auth(self.url)
        netrc_user, netrc_password = netrc_auth or (None, None)
        self._scrub = _scrubber(
            _secret_forms(bearer_token, username or netrc_user, password or netrc_password)
        )
        if netrc_auth:
            self.sends = "netrc"
        ca_bundle = _resolve_ca_bundle(settings, base_dir)
        if settings.verify_tls and ca_bundle is not None and not ca_bundle.is_file():
            raise TarsUserError(
                f"CA bundle {ca_bundle} does not exist",
                where="source.ca_bundle",
                remedy="point it at the PEM file of the CA that signed the server's certificate",
            )
        session = requests.Session()
        # requests' `verify`: a CA bundle path verifies against it, True against the system
        # store, False not at all (only when verify_tls is explicitly off).
        session.verify = (str(ca_bundle) if ca_bundle else True) if settings.verify_tls else False
        session.hooks["response"].append(self._remember)
        # What requests reads from the environment on every request (HTTPS_PROXY/NO_PROXY,
        # REQUESTS_CA_BUNDLE, ~/.netrc) is the same for every query to this one URL: read
        # once here, with requests' own rules. Per request it walked os.environ twice, a
        # third of a query's Python time, under the GIL the concurrent queries share.
        environment = session.merge_environment_settings(self.url, {}, None, session.verify, None)
        session.proxies = environment["proxies"]
        session.verify = environment["verify"]
        session.trust_env = False
        headers = {"User-Agent": f"tars-observability/{__version__}", **settings.headers}
        if bearer_token:
            headers["Authorization"] = f"Bearer {bearer_token}"
        retry = _CappedRetry(
            total=settings.retries,
            connect=settings.retries,
            read=settings.retries,
            status=settings.retries,
            other=settings.retries,
            backoff_factor=settings.retry_backoff_seconds,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "POST"}),
            respect_retry_after_header=True,
            raise_on_status=False,  # the last 5xx comes back as a response, with its text
        )
        self.connection = PrometheusConnect(
            url=self.url,
            headers=headers,
            auth=(username, password or "") if username else netrc_auth,
            retry=retry,
            session=session,
            timeout=settings.timeout_seconds,  # type: ignore[arg-type]  # float is fine
        )
        # The library's adapter keeps 10 connections; concurrent queries keep one each.
        session.mount(
            self.url,
            HTTPAdapter(
                max_retries=retry,
                pool_connections=1,
                pool_maxsize=max(10, settings.max_concurrent_queries),
            ),
        )

    @property
    def _last_response(self) -> requests.Response | None:
        return getattr(self._local, "response", None)

    @_last_response.setter
    def _last_response(self, response: requests.Response | None) -> None:
        self._local.response = response

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last_response = response

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls --

    def query_range(
        self,
        query: str,
        first: dt.datetime,
        last: dt.datetime,
        step_seconds: int,
        *,
        kpi: KpiDefinition,
        service: str,
    ) -> list[dict[str, Any]]:
        """`query` evaluated at first, first + step, ..., last: a list of matrix series."""
        return self._call(
            lambda: self.connection.custom_query_range(
                query, start_time=first, end_time=last, step=str(step_seconds)
            ),
            doing=f"fetching KPI {kpi.name!r} for service {service!r}",
            kpi=kpi,
            query=query,
        )

    def label_values(
        self, label: str, match: str, start: dt.datetime, end: dt.datetime
    ) -> list[str]:
        """Values of `label` on the series `match` selects between start and end."""
        params = {"match[]": match, "start": start.timestamp(), "end": end.timestamp()}
        values = self._call(
            lambda: self.connection.get_label_values(label_name=label, params=params),
            doing=f"listing the services (values of {label!r} on {match})",
            kpi=None,
            query=match,
        )
        return [str(value) for value in values or []]

    def _call(self, request: Callable[[], Any], *, doing: str, kpi, query: str) -> Any:
        try:
            return self._resumed(request, doing=doing, kpi=kpi, query=query)
        except TarsUserError as error:
            error.args = tuple(self._scrub(str(arg)) for arg in error.args)
            raise

    def _resumed(self, request: Callable[[], Any], *, doing: str, kpi, query: str) -> Any:
        """`request`, again when the answer broke off mid-body (a Prometheus restarting,
        a proxy cut): urllib3 retries a failed connection or status, but the body is read
        after it has handed the response over, so that break is retried here, with the
        same budget and backoff."""
        for attempt in range(self.settings.retries + 1):
            try:
                return self._request(request, doing=doing, kpi=kpi, query=query)
            except _BrokenBodyError:
                if attempt == self.settings.retries:
                    raise TarsUserError(
                        f"the answer from {self.url} broke off mid-response while {doing} "
                        f"({self._attempts()})",
                        where="source.retries",
                        remedy="the server restarted or a proxy cut the connection: retry "
                        "later, or allow more retries",
                    ) from None
                time.sleep(self.settings.retry_backoff_seconds * 2**attempt)
        raise AssertionError("unreachable")

    def _request(self, request: Callable[[], Any], *, doing: str, kpi, query: str) -> Any:
        self._last_response = None
        try:
            return request()
        except PrometheusApiClientException:
            raise self._http_error(doing, kpi, query) from None
        except requests.exceptions.JSONDecodeError:
            raise TarsUserError(
                f"{self.url} answered, but not with Prometheus API JSON ({doing})",
                where=URL_SETTING,
                remedy="use the base URL of the query API, e.g. http://prometheus:9090 "
                "(Mimir and some proxies serve it under a path such as /prometheus)",
            ) from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            raise _BrokenBodyError from None
        except requests.exceptions.RequestException as error:
            if any(type(item).__name__ == "IncompleteRead" for item in _exception_chain(error)):
                raise _BrokenBodyError from None
            raise self._transport_error(error, doing) from None
        except (KeyError, TypeError) as error:
            raise TarsUserError(
                f"unexpected answer from {self.url} ({doing}): missing {error}",
                where=URL_SETTING,
                remedy="check that the URL is a Prometheus-compatible query API",
            ) from None

    # -- error translation --

    def _attempts(self) -> str:
        tries = self.settings.retries + 1
        return f"{tries} attempt{'s' if tries != 1 else ''}"

    def _credentials_note(self) -> str:
        settings = self.settings
        if self.sends == "bearer":
            return f"a bearer token from ${settings.bearer_token_env} was sent"
        if self.sends == "basic":
            return f"basic auth as ${settings.username_env} was sent"
        if self.sends == "netrc":
            return "basic auth from ~/.netrc ($NETRC) was sent"
        names = " or ".join(
            f"${name}"
            for name in (settings.bearer_token_env, settings.username_env)
            if name is not None
        )
        return f"no credentials were sent ({names or 'no credential variables'} not set)"

    def _http_error(self, doing: str, kpi: KpiDefinition | None, query: str) -> TarsUserError:
        response = self._last_response
        if response is None:
            return TarsUserError(f"Prometheus request failed while {doing}", where=self.url)
        status = response.status_code
        error_type, text = "", response.text.strip()[:500]
        try:
            body = response.json()
            error_type = str(body.get("errorType", ""))
            text = str(body.get("error", text))
        except ValueError:
            pass
        detail = f"HTTP {status}{f' {error_type}' if error_type else ''}: {text or response.reason}"
        if status in (400, 422) and kpi is not None:
            return TarsUserError(
                f"Prometheus rejected the query of KPI {kpi.name!r} ({detail})\n  query: {query}",
                where=f"kpis[{kpi.name}].query",
                remedy="fix the PromQL in tars.yaml (try it in the Prometheus UI first); "
                "placeholders: {service}, {service_label}, {rate_window}",
            )
        if status in (401, 403):
            return TarsUserError(
                f"Prometheus at {self.url} refused the request ({detail}); "
                f"{self._credentials_note()}",
                where="source.bearer_token_env / source.username_env",
                remedy="export the token (or user and password) in the variables named there; "
                "a multi-tenant backend may also need source.headers.X-Scope-OrgID",
            )
        if status == 404:
            return TarsUserError(
                f"no Prometheus query API at {self.url} ({detail})",
                where=URL_SETTING,
                remedy="use the API's base URL: http://host:9090 for Prometheus, "
                "the /prometheus prefix for Mimir",
            )
        if status in RETRY_STATUSES:
            about = f" for KPI {kpi.name!r}" if kpi is not None else ""
            return TarsUserError(
                f"Prometheus at {self.url} kept failing{about} ({detail}) after {self._attempts()}",
                where="source.retries / source.timeout_seconds",
                remedy="the server is overloaded or down: retry later, or allow more retries "
                "or a longer timeout",
            )
        return TarsUserError(
            f"Prometheus at {self.url} answered {detail} while {doing}", where=self.url
        )

    def _transport_error(self, error: BaseException, doing: str) -> TarsUserError:
        chain = _exception_chain(error)
        names = {type(item).__name__ for item in chain}
        host = urlsplit(self.url).netloc
        innermost = str(chain[-1]) if chain else str(error)
        if isinstance(error, requests.exceptions.SSLError) or names & {
            "SSLError",
            "SSLCertVerificationError",
            "CertificateError",
        }:
            ssl_text = next(
                (str(item) for item in reversed(chain) if "SSL" in type(item).__name__),
                innermost,
            )
            return TarsUserError(
                f"TLS handshake with {host} failed while {doing}: {ssl_text}",
                where="source.url / source.ca_bundle / source.verify_tls",
                remedy="for a private CA set source.ca_bundle to its PEM file; check the "
                "scheme (https to a plain-http port fails like this)",
            )
        if names & {"NameResolutionError", "gaierror"}:
            return TarsUserError(
                f"cannot resolve the host {urlsplit(self.url).hostname!r} while {doing}",
                where=URL_SETTING,
                remedy="check the host name in the URL and the machine's DNS",
            )
        if isinstance(error, requests.exceptions.Timeout) or names & {
            "ReadTimeoutError",
            "ConnectTimeoutError",
            "TimeoutError",
        }:
            return TarsUserError(
                f"no answer from {self.url} within {self.settings.timeout_seconds:g} s "
                f"({self._attempts()}) while {doing}",
                where="source.timeout_seconds",
                remedy="raise source.timeout_seconds, make the query cheaper, or check the "
                "server's load",
            )
        if names & {"NewConnectionError", "ConnectionRefusedError"}:
            return TarsUserError(
                f"cannot connect to Prometheus at {host}: connection refused "
                f"({self._attempts()}) while {doing}",
                where=URL_SETTING,
                remedy="check that Prometheus is running and listening at that address",
            )
        return TarsUserError(
            f"request to {self.url} failed while {doing}: {innermost}",
            where=URL_SETTING,
        )


def _scrubber(secrets: tuple[str, ...]) -> Callable[[str], str]:
    return lambda text: scrub(text, secrets)


def _secret_forms(
    bearer_token: str | None, username: str | None, password: str | None
) -> tuple[str, ...]:
    """Every form a credential can take on the wire: the token, the password, and basic
    auth's `user:password` and its base64 (the username alone is not a secret)."""
    forms = [bearer_token, password]
    if username:
        pair = f"{username}:{password or ''}"
        forms += [pair, base64.b64encode(pair.encode()).decode()]
    return tuple(form for form in forms if form)


def _exception_chain(error: BaseException) -> list[BaseException]:
    """The error and every error inside it (causes, urllib3 reasons, wrapped args)."""
    seen: list[BaseException] = []
    pending: list[Any] = [error]
    while pending:
        item = pending.pop(0)
        if not isinstance(item, BaseException) or any(item is known for known in seen):
            continue
        seen.append(item)
        pending.extend([getattr(item, "reason", None), item.__cause__, item.__context__])
        pending.extend(arg for arg in item.args if isinstance(arg, BaseException))
    return seen


# --- The metric source ---------------------------------------------------------------------------


class PrometheusSource:
    """KPI samples from Prometheus: one range query per (KPI, service), chunked."""

    def __init__(
        self,
        settings: PrometheusSourceConfig,
        *,
        base_dir: Path | None = None,
        progress: Progress | None = None,
        warn: Warn | None = None,
    ):
        self.settings = settings
        self.base_dir = base_dir
        self.progress = progress
        self.warn = warn or (lambda message: None)

    def client(self) -> PrometheusClient:
        """A connection for one fetch; credentials are read from the environment now."""
        return PrometheusClient(self.settings, base_dir=self.base_dir)

    def fetch_day(
        self,
        release: Release,
        start: dt.datetime,
        end: dt.datetime,
        kpis: Sequence[KpiDefinition],
        step_seconds: int,
    ) -> DayFetch:
        points = expected_points(start, end, step_seconds)
        day = release.day_of(start)
        start_ms, end_ms = _epoch_ms(start), _epoch_ms(end)
        series: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        with self.client() as client:
            services = list(release.services) or self.discover_services(client, release, start, end)
            for kpi in kpis:
                if not kpi.query.strip():
                    self.warn(f"KPI {kpi.name!r} has no query (kpis[{kpi.name}].query): no data")
            queried = [kpi for kpi in kpis if kpi.query.strip()]
            tasks = [(kpi, service) for kpi in queried for service in services]

            def fetch(task: tuple[KpiDefinition, str]) -> tuple[np.ndarray, np.ndarray]:
                kpi, service = task
                return self.fetch_series(
                    client, kpi, service, start, points, step_seconds, start_ms, end_ms
                )

            # Up to `max_concurrent_queries` series in flight; results are taken in task
            # order, so the progress lines and the first error are the ones a serial fetch
            # gives. On an error the queries not yet started are cancelled.
            workers = min(self.settings.max_concurrent_queries, max(1, len(tasks)))
            with ThreadPoolExecutor(workers, thread_name_prefix="tars-fetch") as pool:
                try:
                    results = pool.map(fetch, tasks)
                    for (kpi, service), result in zip(tasks, results, strict=True):
                        if self.progress and service == services[0]:
                            index = kpis.index(kpi) + 1
                            self.progress(f"day {day}: {kpi.name} ({index}/{len(kpis)})")
                        series.setdefault((service, kpi.name), result)
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
        samples = _samples_frame(series)
        return DayFetch(samples=samples, coverage=coverage_of(samples, services, kpis, points))

    def fetch_series(
        self,
        client: PrometheusClient,
        kpi: KpiDefinition,
        service: str,
        start: dt.datetime,
        points: int,
        step_seconds: int,
        start_ms: int,
        end_ms: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One (service, KPI) series over the window: finite values, one per timestamp."""
        query = render_query(
            kpi.query,
            service=service,
            service_label=self.settings.service_label,
            rate_window=self.settings.rate_window,
        )
        parts = []
        for first, last in range_chunks(
            start, points, step_seconds, self.settings.max_points_per_query
        ):
            result = client.query_range(query, first, last, step_seconds, kpi=kpi, service=service)
            if len(result) > 1:
                shown = ", ".join(str(series.get("metric", {})) for series in result[:3])
                raise TarsUserError(
                    f"KPI {kpi.name!r} returned {len(result)} series for service {service!r} "
                    f"({shown}{', ...' if len(result) > 3 else ''}); a KPI must be one series "
                    "per service",
                    where=f"kpis[{kpi.name}].query",
                    remedy="aggregate the query, e.g. sum(...) or avg(...) without 'by'",
                )
            if result:
                parts.append(parse_values(result[0].get("values", [])))
        stamps, values = merge_chunks(parts, start_ms, end_ms)
        finite = np.isfinite(values)
        dropped = int((~finite).sum())
        if dropped:
            self.warn(
                f"{service}/{kpi.name}: {dropped} NaN/Inf sample(s) dropped, reported as gaps"
            )
        return stamps[finite], values[finite]

    def discover_services(
        self, client: PrometheusClient, release: Release, start: dt.datetime, end: dt.datetime
    ) -> list[str]:
        """The services seen from GA day's start (or this window's start, if earlier) to this
        window's end, when the release lists none.

        Looking back to GA day (not just this day) keeps a service that went silent in the
        list, so its KPIs show up as missing rather than vanishing from the report. A pre-GA
        window (a reference day of `reference_date`) ends before GA day starts: it is
        searched itself, never from GA day backwards.
        """
        since = min(start, release.day_bounds(0)[0])
        until = max(end, since)  # never a backwards range, whatever the caller passes
        services = sorted(
            set(
                client.label_values(
                    self.settings.service_label, self.settings.services_match, since, until
                )
            )
        )
        if not services:
            raise TarsUserError(
                f"no services found: no series {self.settings.services_match} with a "
                f"{self.settings.service_label!r} label between {since.isoformat()} and "
                f"{until.isoformat()}",
                where=f"releases[{release.name}].services / source.services_match",
                remedy="list the services under the release, or set source.services_match to "
                "a metric every service exports (and source.service_label to its label)",
            )
        return services


def _samples_frame(series: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """The fetched series as one samples frame, sorted by service, KPI and time: the
    snapshot source's order, so downstream ties (equal scores) break alike. Each series'
    timestamps are already sorted and unique (`merge_chunks`), so ordering the series by
    (service, KPI) sorts the frame; built from whole arrays, not a frame per series."""
    keys = sorted(key for key, (stamps, _) in series.items() if len(stamps))
    if not keys:
        return empty_samples()
    lengths = [len(series[key][0]) for key in keys]
    stamps = np.concatenate([series[key][0] for key in keys])
    return pd.DataFrame(
        {
            "service": np.repeat(np.array([key[0] for key in keys], dtype=object), lengths),
            "kpi": np.repeat(np.array([key[1] for key in keys], dtype=object), lengths),
            "ts": pd.to_datetime(stamps, unit="ms", utc=True).astype("datetime64[us, UTC]"),
            "value": np.concatenate([series[key][1] for key in keys]),
        }
    )


def _epoch_ms(moment: dt.datetime) -> int:
    return round(moment.timestamp() * 1000)
