"""`tars.yaml`: the one configuration file, validated into typed models with defaults.

Configuration is data: the KPI catalog, thresholds, SLOs and the metric source live here,
not as constants in the judge. Relative paths in the file are resolved against the
file's own directory, so a config works from any working directory.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tars_pipeline import defaults
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.direction import ADVERSE_SIGN

CONFIG_ENV_VAR = "TARS_CONFIG"
DEFAULT_CONFIG_NAME = "tars.yaml"
MAX_WINDOW_DAYS = 30

Direction = Literal["lower_is_better", "higher_is_better", "neutral"]
KpiKind = Literal["user_facing", "resource", "cost"]
Statistic = Literal["mean", "p50", "p95", "p99", "max", "min"]


class _Model(BaseModel):
    # NaN and ±Inf are never a setting: `.nan` or `.inf` in YAML is refused with the field.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


_LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
DEFAULT_BREAKDOWN_LABELS: tuple[str, ...] = (
    "uri", "route", "status", "code", "instance", "pod", "region", "version",
)  # fmt: skip


class KpiBreakdown(_Model):
    """How to break a KPI down by label for its top contributors (docs/methods/contributors.md):
    KPI = scale · Σ numerator / Σ denominator per label value, or scale · Σ numerator."""

    numerator: str = Field(
        description="PromQL template of the additive measure by label: {by} is the label, "
        "{service}, {service_label}, {rate_window} as in query."
    )
    denominator: str | None = Field(
        default=None, description="The ratio's denominator by label; none for additive KPIs."
    )
    scale: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0
    labels: tuple[Annotated[str, Field(pattern=_LABEL_NAME)], ...] = Field(
        default=DEFAULT_BREAKDOWN_LABELS,
        description="The labels to break down by; a label the series do not carry is skipped.",
    )
    complement: bool = Field(
        default=False,
        description="The KPI is scale · (1 − numerator / denominator): availability from "
        "errors / requests.",
    )
    measure: str | None = Field(
        default=None,
        description="The measure decomposed when it is not the KPI itself (e.g. 'mean "
        "latency' for a percentile: duration sum / count by label).",
    )
    slice_query: str | None = Field(
        default=None,
        description="Each label value's own KPI by {by} (its quantile), shown, never ranked.",
    )


class KpiDefinition(_Model):
    """One key performance indicator: what to query and how to judge it."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    title: str
    unit: str
    direction: Direction
    kind: KpiKind
    query: str = Field(
        default="",
        description="PromQL template; {service} is replaced by the escaped service name.",
    )
    statistic: Statistic = Field(
        default="mean", description="Which daily statistic drift compares with the baseline's."
    )
    threshold_pct: Annotated[float, Field(gt=0)] = defaults.KPI_THRESHOLD_PCT
    degradation_threshold_pct: Annotated[float | None, Field(gt=0)] = Field(
        default=None,
        description="Adverse drift that makes a regression; defaults to threshold_pct for "
        "user-facing KPIs and to unexpected_drift_max_pct for resource and cost KPIs.",
    )
    weight: Annotated[float, Field(ge=0)] = 1.0
    near_zero: Annotated[float, Field(ge=0)] = Field(
        default=1e-9,
        description="A baseline with |value| below this is treated as zero: drift is "
        "reported as an absolute change, never as a percentage.",
    )
    resource_type: str | None = Field(
        default=None, description="For cost KPIs: compute, memory, storage or network."
    )
    fail_on_missing_data: bool = False
    breakdown: KpiBreakdown | None = Field(
        default=None,
        description="Top-contributor drill-down queries; the default catalog's KPIs have them "
        "for the conventional metric names (sources/breakdown.py).",
    )

    @model_validator(mode="before")
    @classmethod
    def _relative_criterion(cls, data: Any) -> Any:
        """threshold_pct as a Keptn-style relative criterion: '<=+10%' (may rise by 10 %:
        lower is better) or '>=-5%' (may fall by 5 %: higher is better)."""
        if not isinstance(data, dict) or not isinstance(data.get("threshold_pct"), str):
            return data
        text = data["threshold_pct"]
        try:
            float(text)
            return data  # a number written as text: pydantic reads it as before
        except ValueError:
            pass
        match = _RELATIVE_CRITERION.match(text)
        if not match:
            raise ValueError(
                f"threshold_pct {text!r}: expected a number, or a relative criterion such "
                "as '<=+10%' (may rise by 10 %) or '>=-5%' (may fall by 5 %)"
            )
        op, sign, number = match.groups()
        if (op.startswith("<")) != (sign == "+"):
            raise ValueError(
                f"threshold_pct {text!r} bounds a move the good way; a criterion bounds the "
                "adverse move: '<=+X%' for a KPI that must not rise, '>=-X%' for one that "
                "must not fall"
            )
        implied = "lower_is_better" if sign == "+" else "higher_is_better"
        direction = data.get("direction", implied)
        if direction not in (implied, "neutral"):
            raise ValueError(
                f"threshold_pct {text!r} means {implied}, but direction is {direction}"
            )
        return {**data, "threshold_pct": float(number), "direction": direction}


_RELATIVE_CRITERION = re.compile(r"^\s*(<=|<|>=|>)\s*([+-])\s*(\d+(?:\.\d+)?)\s*%\s*$")
"""Keptn's relative pass criteria ('<=+10%'): the adverse change allowed, in percent."""


class SloDefinition(_Model):
    """A service level objective on one KPI.

    `ratio`: the KPI is a percentage of good (higher_is_better, e.g. availability) or bad
    (lower_is_better, e.g. error rate) events; `target_pct` is the share of good events.
    `threshold`: a sample is good when the KPI is on the right side of `objective`;
    `target_pct` is the share of good samples (a time-slice SLO).
    """

    name: str
    kpi: str
    sli: Literal["ratio", "threshold"] = "ratio"
    target_pct: Annotated[float, Field(gt=0, lt=100)]
    objective: float | None = None
    period_days: Annotated[int, Field(ge=1, le=365)] = 30

    @model_validator(mode="after")
    def _threshold_needs_objective(self) -> SloDefinition:
        if self.sli == "threshold" and self.objective is None:
            raise ValueError("a threshold SLO needs 'objective' (the KPI value that is good)")
        return self


DayWindows = Literal["24h", "local_time", "calendar"]


