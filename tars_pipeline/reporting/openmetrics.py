"""The retrospective's numbers as Prometheus metrics: one OpenMetrics text file per release.

The file is meant for node exporter's textfile collector (copy or link it into the
collector's folder; its name ends in `.prom`) or for a Pushgateway (`push_metrics`), so
Grafana and the alerting rules that already read Prometheus see what the week came to.

Format: the intersection of the Prometheus text format 0.0.4 (what the textfile collector,
the Pushgateway and `promtool check metrics` parse) and OpenMetrics 1.0 (what a scrape with
`Accept: application/openmetrics-text` parses): gauge families only, each with `# HELP`
and `# TYPE` (and `# UNIT` where the name ends in one), contiguous, no timestamps, and a
final `# EOF`, which the older format reads as a comment. Label values are escaped as both
formats want (backslash, double quote, line feed), so a service named by a hostile label
keeps the file valid.

Naming follows the Prometheus conventions (https://prometheus.io/docs/practices/naming/):
everything starts with `tars_`, ratios are 0-1 and end in `_ratio` (drift +20 % is 0.2),
durations are in seconds, and every series carries the `release` label. The verdict is a
state set in the kube-state-metrics way: `tars_verdict{status="pass|warn|fail"}` is 1 for
the release's status and 0 for the other two, and `tars_verdict_severity` is the same as
one number (0 pass, 1 warn, 2 fail) for thresholds and colour mappings.

`docs/integrations.md` lists every family.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from tars_pipeline.config import SEVERITIES, ExportsConfig
from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.verdict import STATUSES
from tars_pipeline.notify.http import USER_AGENT, redact_url, scrub
from tars_pipeline.reporting.retrospective import SERIES_STATUSES

METRICS_FILE = "GA_7DAY_RETROSPECTIVE.prom"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""What the file is sent as: the Pushgateway parses the 0.0.4 text format (the `# EOF` and
`# UNIT` lines are comments to it)."""
PRIORITIES = ("P0", "P1", "P2", "P3")
DEGRADATION_STATUSES = ("ongoing", "resolved")
SECONDS_PER_DAY = 86_400.0


# --- The text format ---------------------------------------------------------------------------


def escape_label_value(value: object) -> str:
    """A label value for the inside of `label="…"`: backslash, double quote and line feed
    escaped (the only escapes both formats define), lone surrogates made U+FFFD so the
    file stays valid UTF-8."""
    text = str(value)
    text = "".join("\ufffd" if 0xD800 <= ord(char) <= 0xDFFF else char for char in text)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """HELP text: backslash and line feed escaped (a quote needs none there)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value: integers without a fraction, other numbers to 15 significant
    digits (all a float64 holds for sure), so 99.9 % reads 0.999 and not the
    0.9990000000000001 its division by 100 gives."""
    number = float(f"{float(value):.15g}")
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


@dataclass
class Family:
    """One metric family: a gauge, its help text, its OpenMetrics unit and its samples."""

    name: str
    help: str
    unit: str | None = None
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float | None, **labels: object) -> None:
        """One sample; None or a non-finite value leaves it out (no NaN in the file: an
        undefined number is an absent series, as the JSON's null)."""
        if value is None:
            return
        number = float(value)
        if math.isfinite(number):
            self.samples.append(({name: str(v) for name, v in labels.items()}, number))

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {escape_help(self.help)}", f"# TYPE {self.name} gauge"]
        if self.unit:
            lines.append(f"# UNIT {self.name} {self.unit}")
        for labels, value in self.samples:
            body = ",".join(f'{name}="{escape_label_value(v)}"' for name, v in labels.items())
            lines.append(f"{self.name}{{{body}}} {format_value(value)}")
        return lines


def render(families: Iterable[Family]) -> str:
    """The text of the families, in order, with the final `# EOF`. A family without
    samples is left out (OpenMetrics allows it, but a HELP with no series helps no one)."""
    lines: list[str] = []
    for family in families:
        if family.samples:
            lines.extend(family.render())
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


# --- The retrospective's families --------------------------------------------------------------


def _ratio(pct: float | None) -> float | None:
    return None if pct is None else float(pct) / 100.0