class Release(_Model):
    """A release under watch: Day 0 is the GA date in the release's timezone, or the 24
    hours from the GA moment (`ga_at`)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)]
    # ga_at and timezone come before ga_date: its validator reads them.
    ga_at: dt.datetime | None = Field(
        default=None,
        description="The GA moment with its UTC offset (e.g. 2026-05-12T14:30:00+02:00): "
        "Day 0 is then the 24 hours from it and each later day the next window "
        "(day_windows), instead of calendar days from local midnight.",
    )
    timezone: str = "UTC"
    ga_date: dt.date = Field(
        default=None,  # type: ignore[assignment]  # ga_at's local date, else required
        validate_default=True,
        description="GA day, a local calendar date (e.g. 2026-05-12); with ga_at it may be "
        "left out (it is then ga_at's local date, and must be when both are given).",
    )
    day_windows: DayWindows = Field(
        default="24h",
        description="With ga_at: '24h', each day exactly 24 hours after the previous (the "
        "same UTC time every day; across a DST change the local time moves by an hour); "
        "'local_time', each day from the GA's local time of day (a DST day lasts 23 or 25 "
        "hours, as calendar days do); 'calendar', Day 0 from ga_at to local midnight and "
        "every later day a calendar day.",
    )
    window_days: Annotated[int, Field(ge=1, le=MAX_WINDOW_DAYS)] = 7
    services: tuple[str, ...] = ()
    previous_release: str | None = None
    reference_date: dt.date | None = Field(
        default=None,
        description="Optional first day of a pre-GA reference week (ideally GA − 7 days, the "
        "same weekday as GA; the week ends the day before GA at the latest). Each window day "
        "is then compared with the GA-day baseline scaled by its weekday factor: that "
        "weekday's level in the reference week over the GA weekday's, hour-matched. So a "
        "normal weekend dip is not drift, while a change the reference week did not have is.",
    )
    auto_reference: bool = Field(
        default=True,
        description="Without reference_date, use the week before GA (GA − 7 .. GA − 1) as "
        "the reference week when the source still holds it, and say so in the day summaries "
        "and the report; false: no reference week unless reference_date is set.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown IANA timezone {value!r} (e.g. 'UTC', 'Europe/Berlin')"
            ) from None
        return value

    @field_validator("ga_at")
    @classmethod
    def _aware_moment(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError(
                "needs its UTC offset, e.g. 2026-05-12T14:30:00+02:00 or 2026-05-12T12:30:00Z"
            )
        return value

    @field_validator("ga_date", mode="wrap")
    @classmethod
    def _ga_day(cls, value: Any, handler: Any, info: Any) -> dt.date:
        ga_at = info.data.get("ga_at")
        if value is None and ga_at is None:
            raise ValueError(
                "required: the GA day (e.g. 2026-05-12), or set ga_at, the GA moment "
                "(e.g. 2026-05-12T14:30:00+02:00)"
            )
        date = None if value is None else handler(value)
        timezone = info.data.get("timezone")
        if ga_at is None or timezone is None:  # no moment, or its zone is refused already
            return date
        local = ga_at.astimezone(ZoneInfo(timezone)).date()
        if date is not None and date != local:
            raise ValueError(
                f"{date} is not the local date of ga_at ({ga_at.isoformat()} is {local} "
                f"in {timezone}); leave ga_date out"
            )
        return local

    @model_validator(mode="after")
    def _windows_need_a_moment(self) -> Release:
        if self.ga_at is None and "day_windows" in self.model_fields_set:
            raise ValueError("day_windows applies to a release with ga_at; set ga_at too")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def windows_from_ga_moment(self) -> bool:
        """Whether the days end at the GA's time of day rather than at local midnight (the
        nightly schedules then run per release at that time: `schedules.py`)."""
        return self.ga_at is not None and self.day_windows != "calendar"

    def day_start(self, day: int) -> dt.datetime:
        """When day `day` (negative: before GA) begins, in UTC."""
        if self.ga_at is None or (self.day_windows == "calendar" and day != 0):
            date = self.ga_date + dt.timedelta(days=day)
            return dt.datetime.combine(date, dt.time(0), tzinfo=self.tz).astimezone(dt.UTC)
        if self.day_windows == "calendar" or self.day_windows == "24h":
            return (self.ga_at + dt.timedelta(days=day)).astimezone(dt.UTC)
        local = self.ga_at.astimezone(self.tz)  # local_time: the same wall-clock time
        date = local.date() + dt.timedelta(days=day)
        return dt.datetime.combine(date, local.timetz().replace(tzinfo=self.tz)).astimezone(dt.UTC)

    @property
    def reference_start(self) -> dt.date | None:
        """The first day of the reference week: `reference_date`, else (with
        `auto_reference`) GA − 7 days, the same weekday as GA."""
        if self.reference_date is not None:
            return self.reference_date
        return self.ga_date - dt.timedelta(days=7) if self.auto_reference else None

    def day_date(self, day: int) -> dt.date:
        """The local date day `day` begins on."""
        if self.ga_at is None:
            return self.ga_date + dt.timedelta(days=day)
        return self.day_start(day).astimezone(self.tz).date()

    def day_bounds(self, day: int) -> tuple[dt.datetime, dt.datetime]:
        """The day's data window [start, end), in UTC: that calendar day in the release
        timezone, or with ga_at the window `day_windows` describes."""
        return self.day_start(day), self.day_start(day + 1)

    def day_of(self, moment: dt.datetime | dt.date) -> int:
        """The release-day index of a moment (the window holding it) or of a local date
        (the window beginning on it): 0 on GA day, negative before it, beyond window_days
        after the window."""
        if isinstance(moment, dt.datetime):
            if moment.tzinfo is None:
                raise ValueError("a moment must be timezone-aware")
            if self.ga_at is None:
                moment = moment.astimezone(self.tz).date()
            else:
                day = (moment - self.day_start(0)) // dt.timedelta(days=1)
                while moment < self.day_start(day):
                    day -= 1
                while moment >= self.day_start(day + 1):
                    day += 1
                return day
        return (moment - self.ga_date).days

    @property
    def days(self) -> range:
        return range(self.window_days + 1)


class SnapshotSourceConfig(_Model):
    type: Literal["snapshot"] = "snapshot"
    path: Path


class PrometheusSourceConfig(_Model):
    """A Prometheus-compatible HTTP API (Prometheus, Thanos, Mimir, VictoriaMetrics).

    Secrets never live in this file: the settings below only *name* the environment
    variables that hold them, so a config can be committed and shared.
    """

    type: Literal["prometheus"] = "prometheus"
    url: str = Field(description="Base URL of the HTTP API, e.g. http://prometheus:9090.")
    service_label: Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")] = Field(
        default="service",
        description="The label that names a service; {service_label} in a KPI query.",
    )
    rate_window: Annotated[str, Field(pattern=r"^([0-9]+(ms|s|m|h|d|w|y))+$")] = Field(
        default="5m",
        description="The range of rate() in the default KPIs ({rate_window}); at least "
        "twice the scrape interval, so each window holds two samples.",
    )
    services_match: str = Field(
        default="http_requests_total",
        description="Series selector whose service_label values are the release's services "
        "when the release lists none.",
    )
    bearer_token_env: str | None = Field(
        default="TARS_PROMETHEUS_TOKEN",
        description="Environment variable holding a bearer token (sent when it is set).",
    )
    username_env: str | None = Field(
        default="TARS_PROMETHEUS_USERNAME",
        description="Environment variable holding the basic-auth user (sent when it is set).",
    )
    password_env: str | None = Field(
        default="TARS_PROMETHEUS_PASSWORD",
        description="Environment variable holding the basic-auth password.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra HTTP headers, e.g. X-Scope-OrgID for Mimir/Cortex/Loki tenants. "
        "Not for credentials: those come from the *_env settings.",
    )
    verify_tls: bool = Field(default=True, description="Verify the server's certificate.")
    ca_bundle: Path | None = Field(
        default=None, description="PEM file of the CA(s) that sign the server's certificate."
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    retries: Annotated[int, Field(ge=0, le=10)] = Field(
        default=3, description="Retries on connection errors, timeouts, HTTP 429 and 5xx."
    )
    retry_backoff_seconds: Annotated[float, Field(ge=0, le=60)] = Field(
        default=0.5, description="Exponential backoff factor between retries."
    )
    max_points_per_query: Annotated[int, Field(ge=2, le=11_000)] = Field(
        default=11_000,
        description="Longest range query, in points per series; Prometheus refuses more "
        "than 11,000, so longer windows are split into chunks.",
    )
    max_concurrent_queries: Annotated[int, Field(ge=1, le=64)] = Field(
        default=6,
        description="Range queries in flight at once while a day is fetched (one per "
        "service x KPI); 1 fetches one after another.",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected http(s)://host[:port][/path], e.g. http://prometheus:9090")
        if parts.username or parts.password:
            raise ValueError(
                "credentials do not belong in the URL: set TARS_PROMETHEUS_USERNAME and "
                "TARS_PROMETHEUS_PASSWORD (or bearer_token_env) instead"
            )
        return value.rstrip("/")

    @field_validator("headers")
    @classmethod
    def _no_credentials_in_headers(cls, value: dict[str, str]) -> dict[str, str]:
        secret = {"authorization", "proxy-authorization", "cookie", "x-api-key"}
        clear = sorted(name for name in value if name.lower() in secret)
        if clear:
            raise ValueError(
                f"header(s) {clear} carry credentials, which must not be written in the "
                "config: use bearer_token_env or username_env/password_env"
            )
        return value


SEVERITIES = ("low", "medium", "high", "critical")


def _only(mapping: dict[str, Any], names: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(mapping) - set(names))
    if unknown:
        raise ValueError(f"{where}: unknown name(s) {unknown}; expected some of {list(names)}")


class Thresholds(_Model):
    drift_pct: Annotated[float, Field(gt=0)] = 10.0
    unexpected_drift_max_pct: Annotated[float, Field(gt=0)] = 30.0
    z_threshold: Annotated[float, Field(gt=0)] = defaults.Z_THRESHOLD
    ewma_span: Annotated[int, Field(ge=2)] = defaults.EWMA_SPAN
    warmup_samples: Annotated[int, Field(ge=0)] = defaults.WARMUP_SAMPLES
    p_value: Annotated[float, Field(gt=0, lt=1)] = 0.01
    slo_well_inside_utilisation: Annotated[float, Field(gt=0, le=1)] = 0.5
    anomaly_method: Literal["ewma", "robust"] = Field(
        default="ewma",
        description="ewma: EWMA mean/variance z-score (SPEC); robust: rolling median/MAD.",
    )
    anomaly_min_points: Annotated[int, Field(ge=1)] = Field(
        default=defaults.ANOMALY_MIN_POINTS,
        description="Consecutive samples over the threshold that make an event; 1 keeps "
        "every single-sample excursion (docs/anomaly-detection.md has the NAB figures).",
    )
    anomaly_min_change_pct: Annotated[float | None, Field(gt=0)] = Field(
        default=None,
        description="The smallest deviation from the expected level, in % of that level, "
        "that can reach z_threshold: the spread is never taken below "
        "min_change / z_threshold, so a near-constant series does not turn tiny moves into "
        "huge z. null: each KPI's threshold_pct (a move the drift judgement would ignore "
        "is not an anomaly either).",
    )
    seasonal_anomalies: bool = Field(
        default=True,
        description="From Day 1, score each sample against the GA-day level at its local "
        "time of day (hour medians), so a daily cycle the baseline had is not an anomaly.",
    )
    anomaly_gap_edge_seconds: Annotated[float | None, Field(ge=0)] = Field(
        default=None,
        description="Samples this close to a scrape gap are not judged: a rate() whose "
        "window reaches into the gap is computed from fewer samples and dips. null: the "
        "Prometheus source's rate_window, else 5 steps.",
    )
    anomaly_single_sample_z: Annotated[float | None, Field(gt=0)] = Field(
        default=None,
        description="|z| from which one sample is an event on its own (null: never, the "
        "default: a rate() spreads any real change over its window, so one sample alone "
        "is a scrape artefact; the CSV mode keeps 5).",
    )
    anomaly_band_minutes: Annotated[int, Field(ge=0, le=720)] = Field(
        default=60,
        description="A sample within the range its series showed on the baseline day "
        "within this many minutes of the same local time is not anomalous (a move the good "
        "way: within the whole day's range). 0: off.",
    )
    anomaly_merge_gap: Annotated[int, Field(ge=0)] = Field(
        default=36,
        description="Events of one series and direction at most this many samples apart "
        "merge into one.",
    )
    anomaly_severity_z: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=defaults.anomaly_severity_z,
        description="|z| from which an anomaly event is medium/high/critical (else low).",
    )
    seasonal_baseline: bool = Field(
        default=True,
        description="Compare each day with the baseline's hour-of-day profile over the hours "
        "the day has data for, so a partial day or a gap is not read as drift; false "
        "compares whole-day statistics only.",
    )
    drop_negative_samples: bool = Field(
        default=True,
        description="Drop negative samples before any statistic: no default KPI can be "
        "negative, and a counter reset read without reset handling shows up as one. Set "
        "false when a custom KPI can legitimately go below zero.",
    )
    zero_heavy_share: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.5,
        description="A series whose pooled baseline and day samples are at least this share "
        "of exact zeros (sparse error rates) is judged zero-heavy: its effect size is Cliff's "
        "delta over the pairs that differ, since ties with zero say nothing about a shift.",
    )
    fdr_q: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = Field(
        default=0.05,
        description="False-discovery rate allowed across the window's KPI x service x day "
        "tests (docs/methods/statistical-honesty.md); a degradation needs its adjusted p-value "
        "at or below it, besides p below p_value.",
    )
    fdr_method: Literal["bh", "by", "none"] = Field(
        default="bh",
        description="bh: Benjamini-Hochberg; by: Benjamini-Yekutieli (any dependence); none: "
        "no adjustment.",
    )
    power: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = Field(
        default=0.8, description="Power at which each KPI's minimum detectable effect is given."
    )
    min_requests: Annotated[float, Field(ge=0)] = Field(
        default=10_000.0,
        description="Requests (throughput x step, summed) a day-window needs before its error "
        "rate or availability, or a ratio SLO on them, is judged; below it the day is "
        "'insufficient traffic': no degradation, no SLO breach. 10 000 keeps one failed "
        "request at most a tenth of a 99.9 % SLO's daily budget (judge/traffic.py).",
    )

    @model_validator(mode="after")
    def _severity_ladder(self) -> Thresholds:
        ladder = self.anomaly_severity_z
        _only(ladder, ("medium", "high", "critical"), "thresholds.anomaly_severity_z")
        steps = [ladder[name] for name in ("medium", "high", "critical") if name in ladder]
        if steps != sorted(steps):
            raise ValueError(
                f"thresholds.anomaly_severity_z: medium ≤ high ≤ critical, got {dict(ladder)}"
            )
        return self

    def detector_settings(self) -> dict[str, Any]:
        """Keyword arguments of `judge.anomaly.detect_anomalies`, from these settings:
        one place, so the asset and the continuous sensor cannot disagree."""
        return {
            "span": self.ewma_span,
            "warmup": self.warmup_samples,
            "z_threshold": self.z_threshold,
            "severity_z": self.anomaly_severity_z,
            "method": self.anomaly_method,
            "min_points": self.anomaly_min_points,
            "single_sample_z": self.anomaly_single_sample_z,
            "merge_gap": self.anomaly_merge_gap,
        }


class HealthConfig(_Model):
    zero_score_multiple: Annotated[float, Field(gt=1)] = 5.0
    slo_breach_cap: Annotated[float, Field(ge=0, le=100)] = 40.0
    incident_penalty: dict[str, Annotated[float, Field(ge=0, le=100)]] = Field(
        default_factory=lambda: {"low": 0.5, "medium": 1.0, "high": 3.0, "critical": 5.0},
        validation_alias=AliasChoices("incident_penalty", "anomaly_penalty_per_event"),
        description="Points a day loses per incident (a service's anomaly events close in "
        "time, however many KPIs show them) by its worst severity. The old name "
        "anomaly_penalty_per_event is still read.",
    )
    anomaly_penalty_cap: Annotated[float, Field(ge=0, le=100)] = 20.0
    incident_kind_weight: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {"user_facing": 1.0, "resource": 0.5, "cost": 0.0},
        description="An incident's penalty × the largest weight of its KPIs' kinds: what "
        "users feel costs in full, a resource blip half, a cost blip nothing (cost is "
        "judged by the cost analysis, per day).",
    )
    incident_full_minutes: Annotated[float, Field(ge=0, le=1440)] = Field(
        default=15.0,
        description="An incident shorter than this costs its penalty in proportion to its "
        "duration (a 3-minute p99 blip a fifth of a 15-minute one): impact is severity "
        "times time, as error budgets count it. 0: every incident costs in full.",
    )
    undefined_drift_score: Annotated[float, Field(ge=0, le=100)] = Field(
        default=50.0,
        description="Score of a KPI whose baseline is ~0 and that moved the bad way "
        "(relative drift undefined).",
    )
    bands: dict[str, Annotated[float, Field(ge=0, le=100)]] = Field(
        default_factory=lambda: {"healthy": 90.0, "watch": 75.0, "degraded": 50.0, "critical": 0.0}
    )

    @model_validator(mode="after")
    def _known_names(self) -> HealthConfig:
        # Band names are the user's own (a score gets the highest band it reaches).
        if not self.bands:
            raise ValueError("health.bands: name at least one band, e.g. {critical: 0}")
        _only(self.incident_penalty, SEVERITIES, "health.incident_penalty")
        _only(self.incident_kind_weight, ("user_facing", "resource", "cost"),
              "health.incident_kind_weight")  # fmt: skip
        return self


class MaintenanceWindow(_Model):
    """Planned work whose samples are left out of drift, anomalies and SLO budgets."""

    start: dt.datetime
    end: dt.datetime
    services: tuple[str, ...] = Field(default=(), description="Empty means every service.")
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindow:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a UTC offset, e.g. 2026-03-05T02:00:00Z")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class SlackConfig(_Model):
    webhook_url_env: str = Field(
        default="TARS_SLACK_WEBHOOK_URL",
        description="Environment variable holding the incoming-webhook URL (a secret).",
    )
    # live_critical (opt-in): continuous mode's critical events, once each, mid-week.
    notify_on: tuple[Literal["retrospective", "p0", "live_critical"], ...] = ("retrospective", "p0")
    dry_run: bool = False


class GitHubConfig(_Model):
    repository: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")]
    token_env: str = "GITHUB_TOKEN"
    api_url: str = "https://api.github.com"
    priorities: tuple[Literal["P0", "P1", "P2", "P3"], ...] = ("P0", "P1")
    labels: tuple[str, ...] = ("retrospective",)
    dry_run: bool = False


class WebhookConfig(_Model):
    url_env: str = Field(
        default="TARS_WEBHOOK_URL", description="Environment variable holding the URL."
    )
    dry_run: bool = False


class NotificationsConfig(_Model):
    """Optional integrations; secrets are read from the named environment variables."""

    slack: SlackConfig | None = None
    github: GitHubConfig | None = None
    webhook: WebhookConfig | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0
    retries: Annotated[int, Field(ge=0, le=10)] = 3


class ExportsConfig(_Model):
    """What the retrospective also writes for the Prometheus toolbox, beside the reports:
    its numbers as an OpenMetrics file (optionally pushed to a Pushgateway), and a Sloth
    spec with multi-window burn-rate alerting rules for the SLOs the week burned."""

    openmetrics: bool = Field(
        default=True,
        description="Write GA_7DAY_RETROSPECTIVE.prom (node-exporter textfile-collector "
        "style) with the health scores, verdict, drift, SLO burn and incidents.",
    )
    slo_rules: Literal["burned", "all", "none"] = Field(
        default="burned",
        description="Which SLOs get a Sloth spec (GA_7DAY_SLOTH.yaml) and Prometheus rules "
        "(GA_7DAY_SLO_RULES.yaml): burned (burn rate above 1 over the window or on a day, "
        "a burn-rate alert that would have fired, or an exhausted budget), all, or none "
        "(neither file is written).",
    )
    pushgateway_url: str | None = Field(
        default=None,
        description="Push the metrics to this Pushgateway (http(s)://host:port), PUT to "
        "/metrics/job/<job>/release/<release>. No credentials here: put a URL with "
        "credentials in the variable named by pushgateway_url_env instead.",
    )
    pushgateway_url_env: str | None = Field(
        default=None,
        description="Environment variable holding the Pushgateway URL (a secret when it "
        "carries user:password@); the run fails, before writing anything, when it is unset.",
    )
    pushgateway_job: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]+$", max_length=128)] = Field(
        default="tars", description="The job label of the pushed group."
    )
    pushgateway_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0

    @field_validator("pushgateway_url")
    @classmethod
    def _plain_http_url(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        if value is None:
            return None
        parts = urlsplit(value)
        if parts.username or parts.password:
            # The value is not echoed (see _format_validation_error): it holds a password.
            raise ValueError(
                "credentials do not belong in tars.yaml: put the URL in an environment "
                "variable and name it with exports.pushgateway_url_env"
            )
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected http(s)://host[:port], e.g. http://pushgateway:9091")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_url(self) -> ExportsConfig:
        if self.pushgateway_url and self.pushgateway_url_env:
            raise ValueError("set pushgateway_url or pushgateway_url_env, not both")
        return self

    @property
    def pushes(self) -> bool:
        return bool(self.pushgateway_url or self.pushgateway_url_env)


RESOURCE_TYPES: tuple[str, ...] = ("compute", "memory", "storage", "network")
USAGE_UNITS: dict[str, str] = {
    "compute": "cores",
    "memory": "GiB",
    "storage": "GiB",
    "network": "GiB/h",
}
"""The unit of a usage KPI (a cost KPI measuring what is in use, not what it costs), by
resource type: CPU cores in use, GiB of memory held, GiB of storage provisioned, GiB per
hour transferred. A cost KPI in any other unit is a cost rate in USD/h."""
PRICE_UNITS: dict[str, str] = {
    "compute": "core-hour",
    "memory": "GiB-hour",
    "storage": "GiB-month",
    "network": "GiB",
}
"""What one price of `cost.prices` buys, by resource type."""

Price = Annotated[float | None, Field(ge=0)]


def _known_resource_types(data: Any, allowed: set[str]) -> Any:
    if isinstance(data, dict):
        unknown = sorted(str(key) for key in data if key not in allowed)
        if unknown:
            known = ", ".join(f"{kind} (per {PRICE_UNITS[kind]})" for kind in RESOURCE_TYPES)
            names = ", ".join(map(repr, unknown))
            raise ValueError(f"unknown resource type {names}: prices are for {known}")
    return data


class ResourcePrices(_Model):
    """USD per unit of each resource type: compute per core-hour, memory per GiB-hour,
    storage per GiB-month, network per GiB transferred. Unset: that type is not priced."""

    compute: Price = None
    memory: Price = None
    storage: Price = None
    network: Price = None

    @model_validator(mode="before")
    @classmethod
    def _resource_types(cls, data: Any) -> Any:
        return _known_resource_types(data, set(RESOURCE_TYPES))

    def of(self, resource_type: str) -> float | None:
        return getattr(self, resource_type) if resource_type in RESOURCE_TYPES else None


class PriceTable(ResourcePrices):
    """`cost.prices`: what usage costs, for a source without cost metrics. `services`
    overrides the price of a resource type for one service (as the source names it)."""

    currency: Literal["USD"] = Field(
        default="USD",
        description="The prices' currency. Reports and the store's cost_usd are in USD, so "
        "only USD is accepted: convert other prices first.",
    )
    services: dict[str, ResourcePrices] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _resource_types(cls, data: Any) -> Any:
        return _known_resource_types(data, {*RESOURCE_TYPES, "currency", "services"})

    @model_validator(mode="after")
    def _some_price(self) -> PriceTable:
        if not self.priced_types:
            raise ValueError(
                "the price table has no price: set at least one of "
                + ", ".join(f"{kind} (per {PRICE_UNITS[kind]})" for kind in RESOURCE_TYPES)
            )
        return self

    def price(self, service: str, resource_type: str) -> float | None:
        """The service's price of one unit of `resource_type`: its override, else the
        table's; None when neither is set (its usage is then not costed)."""
        override = self.services.get(service)
        if override is not None and override.of(resource_type) is not None:
            return override.of(resource_type)
        return self.of(resource_type)

    @property
    def priced_types(self) -> set[str]:
        """Resource types with a price, for every service or for one."""
        tables = (self, *self.services.values())
        return {kind for kind in RESOURCE_TYPES for t in tables if t.of(kind) is not None}


class CostConfig(_Model):
    days_per_month: Annotated[float, Field(gt=0)] = 30.0
    low_utilisation_pct: Annotated[float, Field(gt=0, lt=100)] = 40.0
    target_utilisation_pct: Annotated[float, Field(gt=0, le=100)] = Field(
        default=60.0,
        description="CPU utilisation a right-sized service runs at; the saving of a "
        "right-sizing hint is 1 − utilisation / target of its compute cost.",
    )
    growth_hint_pct: Annotated[float, Field(gt=0)] = Field(
        default=10.0,
        description="Cost growth over GA day (per service and resource type, and for the "
        "total) from which a cost hint and the P3 cost recommendation are made.",
    )
    basis: Literal["auto", "prices"] = Field(
        default="auto",
        description="auto: each day, a service's cost of a resource type comes from its "
        "cost KPIs (USD/h) when they have samples that day, else from usage × prices; "
        "prices: from usage × prices only, and the USD/h cost KPIs leave the catalog.",
    )
    prices: PriceTable | None = Field(
        default=None,
        description="Prices per resource type (optionally per service): with them the "
        "usage KPIs join the catalog and cost is usage × price where cost KPIs have no "
        "data (basis).",
    )

    @model_validator(mode="after")
    def _prices_for_basis(self) -> CostConfig:
        if self.basis == "prices" and self.prices is None:
            raise ValueError("basis 'prices' needs a price table: set cost.prices")
        return self