def _count_by(items: Iterable[Mapping[str, Any]], key: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[str(item.get(key))] = counts.get(str(item.get(key)), 0) + 1
    return counts


def _open_incident(incident: Mapping[str, Any]) -> bool:
    """An incident is open while one of its degradations is ongoing on the last day."""
    return any(
        member.get("type") == "degradation" and member.get("status") == "ongoing"
        for member in incident.get("members", ())
    )


def metric_families(model: Mapping[str, Any]) -> list[Family]:
    """Every family of the retrospective model (`reporting.week.retrospective_model`), in
    the order the file lists them."""
    release = str(model["release"]["name"])
    summary = model["summary"]
    families: list[Family] = []

    def family(name: str, help_text: str, unit: str | None = None) -> Family:
        families.append(created := Family(name, help_text, unit))
        return created

    info = family(
        "tars_release_info",
        "The release this file describes (value 1): GA date, timezone, window length and "
        "the TARS that wrote it.",
    )
    info.add(
        1,
        release=release,
        ga_date=model["release"]["ga_date"],
        timezone=model["release"]["timezone"],
        window_days=model["release"]["window_days"],
        generator=model.get("generator", ""),
        schema_version=model.get("schema_version", ""),
    )
    generated = family(
        "tars_retrospective_generated_timestamp_seconds",
        "When the retrospective was written, in Unix seconds.",
        "seconds",
    )
    generated.add(_unix_seconds(model.get("generated_at")), release=release)
    complete = family(
        "tars_window_complete",
        "1 when every day of the window was analysed, else 0.",
    )
    complete.add(1 if model["window"].get("complete") else 0, release=release)

    # The verdict: a state set, and the same as one number.
    status = model["verdict"]["status"]
    verdict = family(
        "tars_verdict",
        "The release's verdict as a state set: 1 for its status (pass, warn or fail), 0 "
        "for the others.",
    )
    for state in STATUSES:
        verdict.add(1 if state == status else 0, release=release, status=state)
    severity = family(
        "tars_verdict_severity",
        "The release's verdict as a number: 0 pass, 1 warn, 2 fail.",
    )
    severity.add(STATUSES.index(status), release=release)
    reasons = family(
        "tars_verdict_reasons",
        "Reasons behind the verdict, by the rule that gave them and its status.",
    )
    for (rule, rule_status), count in sorted(
        _pairs(model["verdict"]["reasons"], "rule", "status").items()
    ):
        reasons.add(count, release=release, rule=rule, status=rule_status)

    # Health.
    health = family(
        "tars_health_score",
        "The day's health score, 0-100 (100: every KPI within its threshold, no incident).",
    )
    for day in model["health_scores"]:
        date = _day_date(model, day["day"])
        health.add(day["score"], release=release, day=day["day"], date=date, band=day["band"])
    average = family(
        "tars_health_score_average",
        "The mean health score of the days analysed (Day 0 not included), 0-100.",
    )
    average.add(summary.get("average_health"), release=release)
    lowest = family("tars_health_score_lowest", "The lowest day's health score, 0-100.")
    low = summary.get("lowest_health") or {}
    lowest.add(low.get("score"), release=release, day=low.get("day", ""))

    # Drift per KPI.
    drift = family(
        "tars_kpi_drift_ratio",
        "The day's drift of a KPI's statistic against its GA-day baseline, as a ratio "
        "(0.2 is +20 %); absent where the baseline is ~0 and relative drift is undefined.",
        "ratio",
    )
    threshold = family(
        "tars_kpi_drift_threshold_ratio",
        "The drift from which a KPI is flagged, as a ratio (0.1 is 10 %).",
        "ratio",
    )
    peak = family(
        "tars_kpi_max_abs_drift_ratio",
        "A KPI's largest absolute drift over the window, as a ratio.",
        "ratio",
    )
    kpi_status = family(
        "tars_kpi_status",
        "A KPI's status over the window as a state set: 1 for its status (degraded, "
        "drifted, flagged, anomalous or ok), 0 for the others.",
    )
    for series in sorted(model["kpi_daily"], key=lambda s: (s["service"], s["kpi"])):
        labels = {"release": release, "service": series["service"], "kpi": series["kpi"]}
        for day in series["days"]:
            drift.add(_ratio(day.get("drift_pct")), **labels, day=day["day"])
        threshold.add(_ratio(series.get("threshold_pct")), **labels)
        peak.add(_ratio(series.get("max_abs_drift_pct")), **labels)
        for state in SERIES_STATUSES:
            kpi_status.add(1 if series["status"] == state else 0, **labels, status=state)

    # SLOs.
    slo_families = {
        "objective": family(
            "tars_slo_objective_ratio", "The SLO's target share of good events.", "ratio"
        ),
        "sli": family(
            "tars_slo_sli_ratio", "The share of good events over the window (the SLI).", "ratio"
        ),
        "burn": family(
            "tars_slo_burn_rate_ratio",
            "The window's burn rate: its error ratio over the error budget (1 spends the "
            "budget in exactly the SLO period).",
            "ratio",
        ),
        "current": family(
            "tars_slo_current_burn_rate_ratio",
            "The last day's burn rate (what days to exhaustion extrapolates).",
            "ratio",
        ),
        "day": family("tars_slo_day_burn_rate_ratio", "Each day's burn rate.", "ratio"),
        "consumed": family(
            "tars_slo_error_budget_consumed_ratio",
            "Share of the SLO period's error budget the window spent.",
            "ratio",
        ),
        "remaining": family(
            "tars_slo_error_budget_remaining_ratio",
            "Share of the SLO period's error budget left after the window.",
            "ratio",
        ),
        "exhaustion": family(
            "tars_slo_error_budget_exhaustion_seconds",
            "Time until the budget runs out at the last day's burn rate; absent when it "
            "never does (no burn), 0 when it already has.",
            "seconds",
        ),
        "period": family(
            "tars_slo_period_seconds", "The SLO's period (its error budget's span).", "seconds"
        ),
        "met": family("tars_slo_met", "1 when the window's burn rate is at most 1, else 0."),
        "alerts": family(
            "tars_slo_burn_rate_alert_episodes",
            "Episodes of each SRE Workbook multi-window burn-rate alert that would have "
            "fired over the window (only the alerts that did).",
        ),
    }
    for slo in sorted(model["slo_compliance"], key=lambda s: (s["service"], s["slo"])):
        labels = {"release": release, "service": slo["service"], "slo": slo["slo"]}
        slo_families["objective"].add(_ratio(slo["target"]), **labels)
        slo_families["sli"].add(_ratio(slo.get("sli_pct")), **labels)
        slo_families["burn"].add(slo.get("burn_rate"), **labels)
        slo_families["current"].add(slo.get("current_burn_rate"), **labels)
        for day in slo.get("by_day", ()):
            slo_families["day"].add(day.get("burn_rate"), **labels, day=day["day"])
        slo_families["consumed"].add(_ratio(slo.get("budget_consumed_pct")), **labels)
        slo_families["remaining"].add(_ratio(slo.get("budget_remaining_pct")), **labels)
        days_left = slo.get("days_to_exhaustion")
        slo_families["exhaustion"].add(
            None if days_left is None else float(days_left) * SECONDS_PER_DAY, **labels
        )
        slo_families["period"].add(float(slo["period_days"]) * SECONDS_PER_DAY, **labels)
        slo_families["met"].add(1 if slo.get("met") else 0, **labels)
        for alert in slo.get("alerts_fired", ()):
            slo_families["alerts"].add(
                alert["episodes"],
                **labels,
                severity=alert["severity"],
                long_window=alert["long_window"],
                short_window=alert["short_window"],
            )

    # Findings, by severity: every severity is listed, so a 0 is a 0 and not a gap.
    incidents = family(
        "tars_incidents", "Incidents (related findings of one service) by worst severity."
    )
    open_incidents = family(
        "tars_open_incidents",
        "Incidents with a degradation still ongoing on the last day, by severity.",
    )
    by_severity = _count_by(model["incidents"], "severity")
    still_open = _count_by([i for i in model["incidents"] if _open_incident(i)], "severity")
    for name in reversed(SEVERITIES):
        incidents.add(by_severity.get(name, 0), release=release, severity=name)
        open_incidents.add(still_open.get(name, 0), release=release, severity=name)
    degradations = family(
        "tars_degradations",
        "Degradations (significant adverse drift) by severity and status on the last day.",
    )
    pairs = _pairs(model["degradations"], "severity", "status")
    for name in reversed(SEVERITIES):
        for state in DEGRADATION_STATUSES:
            count = pairs.get((name, state), 0)
            degradations.add(count, release=release, severity=name, status=state)
    anomalies = family("tars_anomaly_events", "Anomaly events of the window by severity.")
    by_anomaly = _count_by(model["anomalies"], "severity")
    for name in reversed(SEVERITIES):
        anomalies.add(by_anomaly.get(name, 0), release=release, severity=name)
    drifts = family(
        "tars_unexpected_drifts", "KPIs that drifted inside the watch band, not regressions."
    )
    drifts.add(len(model["unexpected_drifts"]), release=release)
    recommendations = family("tars_recommendations", "Recommendations by priority (P0-P3).")
    by_priority = _count_by(model["recommendations"], "priority")
    for priority in PRIORITIES:
        recommendations.add(by_priority.get(priority, 0), release=release, priority=priority)
    quality = model.get("data_quality") or {}
    completeness = family(
        "tars_data_completeness_ratio",
        "Share of the expected samples the source had over the window.",
        "ratio",
    )
    completeness.add(_ratio(quality.get("completeness_pct")), release=release)
    return families


def render_openmetrics(model: Mapping[str, Any]) -> str:
    """The OpenMetrics text of a retrospective model."""
    return render(metric_families(model))


def metric_names(text: str) -> set[str]:
    """The family names a rendered file declares (its `# TYPE` lines)."""
    return {line.split()[2] for line in text.split("\n") if line.startswith("# TYPE ")}


def _pairs(items: Iterable[Mapping[str, Any]], first: str, second: str) -> dict[tuple, int]:
    counts: dict[tuple, int] = {}
    for item in items:
        key = (str(item.get(first)), str(item.get(second)))
        counts[key] = counts.get(key, 0) + 1
    return counts


def _day_date(model: Mapping[str, Any], day: int) -> str:
    for entry in model["window"]["days"]:
        if entry["day"] == day:
            return str(entry["date"])
    return ""


def _unix_seconds(timestamp: object) -> float | None:
    if not isinstance(timestamp, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return round(moment.timestamp(), 3)


# --- The Pushgateway ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PushTarget:
    """Where the metrics go: the group URL (a secret when it came from the environment)
    and how to name it in messages."""

    url: str
    shown: str
    setting: str
    timeout_seconds: float
    secrets: tuple[str, ...] = ()


def push_target(
    exports: ExportsConfig, release: str, env: Mapping[str, str] | None = None
) -> PushTarget | None:
    """The Pushgateway group of `release`, or None when no Pushgateway is configured.

    Raises TarsUserError naming the setting when the variable is unset or does not hold an
    http(s) URL: called before anything is written, so a bad setting leaves the previous
    reports in place. The URL from the environment is never shown, only its scheme, host
    and port.
    """
    if not exports.pushes:
        return None
    env = os.environ if env is None else env
    if exports.pushgateway_url_env:
        variable = exports.pushgateway_url_env
        setting = "exports.pushgateway_url_env"
        base = (env.get(variable) or "").strip()
        if not base:
            raise TarsUserError(
                f"environment variable {variable} is not set (named by {setting})",
                where="tars.yaml",
                remedy=f"export {variable}=http://pushgateway:9091, or remove {setting}",
            )
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TarsUserError(
                f"environment variable {variable} does not hold an http(s) URL "
                f"(named by {setting})",
                where="tars.yaml",
                remedy=f"set {variable} to the Pushgateway's base URL, e.g. "
                "http://pushgateway:9091",
            )
        secrets = (base, parts.password or "", parts.username or "")
    else:
        base = str(exports.pushgateway_url)
        setting = "exports.pushgateway_url"
        secrets = ()
    group = (
        f"/metrics/job/{quote(exports.pushgateway_job, safe='')}/release/{quote(release, safe='')}"
    )
    url = base.rstrip("/") + group
    shown = f"Pushgateway {redact_url(base)}{group} (from {setting})"
    return PushTarget(url, shown, setting, exports.pushgateway_timeout_seconds, secrets)


def push_metrics(target: PushTarget, text: str) -> str:
    """PUT the file to the target's group, replacing what the release pushed before (the
    Pushgateway's PUT semantics). Returns the redacted target; raises TarsUserError, with
    no secret in it, when the push fails."""
    failure: str | None = None
    try:
        response = requests.put(
            target.url,
            data=text.encode("utf-8"),
            headers={"Content-Type": CONTENT_TYPE, "User-Agent": USER_AGENT},
            timeout=target.timeout_seconds,
            allow_redirects=False,
        )
    except requests.Timeout:
        failure = f"timed out after {target.timeout_seconds:g} s"
    except (requests.RequestException, OSError) as error:
        # requests' messages quote the URL, credentials included: name the type only.
        failure = f"connection failed ({type(error).__name__})"
    else:
        if not 200 <= response.status_code < 300:
            body = scrub(response.text.strip()[:300], target.secrets)
            failure = f"HTTP {response.status_code}" + (f" ({body})" if body else "")
    if failure is not None:
        raise TarsUserError(
            f"push to {target.shown} failed: {failure}",
            where="tars.yaml",
            remedy=f"check that the Pushgateway is up and that {target.setting} names it; "
            "the reports were written, re-run tars-retro to push again",
        )
    return target.shown