_DURATION_UNITS = {
    "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0,
    "y": 31536000.0,
}  # fmt: skip
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")
_HISTOGRAM_QUANTILE = re.compile(r"histogram_quantile\(\s*([0-9]*\.?[0-9]+)\s*,")
_RANGE_SELECTOR = re.compile(r"\[([0-9a-z:]+)\]")


def duration_seconds(duration: str) -> float:
    """A Prometheus duration ("5m", "1h30m") in seconds."""
    return sum(
        int(count) * _DURATION_UNITS[unit] for count, unit in _DURATION_PART.findall(duration)
    )


def default_kpis() -> list[KpiDefinition]:
    """The SPEC §2 catalog, in PromQL over the conventional metric names."""
    # Placeholders (filled by the Prometheus source): {service} is the escaped service
    # name, {service_label} and {rate_window} come from the source's settings.
    sel = '{service_label}="{service}"'
    window = "[{rate_window}]"
    req = f"sum(rate(http_requests_total{{{sel}}}{window}))"
    err = f'sum(rate(http_requests_total{{{sel},code=~"5.."}}{window}))'

    def quantile(q: str) -> str:
        return (
            f"1000 * histogram_quantile({q}, sum by (le) "
            f"(rate(http_request_duration_seconds_bucket{{{sel}}}{window})))"
        )

    def cost(resource: str, title: str, metric: str) -> KpiDefinition:
        return KpiDefinition(
            name=f"cost_{resource}",
            title=title,
            unit="USD/h",
            direction="lower_is_better",
            kind="cost",
            resource_type=resource,
            weight=0.25,
            query=f"sum({metric}{{{sel}}})",
        )

    return [
        KpiDefinition(
            name="availability",
            title="Availability",
            unit="%",
            direction="higher_is_better",
            kind="user_facing",
            threshold_pct=0.1,
            weight=3.0,
            query=f"100 * (1 - {err} / {req})",
        ),
        KpiDefinition(
            name="error_rate",
            title="Error rate",
            unit="%",
            direction="lower_is_better",
            kind="user_facing",
            weight=2.0,
            near_zero=1e-6,
            query=f"100 * {err} / {req}",
        ),
        KpiDefinition(
            name="throughput",
            title="Throughput",
            unit="req/s",
            direction="neutral",
            kind="user_facing",
            weight=1.0,
            query=req,
        ),
        KpiDefinition(
            name="latency_p50",
            title="Latency p50",
            unit="ms",
            direction="lower_is_better",
            kind="user_facing",
            weight=1.0,
            query=quantile("0.50"),
        ),
        KpiDefinition(
            name="latency_p95",
            title="Latency p95",
            unit="ms",
            direction="lower_is_better",
            kind="user_facing",
            weight=1.5,
            query=quantile("0.95"),
        ),
        KpiDefinition(
            name="latency_p99",
            title="Latency p99",
            unit="ms",
            direction="lower_is_better",
            kind="user_facing",
            weight=2.0,
            query=quantile("0.99"),
        ),
        KpiDefinition(
            name="cpu_utilization",
            title="CPU utilisation",
            unit="%",
            direction="lower_is_better",
            kind="resource",
            weight=1.0,
            query=f"100 * avg(rate(process_cpu_seconds_total{{{sel}}}{window}))",
        ),
        KpiDefinition(
            name="memory_utilization",
            title="Memory utilisation",
            unit="%",
            direction="lower_is_better",
            kind="resource",
            weight=1.0,
            query=(
                f"100 * sum(container_memory_working_set_bytes{{{sel}}}) / "
                f"sum(container_spec_memory_limit_bytes{{{sel}}})"
            ),
        ),
        cost("compute", "Compute cost", "node_cpu_hourly_cost"),
        cost("memory", "Memory cost", "node_ram_hourly_cost"),
        cost("storage", "Storage cost", "pv_hourly_cost"),
        cost("network", "Network cost", "network_hourly_cost"),
    ]


GIB_BYTES = 1073741824  # 2**30


def usage_kpis() -> list[KpiDefinition]:
    """The usage the price table multiplies (`cost.prices`), in PromQL over the metrics of
    cAdvisor (the kubelet's /metrics/cadvisor) and the kubelet's volume statistics. They
    join the catalog for each resource type that has a price.

    - compute: CPU cores in use, the rate of container_cpu_usage_seconds_total;
    - memory: GiB held, container_memory_working_set_bytes;
    - storage: GiB provisioned, kubelet_volume_stats_capacity_bytes (what a volume is
      billed for; kubelet_volume_stats_used_bytes for what is written);
    - network: GiB per hour sent, the rate of container_network_transmit_bytes_total ×
      3600 (egress: clouds bill it, ingress is mostly free).

    `container!=""` and `container!="POD"` leave out cAdvisor's pod-level cgroup and the
    pause container, which would count a pod's containers twice; the network counters
    exist on the pod-level series only, so that query keeps them. Like the cost KPIs they
    are kind `cost` (never a regression or an unexpected drift) with weight 0.25: at a
    fixed price a usage series drifts exactly as its cost does.
    """
    sel = '{service_label}="{service}"'
    containers = f'{sel},container!="",container!="POD"'
    window = "[{rate_window}]"

    def usage(resource: str, title: str, query: str) -> KpiDefinition:
        return KpiDefinition(
            name=f"usage_{resource}",
            title=title,
            unit=USAGE_UNITS[resource],
            direction="lower_is_better",
            kind="cost",
            resource_type=resource,
            weight=0.25,
            query=query,
        )

    return [
        usage(
            "compute",
            "CPU in use",
            f"sum(rate(container_cpu_usage_seconds_total{{{containers}}}{window}))",
        ),
        usage(
            "memory",
            "Memory in use",
            f"sum(container_memory_working_set_bytes{{{containers}}}) / {GIB_BYTES}",
        ),
        usage(
            "storage",
            "Storage provisioned",
            f"sum(kubelet_volume_stats_capacity_bytes{{{sel}}}) / {GIB_BYTES}",
        ),
        usage(
            "network",
            "Network sent",
            f"sum(rate(container_network_transmit_bytes_total{{{sel}}}{window})) * 3600 "
            f"/ {GIB_BYTES}",
        ),
    ]


def cost_resource_type(kpi: KpiDefinition) -> str:
    """A cost KPI's resource type: `resource_type`, else its name without `cost_`."""
    return kpi.resource_type or kpi.name.removeprefix("cost_")


def is_usage_kpi(kpi: KpiDefinition) -> bool:
    """A cost KPI that measures usage (in its resource type's USAGE_UNITS unit), priced by
    `cost.prices`; every other cost KPI is a cost rate in USD/h."""
    return kpi.kind == "cost" and USAGE_UNITS.get(cost_resource_type(kpi)) == kpi.unit


def _check_usage_units(kpis: tuple[KpiDefinition, ...]) -> None:
    usage_names = {kpi.name for kpi in usage_kpis()}
    for kpi in kpis:
        if kpi.kind != "cost" or is_usage_kpi(kpi):
            continue
        resource = cost_resource_type(kpi)
        if kpi.unit in USAGE_UNITS.values() or kpi.name in usage_names:
            expected = USAGE_UNITS.get(resource)
            wanted = (
                f"{resource} usage is in {expected!r}"
                if expected
                else f"resource_type {resource!r} has no usage unit (usage is priced for "
                f"{', '.join(RESOURCE_TYPES)})"
            )
            raise ValueError(
                f"kpis[{kpi.name}].unit: {kpi.unit!r} does not fit a {resource} usage KPI: "
                f"{wanted}; a cost rate is in USD/h"
            )


def priced_catalog(kpis: tuple[KpiDefinition, ...], cost: CostConfig) -> tuple[KpiDefinition, ...]:
    """The catalog with the price table applied: for each priced resource type without a
    usage KPI, the default one (`usage_kpis`); with `basis: prices`, without the cost
    KPIs in USD/h (not queried, not reported missing). A usage KPI whose resource type
    has no price, or a usage unit on the wrong resource type, is an error."""
    _check_usage_units(kpis)
    prices = cost.prices
    priced = prices.priced_types if prices is not None else set()
    catalog = list(kpis)
    names = {kpi.name for kpi in catalog}
    measured = {cost_resource_type(kpi) for kpi in catalog if is_usage_kpi(kpi)}
    for default in usage_kpis():
        resource = cost_resource_type(default)
        if resource in priced and resource not in measured and default.name not in names:
            catalog.append(default)
    for kpi in catalog:
        resource = cost_resource_type(kpi)
        if is_usage_kpi(kpi) and resource not in priced:
            raise ValueError(
                f"kpis[{kpi.name}] measures {resource} usage, but cost.prices has no "
                f"{resource} price: set cost.prices.{resource} (per {PRICE_UNITS[resource]}) "
                "or remove the KPI"
            )
    if cost.basis == "prices":
        catalog = [kpi for kpi in catalog if kpi.kind != "cost" or is_usage_kpi(kpi)]
    return tuple(catalog)


def default_slos() -> list[SloDefinition]:
    return [
        SloDefinition(name="availability", kpi="availability", sli="ratio", target_pct=99.9),
        SloDefinition(name="error_rate", kpi="error_rate", sli="ratio", target_pct=99.0),
        SloDefinition(
            name="latency_p99", kpi="latency_p99", sli="threshold", objective=200.0, target_pct=99.0
        ),
    ]


class PrometheusAnnotations(_Model):
    """Change annotations from a Prometheus series (docs/methods/annotations.md)."""

    query: str = Field(description="PromQL; {service_label} is replaced as in KPI queries.")
    mode: Literal["changes", "firing"] = Field(
        default="changes",
        description="changes: each change of a series' value is one annotation (deployment "
        "generations); firing: each time a series appears (ALERTS).",
    )
    kind: Literal["deploy", "config", "feature_flag", "incident", "release", "alert", "other"] = (
        "deploy"
    )
    title: str = Field(default="{__name__}", description="Template over the series' labels.")
    service_label: Annotated[str, Field(pattern=_LABEL_NAME)] | None = Field(
        default=None, description="The label naming the service; none: every service."
    )


class GitHubAnnotations(_Model):
    """Deployments and releases of a GitHub repository as change annotations."""

    repository: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")]
    token_env: str = "GITHUB_TOKEN"
    api_url: str = "https://api.github.com"
    environment: str | None = None
    deployments: bool = True
    releases: bool = True
    service: str | None = Field(
        default=None, description="The service the repository deploys; none: every service."
    )


class AnnotationsConfig(_Model):
    """Where deploys, config changes, flags and incidents come from, and how far before a
    finding's onset one is named as its possible cause."""

    file: Path | None = Field(default=None, description="YAML or JSON annotation file.")
    prometheus: tuple[PrometheusAnnotations, ...] = ()
    github: GitHubAnnotations | None = None
    lookback_minutes: Annotated[float, Field(gt=0, le=1440, allow_inf_nan=False)] = Field(
        default=30.0, description="An annotation up to this long before an onset is named."
    )


class TarsConfig(_Model):
    """The validated contents of `tars.yaml`."""

    config_path: Path | None = Field(default=None, exclude=True)
    data_dir: Path = Path(".tars")
    output_dir: Path = Path("reports")
    store_path: Path | None = Field(
        default=None, description="DuckDB file; default <data_dir>/tars.duckdb"
    )
    store_layout: Literal["auto", "duckdb", "parquet"] = Field(
        default="auto",
        description="parquet: one Parquet file per table and partition under <data_dir>/store, "
        "written aside and renamed (many writers), with the DuckDB file at store_path a catalog "
        "of views over them. duckdb: every table in the one DuckDB file (one writer at a time). "
        "auto: parquet, unless store_path already holds a DuckDB-layout store (an earlier "
        "TARS's), which keeps working until `tars-store migrate` moves it.",
    )
    store_url: str | None = Field(
        default=None,
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$",
        description="Keep the Parquet store in object storage instead of <data_dir>/store: "
        "s3://bucket/prefix (S3 or an S3-compatible server; credentials from the AWS_* "
        "variables or the pod's role). The catalog stays at store_path.",
    )
    store_endpoint_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="The S3 API to use for store_url (MinIO, Ceph, R2, a VPC endpoint); "
        "default AWS (or $AWS_ENDPOINT_URL).",
    )
    step_seconds: Annotated[int, Field(ge=1, le=3600)] = 60
    source: Annotated[SnapshotSourceConfig | PrometheusSourceConfig, Field(discriminator="type")]
    releases: tuple[Release, ...]
    kpis: tuple[KpiDefinition, ...] = Field(default_factory=lambda: tuple(default_kpis()))
    slos: tuple[SloDefinition, ...] = Field(default_factory=lambda: tuple(default_slos()))
    slo_file: Path | None = Field(
        default=None,
        description="An OpenSLO (v1) or Sloth (prometheus/v1) spec file, relative to "
        "tars.yaml, whose SLOs are used instead of `slos:` (slo_specs.py says how they map).",
    )
    thresholds: Thresholds = Field(default_factory=Thresholds)
    health: HealthConfig = Field(default_factory=HealthConfig)
    cost: CostConfig = Field(default_factory=CostConfig)
    maintenance_windows: tuple[MaintenanceWindow, ...] = ()
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    exports: ExportsConfig = Field(default_factory=ExportsConfig)
    annotations: AnnotationsConfig = Field(default_factory=AnnotationsConfig)
    feedback_file: Path | None = Field(
        default=None,
        description="Marks on findings (expected / not_an_anomaly / confirmed); default "
        "tars.feedback.yaml beside this file when it exists (docs/methods/feedback.md).",
    )

    @model_validator(mode="after")
    def _priced(self) -> TarsConfig:
        # Before _consistent (validators run in order), so the usage KPIs the price table
        # adds get the default threshold and can carry an SLO.
        object.__setattr__(self, "kpis", priced_catalog(self.kpis, self.cost))
        return self

    @model_validator(mode="after")
    def _consistent(self) -> TarsConfig:
        if self.store_url and self.store_layout == "duckdb":
            raise ValueError(
                "store_url: object storage holds the Parquet layout only; remove "
                "store_layout: duckdb (or store_url)"
            )
        names = [release.name for release in self.releases]
        if not names:
            raise ValueError("releases: list at least one release")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"releases: duplicate release name(s) {duplicates}")
        # KPIs that do not set their own threshold follow thresholds.drift_pct.
        kpis = tuple(
            kpi
            if "threshold_pct" in kpi.model_fields_set
            else kpi.model_copy(update={"threshold_pct": self.thresholds.drift_pct})
            for kpi in self.kpis
        )
        object.__setattr__(self, "kpis", kpis)
        kpi_names = {kpi.name for kpi in self.kpis}
        by_name = {kpi.name: kpi for kpi in self.kpis}
        for slo in self.slos:
            if slo.kpi not in kpi_names:
                raise ValueError(f"slos: SLO {slo.name!r} names unknown KPI {slo.kpi!r}")
            if by_name[slo.kpi].direction == "neutral":
                raise ValueError(
                    f"slos: SLO {slo.name!r} is on KPI {slo.kpi!r}, whose direction is "
                    "neutral: an SLO needs a KPI with a good and a bad direction"
                )
        return self

    @property
    def store_file(self) -> Path:
        return self.store_path or self.data_dir / "tars.duckdb"

    @property
    def store_root(self) -> Path:
        """The Parquet layout's local folder (`store_layout: parquet`, no store_url)."""
        return self.data_dir / "store"

    @property
    def store_uri(self) -> str:
        """Where the Parquet layout's files are: store_url, else the local folder."""
        return self.store_url.rstrip("/") if self.store_url else str(self.store_root)

    @property
    def max_window_days(self) -> int:
        return max(release.window_days for release in self.releases)

    def detector_settings(self, z_threshold: float | None = None) -> dict[str, Any]:
        """Keyword arguments of `judge.anomaly.detect_anomalies` for this config: the
        thresholds' detector settings, each KPI's smallest anomalous move
        (`anomaly_min_change_pct`, or its threshold_pct) and the gap edge (the source's
        rate window). One place, so the nightly asset and the sensor cannot disagree."""
        settings = self.thresholds.detector_settings()
        if z_threshold is not None:
            settings["z_threshold"] = z_threshold
        change = self.thresholds.anomaly_min_change_pct
        settings["min_change"] = {
            kpi.name: (change if change is not None else kpi.threshold_pct) / 100.0
            for kpi in self.kpis
        }
        edge = self.thresholds.anomaly_gap_edge_seconds
        if edge is None:
            if isinstance(self.source, PrometheusSourceConfig):
                edge = duration_seconds(self.source.rate_window)
            else:
                edge = 5.0 * self.step_seconds
        settings["gap_edge_seconds"] = edge
        settings["adverse"] = {kpi.name: ADVERSE_SIGN.get(kpi.direction, 0.0) for kpi in self.kpis}
        return settings

    def range_lag_seconds(self) -> dict[str, float]:
        """Per KPI: how long its value still reads the past, the longest range selector in
        its PromQL (`rate(x[5m])`: 300 s; a subquery `[1h:1m]`: 3600 s); 0 for an instant
        gauge. `{rate_window}` is the Prometheus source's; for a source that hands over
        values (a snapshot), one step: a rate there covers one scrape interval."""
        if isinstance(self.source, PrometheusSourceConfig):
            window = self.source.rate_window
        else:
            window = f"{int(self.step_seconds)}s"
        lags = {}
        for kpi in self.kpis:
            query = kpi.query.replace("{rate_window}", window)
            ranges = [part.split(":")[0] for part in _RANGE_SELECTOR.findall(query)]
            lags[kpi.name] = max((duration_seconds(r) for r in ranges), default=0.0)
        return lags

    def quantile_of_kpi(self) -> dict[str, float]:
        """The KPIs that are a quantile of requests (`histogram_quantile(0.99, …)` in
        their PromQL) and that quantile; sources without queries have none."""
        if not isinstance(self.source, PrometheusSourceConfig):
            return {}
        found = {}
        for kpi in self.kpis:
            match = _HISTOGRAM_QUANTILE.search(kpi.query)
            if match and 0.0 < float(match.group(1)) < 1.0:
                found[kpi.name] = float(match.group(1))
        return found

    @property
    def kpis_by_name(self) -> dict[str, KpiDefinition]:
        return {kpi.name: kpi for kpi in self.kpis}

    def kpi(self, name: str) -> KpiDefinition:
        for kpi in self.kpis:
            if kpi.name == name:
                return kpi
        raise KeyError(name)

    def release(self, name: str) -> Release:
        for release in self.releases:
            if release.name == name:
                return release
        known = ", ".join(r.name for r in self.releases)
        raise TarsUserError(
            f"release {name!r} is not in the config (known: {known})",
            where=str(self.config_path or DEFAULT_CONFIG_NAME),
            remedy="add it under 'releases:' or pass one of the known names",
        )

    def slos_for(self, kpi_name: str) -> list[SloDefinition]:
        return [slo for slo in self.slos if slo.kpi == kpi_name]

    def degradation_threshold_pct(self, kpi: KpiDefinition) -> float:
        if kpi.degradation_threshold_pct is not None:
            return kpi.degradation_threshold_pct
        if kpi.kind == "user_facing":
            return kpi.threshold_pct
        return self.thresholds.unexpected_drift_max_pct


def _merge_kpis(overrides: list[Any]) -> list[dict[str, Any]]:
    """Entries naming a default KPI override its fields; other entries add new KPIs."""
    merged = {kpi.name: kpi.model_dump(exclude_unset=True) for kpi in default_kpis()}
    # A usage KPI (usage_compute, ...) named here starts from its default too.
    usage = {kpi.name: kpi.model_dump(exclude_unset=True) for kpi in usage_kpis()}
    for entry in overrides:
        if not isinstance(entry, dict) or "name" not in entry:
            raise ValueError("each entry under 'kpis:' must be a mapping with a 'name'")
        name = entry["name"]
        merged[name] = {**merged.get(name, usage.get(name, {})), **entry}
    return list(merged.values())


def _format_validation_error(error: ValidationError, kpi_names: list[str]) -> str:
    lines = []
    for item in error.errors():
        parts = [str(part) for part in item["loc"] if part != "function-after"]
        # KPI entries are validated after merging with the default catalog, so a position
        # would not match the user's file: name the KPI instead.
        if len(parts) > 1 and parts[0] == "kpis" and parts[1].isdigit():
            index = int(parts[1])
            if index < len(kpi_names):
                parts[1] = f"[{kpi_names[index]}]"
        location = ".".join(parts).replace(".[", "[")
        message = item["msg"].removeprefix("Value error, ")
        got = item.get("input")
        # Source, notification and export settings can hold credentials: never echo
        # their values.
        secret = bool(parts) and parts[0] in {"source", "notifications", "exports"}
        hidden = secret or isinstance(got, dict | list) or got is None
        shown = "" if hidden else f" (got {got!r})"
        lines.append(f"{location or '<top level>'}: {message}{shown}")
    return "\n  ".join(lines)


def resolve_config_path(path: str | os.PathLike[str] | None = None) -> Path:
    return Path(path or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_NAME)


def load_config(path: str | os.PathLike[str] | None = None) -> TarsConfig:
    """Read and validate `tars.yaml` (from `path`, `$TARS_CONFIG` or ./tars.yaml)."""
    config_path = resolve_config_path(path)
    where = str(config_path)
    if not config_path.is_file():
        raise TarsUserError(
            "configuration file not found",
            where=where,
            remedy=f"pass --config PATH or set {CONFIG_ENV_VAR}; see docs/configuration.md",
        )
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, ValueError) as error:
        # PyYAML raises ValueError for impossible dates such as 2026-13-01.
        raise TarsUserError(
            f"not valid YAML: {error}", where=where, remedy="dates are YYYY-MM-DD"
        ) from None
    if not isinstance(raw, dict):
        raise TarsUserError("expected a mapping of settings at the top level", where=where)
    base = config_path.resolve().parent
    kpi_names: list[str] = []
    try:
        if "kpis" in raw:
            raw["kpis"] = _merge_kpis(raw["kpis"] or [])
            kpi_names = [str(entry.get("name")) for entry in raw["kpis"]]
        if raw.get("slo_file") is not None:
            raw["slos"] = _slos_from_file(raw, base)
            raw["slo_file"] = str(_absolute(Path(str(raw["slo_file"])), base))
        config = TarsConfig.model_validate({**raw, "config_path": config_path.resolve()})
    except ValidationError as error:
        raise TarsUserError(
            "invalid configuration:\n  " + _format_validation_error(error, kpi_names),
            where=where,
            remedy="fix the field(s) named above; docs/configuration.md lists every setting",
        ) from None
    except ValueError as error:
        raise TarsUserError(str(error), where=where) from None
    return _resolve_paths(config, base)


def _absolute(path: Path, base: Path) -> Path:
    return path if path.is_absolute() else base / path


def _slos_from_file(raw: dict[str, Any], base: Path) -> list[dict[str, Any]]:
    """`slos:` from the OpenSLO or Sloth file `slo_file` names, on the file's catalog."""
    from tars_pipeline.slo_specs import read_slo_file

    if raw.get("slos"):
        raise TarsUserError(
            "both slos and slo_file are set",
            where="slos / slo_file",
            remedy="keep the SLOs in one place: the spec file, or the slos: list",
        )
    catalog = raw.get("kpis") or [kpi.model_dump() for kpi in default_kpis()]
    directions = {str(kpi.get("name")): str(kpi.get("direction")) for kpi in catalog}
    return read_slo_file(_absolute(Path(str(raw["slo_file"])), base), directions)


DEFAULT_FEEDBACK_FILE = "tars.feedback.yaml"


def _resolve_paths(config: TarsConfig, base: Path) -> TarsConfig:
    def absolute(path: Path | None) -> Path | None:
        return None if path is None else (path if path.is_absolute() else base / path)

    updates: dict[str, Any] = {
        "data_dir": absolute(config.data_dir),
        "output_dir": absolute(config.output_dir),
        "store_path": absolute(config.store_path),
    }
    if isinstance(config.source, SnapshotSourceConfig):
        updates["source"] = config.source.model_copy(update={"path": absolute(config.source.path)})
    if config.annotations.file is not None:
        updates["annotations"] = config.annotations.model_copy(
            update={"file": absolute(config.annotations.file)}
        )
    feedback = absolute(config.feedback_file)
    if feedback is None and (base / DEFAULT_FEEDBACK_FILE).is_file():
        feedback = base / DEFAULT_FEEDBACK_FILE
    updates["feedback_file"] = feedback
    return config.model_copy(update=updates)


def config_digest(config: TarsConfig) -> str:
    """A digest of the settings a run judged with and the TARS that judged: a stored
    result made under another digest is not reused (`Runner.reusable`)."""
    import hashlib

    from tars_pipeline import __version__

    body = f"{__version__}\n{config.model_dump_json()}"
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]
