"""SLO specs out: a Sloth spec and multi-window, multi-burn-rate alerting rules for every SLO
whose error budget the week burned.

TARS judges the week after the fact (`judge/slo.py` says which burn-rate alerts *would
have* fired). These two files are the step after: the alerts a team should now run, in the
two shapes the Prometheus world uses.

- `GA_7DAY_SLO_RULES.yaml`: a Prometheus rule file, ready for `rule_files:`. Per SLO and
  service, recording rules for the error ratio over each window
  (`tars_slo:error_ratio:rate<window>`) and two alerts, `TarsErrorBudgetBurn` with
  `severity: page` and `severity: ticket`, each firing when the burn rate over a long window
  *and* its short window both exceed the same threshold (SRE Workbook ch. 5, table 5-8).
- `GA_7DAY_SLOTH.yaml`: the same SLOs as Sloth `prometheus/v1` specs (one YAML document per
  service and SLO period), for teams that generate their rules with Sloth.

**The windows.** For a 30-day SLO they are the Workbook's: page on 1h/5m at 14.4× or
6h/30m at 6×, ticket on 1d/2h at 3× or 3d/6h at 1× (2 %, 5 %, 10 % and 10 % of the budget
spent within the long window). Another period scales the windows by period / 30 days and
keeps the budget shares, so the burn-rate factors stay 14.4, 6, 3 and 1 (Pyrra's rule;
Sloth asks for an `AlertWindows` spec, sloth#96). Keeping 30-day windows would make a
7-day SLO's 3-day ticket fire at a burn rate of 0.23, while the SLO is met. A short window
never goes below the source's `rate_window` (5m by default): a rate over less holds one
scrape and is empty. The judge's `alerts_fired` keeps the Workbook's fixed windows; for
30-day SLOs, the default, both agree.

**The SLI**, from the KPI's PromQL (`config.default_kpis`, `{service}` filled as the
Prometheus source fills it):

- a `ratio` SLO on a KPI written `100 * E / T` or `100 * (1 - E / T)`, with `E` and `T`
  over `[{rate_window}]` (the default availability and error rate), becomes an events SLI:
  error ratio = E / T over each window, Sloth's `error_query`/`total_query`;
- anything else is judged as TARS judges it, one step at a time: a recording rule
  (`tars_slo:error_ratio:step`) holds each step's error ratio (`1 - v/100`, `v/100`, or
  `v > bool objective` for a threshold SLO such as p99 ≤ 200 ms) and each window averages
  it (`avg_over_time`). Sloth gets the same as a raw `error_ratio_query` over a subquery.

**Which SLOs** (`exports.slo_rules`): `burned` (the default) takes those whose window burn
rate was above 1, that were above 1 on a day, for which a burn-rate alert would have
fired, or whose budget is exhausted; `all` takes every SLO and service.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from tars_pipeline import __version__
from tars_pipeline.config import (
    KpiDefinition,
    PrometheusSourceConfig,
    SloDefinition,
    TarsConfig,
    duration_seconds,
)
from tars_pipeline.reporting.openmetrics import format_value
from tars_pipeline.sources.prometheus import PLACEHOLDER, promql_string, render_query

RULES_FILE = "GA_7DAY_SLO_RULES.yaml"
SLOTH_FILE = "GA_7DAY_SLOTH.yaml"
ALERT_NAME = "TarsErrorBudgetBurn"
RECORD_PREFIX = "tars_slo:error_ratio:"
STEP_RECORD = RECORD_PREFIX + "step"
WORKBOOK_PERIOD_DAYS = 30
SLOTH_WINDOW = "{{.window}}"

Selection = Literal["burned", "all", "none"]


# --- The windows -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowPair:
    """One row of the Workbook's table 5-8 for one SLO period: the two windows, the share of
    the period's budget the long window may burn, and the burn-rate threshold it gives."""

    severity: Literal["page", "ticket"]
    long_seconds: int
    short_seconds: int
    budget_fraction: float
    period_days: int

    @property
    def burn_rate_threshold(self) -> float:
        """budget share × period ÷ long window (SRE Workbook ch. 5): 14.4 for 2 % in 1 h of
        30 days."""
        period_seconds = self.period_days * 86_400
        return round(self.budget_fraction * period_seconds / self.long_seconds, 6)

    @property
    def long(self) -> str:
        return prometheus_duration(self.long_seconds)

    @property
    def short(self) -> str:
        return prometheus_duration(self.short_seconds)


WORKBOOK_WINDOWS: tuple[tuple[Literal["page", "ticket"], int, int, float], ...] = (
    ("page", 3_600, 300, 0.02),
    ("page", 21_600, 1_800, 0.05),
    ("ticket", 86_400, 7_200, 0.10),
    ("ticket", 259_200, 21_600, 0.10),
)
"""(severity, long window s, short window s, budget share) for a 30-day SLO."""


def prometheus_duration(seconds: int) -> str:
    """A Prometheus duration, largest units first: 300 → 5m, 5040 → 1h24m, 259200 → 3d."""
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def alert_windows(period_days: int, min_window_seconds: int = 300) -> list[WindowPair]:
    """The Workbook's four window pairs for an SLO period: scaled by period / 30 days (to
    whole minutes), short windows no shorter than `min_window_seconds`, long windows no
    shorter than their short one."""
    scale = period_days / WORKBOOK_PERIOD_DAYS
    pairs = []
    for severity, long_s, short_s, fraction in WORKBOOK_WINDOWS:
        short = max(_whole_minutes(short_s * scale), min_window_seconds)
        long = max(_whole_minutes(long_s * scale), short)
        pairs.append(WindowPair(severity, long, short, fraction, period_days))
    return pairs


def _whole_minutes(seconds: float) -> int:
    return max(60, round(seconds / 60.0) * 60)


# --- Which SLOs --------------------------------------------------------------------------------


def burn_reasons(slo: Mapping[str, Any]) -> list[str]:
    """Why an SLO counts as burned this week (empty: it did not): an exhausted budget, a
    window burn rate above 1, days above 1, burn-rate alerts that would have fired."""
    reasons = []
    if slo.get("exhausted"):
        reasons.append("error budget exhausted")
    burn = slo.get("burn_rate")
    if burn is not None and burn > 1:
        reasons.append(f"burn rate {burn:.2f} over the window")
    days = [d["day"] for d in slo.get("by_day", ()) if d.get("compliant") is False]
    if days:
        reasons.append("burn rate above 1 on day(s) " + ", ".join(str(d) for d in days))
    for alert in slo.get("alerts_fired", ()):
        reasons.append(
            f"the {alert['long_window']}/{alert['short_window']} {alert['severity']} alert "
            "would have fired"
        )
    return reasons


def selected_slos(model: Mapping[str, Any], selection: Selection) -> list[dict[str, Any]]:
    """The `slo_compliance` entries the files cover, by service and SLO name."""
    if selection == "none":
        return []
    chosen = [
        dict(slo) for slo in model["slo_compliance"] if selection == "all" or burn_reasons(slo)
    ]
    return sorted(chosen, key=lambda slo: (slo["service"], slo["slo"]))


# --- The SLI in PromQL -------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceSyntax:
    """How the source's PromQL is written: the service label and the rate window that a
    KPI template's placeholders take, and the step the judge sampled at."""

    service_label: str
    rate_window: str
    step_seconds: int

    @classmethod
    def of(cls, config: TarsConfig) -> SourceSyntax:
        source = config.source
        if not isinstance(source, PrometheusSourceConfig):
            # A snapshot was exported from Prometheus with the defaults (tars-snapshot).
            fields = PrometheusSourceConfig.model_fields
            return cls(
                fields["service_label"].default,
                fields["rate_window"].default,
                config.step_seconds,
            )
        return cls(source.service_label, source.rate_window, config.step_seconds)

    @property
    def step(self) -> str:
        return prometheus_duration(self.step_seconds)

    @property
    def rate_window_seconds(self) -> int:
        return int(duration_seconds(self.rate_window))


@dataclass(frozen=True)
class Sli:
    """The SLI of one SLO on one KPI, as KPI-template fragments.

    `events`: error_ratio = error / total, both containing `{rate_window}`, which each
    window replaces. Otherwise `step` is the per-step error ratio (with the source's rate
    window) that each window averages.
    """

    kind: Literal["events", "time_slice"]
    error: str = ""
    total: str = ""
    step: str = ""


def _outside_strings(text: str) -> Iterable[tuple[int, str, int]]:
    """(index, character, bracket depth before it) of every character outside a PromQL
    string literal; brackets are (), [] and {}."""
    depth, quote, escaped = 0, "", False
    for index, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
            continue
        if char in "\"'`":
            quote = char
            continue
        yield index, char, depth
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1


def _strip_parens(text: str) -> str:
    """`text` without parentheses around the whole of it."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        closing = next(i for i, c, d in _outside_strings(text) if c == ")" and d == 1)
        if closing != len(text) - 1:
            break
        text = text[1:-1].strip()
    return text


def _top_level(text: str, operators: str) -> list[int]:
    """Positions of any of `operators` outside brackets and strings."""
    return [i for i, c, depth in _outside_strings(text) if depth == 0 and c in operators]


_PERCENT = re.compile(r"^100(?:\.0*)?\s*\*(.*)$", re.DOTALL)


def event_ratio(template: str) -> tuple[str, str, bool] | None:
    """`(numerator, denominator, complemented)` of a KPI template written
    `100 * N / D` (False) or `100 * (1 - N / D)` (True), each part over `[{rate_window}]`;
    None for any other shape."""
    match = _PERCENT.match(_strip_parens(template))
    if not match:
        return None
    inner, complemented = _strip_parens(match.group(1)), False
    minus = _top_level(inner, "-")
    if len(minus) == 1 and inner[: minus[0]].strip() in ("1", "1.0"):
        inner, complemented = _strip_parens(inner[minus[0] + 1 :]), True
    if _top_level(inner, "+-*%^"):
        return None
    slashes = _top_level(inner, "/")
    if len(slashes) != 1:
        return None
    numerator, denominator = inner[: slashes[0]].strip(), inner[slashes[0] + 1 :].strip()
    if "{rate_window}" not in numerator or "{rate_window}" not in denominator:
        return None
    return numerator, denominator, complemented


def sli_of(slo: SloDefinition, kpi: KpiDefinition) -> Sli:
    """The SLI of `slo` from its KPI's query (see the module docstring)."""
    if slo.sli == "ratio":
        parts = event_ratio(kpi.query)
        if parts is not None:
            numerator, denominator, complemented = parts
            # The KPI counts bad events (error rate) or good ones (availability).
            counts_bad = (kpi.direction == "lower_is_better") != complemented
            error = numerator if counts_bad else f"({denominator}) - ({numerator})"
            return Sli("events", error=error, total=denominator)
        if kpi.direction == "lower_is_better":
            return Sli("time_slice", step=f"clamp(({kpi.query}) / 100, 0, 1)")
        return Sli("time_slice", step=f"clamp(1 - ({kpi.query}) / 100, 0, 1)")
    operator = ">" if kpi.direction == "lower_is_better" else "<"
    objective = format_value(float(slo.objective))  # type: ignore[arg-type]  # validated
    return Sli("time_slice", step=f"({kpi.query}) {operator} bool {objective}")


def _filler(service: str, syntax: SourceSyntax) -> Callable[[str, str], str]:
    """Fills a KPI template for the rule file: `{service}` escaped, the given window."""

    def fill(template: str, window: str) -> str:
        return render_query(
            template,
            service=service,
            service_label=syntax.service_label,
            rate_window=window,
        )

    return fill


def _sloth_filler(service: str, syntax: SourceSyntax) -> Callable[[str, str], str]:
    """Fills a KPI template for a Sloth spec. Sloth runs its queries through Go's
    text/template, so a brace in the service name is written `\\x7b`/`\\x7d` (a PromQL
    string escape): a name holding `{{` cannot become a template action."""
    escaped = promql_string(service).replace("{", "\\x7b").replace("}", "\\x7d")

    def fill(template: str, window: str) -> str:
        values = {
            "service": escaped,
            "service_label": syntax.service_label,
            "rate_window": window,
        }
        return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)

    return fill


# --- The Prometheus rule file ------------------------------------------------------------------


@dataclass(frozen=True)
class SloTarget:
    """One SLO on one service, with what the files need to know about it."""

    service: str
    slo: SloDefinition
    kpi: KpiDefinition
    reasons: tuple[str, ...]
    budget_consumed_pct: float | None

    @property
    def error_budget(self) -> float:
        """1 − target as a ratio, rounded to 12 decimals: 99.9 % gives 0.001, not the
        0.00099999999999989 of binary floating point."""
        return round(1.0 - self.slo.target_pct / 100.0, 12)


def slo_targets(
    model: Mapping[str, Any], config: TarsConfig, selection: Selection
) -> list[SloTarget]:
    """The (service, SLO) pairs the files cover, with their definitions from the config.
    An entry whose SLO is no longer in the config is left out (nothing to write it from)."""
    by_name = {slo.name: slo for slo in config.slos}
    kpis = config.kpis_by_name
    targets = []
    for entry in selected_slos(model, selection):
        slo = by_name.get(entry["slo"])
        if slo is None or slo.kpi not in kpis:
            continue
        targets.append(
            SloTarget(
                service=str(entry["service"]),
                slo=slo,
                kpi=kpis[slo.kpi],
                reasons=tuple(burn_reasons(entry)),
                budget_consumed_pct=entry.get("budget_consumed_pct"),
            )
        )
    return targets


def _selector(target: SloTarget) -> str:
    return f'{{service="{promql_string(target.service)}",slo="{promql_string(target.slo.name)}"}}'


def record_name(window: str) -> str:
    return f"{RECORD_PREFIX}rate{window}"


def _error_ratio(sli: Sli, fill: Callable[[str, str], str], window: str, selector: str) -> str:
    if sli.kind == "events":
        return f"({fill(sli.error, window)})\n/\n({fill(sli.total, window)})"
    return f"avg_over_time({STEP_RECORD}{selector}[{window}])"


def _condition(pair: WindowPair, selector: str, budget: float) -> str:
    factor = format_value(pair.burn_rate_threshold)
    limit = f"({factor} * {format_value(budget)})"
    return (
        f"(\n  {record_name(pair.long)}{selector} > {limit}\n"
        f"  and\n  {record_name(pair.short)}{selector} > {limit}\n)"
    )


def _annotations(target: SloTarget, pairs: Sequence[WindowPair], release: str) -> dict[str, str]:
    severity = pairs[0].severity
    how = " or ".join(
        f"{pair.long}/{pair.short} above {format_value(pair.burn_rate_threshold)}× "
        f"({format_value(pair.budget_fraction * 100)} % of the budget within {pair.long})"
        for pair in pairs
    )
    budget_pct = format_value(round(target.error_budget * 100, 6))
    return {
        "summary": "{{ $labels.service }} is burning the error budget of SLO "
        "{{ $labels.slo }} too fast (" + severity + ")",
        "description": (
            f"Error ratio over both windows of a pair above the burn-rate threshold times "
            f"the error budget ({budget_pct} % over {target.slo.period_days} days): {how}. "
            f"Rule written by TARS {__version__} from the retrospective of release "
            f"{release}."
        ),
    }


def rule_groups(
    targets: Iterable[SloTarget], syntax: SourceSyntax, release: str
) -> list[dict[str, Any]]:
    """One rule group per SLO and service: the recording rules of its windows and its page
    and ticket alerts."""
    groups = []
    names: set[str] = set()
    for target in targets:
        pairs = alert_windows(target.slo.period_days, syntax.rate_window_seconds)
        sli = sli_of(target.slo, target.kpi)
        fill = _filler(target.service, syntax)
        selector = _selector(target)
        labels = {"service": target.service, "slo": target.slo.name}
        rules: list[dict[str, Any]] = []
        if sli.kind == "time_slice":
            step = fill(sli.step, syntax.rate_window)
            rules.append({"record": STEP_RECORD, "expr": step, "labels": dict(labels)})
        windows = sorted({w for p in pairs for w in (p.short_seconds, p.long_seconds)})
        for seconds in windows:
            window = prometheus_duration(seconds)
            rules.append(
                {
                    "record": record_name(window),
                    "expr": _error_ratio(sli, fill, window, selector),
                    "labels": dict(labels),
                }
            )
        for severity in ("page", "ticket"):
            chosen = [pair for pair in pairs if pair.severity == severity]
            expr = "\nor\n".join(_condition(pair, selector, target.error_budget) for pair in chosen)
            rules.append(
                {
                    "alert": ALERT_NAME,
                    "expr": expr,
                    # The series' own labels, repeated: promtool refuses two alerts of
                    # one name with the same labels (the other SLOs' groups).
                    "labels": {"severity": severity, **_template_literals(labels)},
                    "annotations": _annotations(target, chosen, release),
                }
            )
        name = _unique(f"tars-slo-{_slug(target.service)}-{_slug(target.slo.name)}", names)
        group: dict[str, Any] = {"name": name}
        if sli.kind == "time_slice":
            # Each step's verdict is recorded once per step: the windows average steps.
            group["interval"] = syntax.step
        group["rules"] = rules
        groups.append(group)
    return groups


def render_rules(
    model: Mapping[str, Any], config: TarsConfig, selection: Selection = "burned"
) -> str:
    """The Prometheus rule file (YAML) for the SLOs of `selection`."""
    release = str(model["release"]["name"])
    targets = slo_targets(model, config, selection)
    syntax = SourceSyntax.of(config)
    header = _header(
        "Prometheus recording and alerting rules",
        release,
        selection,
        targets,
        [
            "Multi-window, multi-burn-rate alerts (SRE Workbook ch. 5): `TarsErrorBudgetBurn`",
            "with severity page or ticket. Load with `rule_files:`; check with",
            f"`promtool check rules {RULES_FILE}`.",
        ],
    )
    return header + _dump({"groups": rule_groups(targets, syntax, release)})


# --- The Sloth spec ----------------------------------------------------------------------------


def sloth_documents(
    targets: Sequence[SloTarget], syntax: SourceSyntax, release: str
) -> list[tuple[int, dict[str, Any]]]:
    """(period_days, spec) per service and SLO period: Sloth's `prometheus/v1` spec names one
    service and takes the period from the command line, not from the spec."""
    grouped: dict[tuple[str, int], list[SloTarget]] = {}
    for target in targets:
        grouped.setdefault((target.service, target.slo.period_days), []).append(target)
    documents = []
    for (service, period), members in grouped.items():
        slos = []
        for target in members:
            sli = sli_of(target.slo, target.kpi)
            fill = _sloth_filler(service, syntax)
            if sli.kind == "events":
                spec_sli: dict[str, Any] = {
                    "events": {
                        "error_query": fill(sli.error, SLOTH_WINDOW),
                        "total_query": fill(sli.total, SLOTH_WINDOW),
                    }
                }
            else:
                step = fill(sli.step, syntax.rate_window)
                spec_sli = {
                    "raw": {
                        "error_ratio_query": (
                            f"avg_over_time(({step})[{SLOTH_WINDOW}:{syntax.step}])"
                        )
                    }
                }
            slos.append(
                {
                    "name": _sloth_name(target.slo.name),
                    "objective": target.slo.target_pct,
                    "description": _sloth_description(target, release),
                    "labels": _sloth_labels(target.slo),
                    "sli": spec_sli,
                    "alerting": {
                        "name": ALERT_NAME,
                        "labels": _template_literals({"service": service, "slo": target.slo.name}),
                        "annotations": {
                            "summary": "{{ $labels.service }} is burning the error budget "
                            "of SLO {{ $labels.slo }} too fast"
                        },
                        "page_alert": {"labels": {"severity": "page"}},
                        "ticket_alert": {"labels": {"severity": "ticket"}},
                    },
                }
            )
        spec = {
            "version": "prometheus/v1",
            "service": _sloth_name(service),
            "labels": {"service": service},
            "slos": slos,
        }
        documents.append((period, spec))
    return documents


def _sloth_labels(slo: SloDefinition) -> dict[str, str]:
    """The SLO's labels, with what TARS needs to read the spec back as this SLO (its
    `slo_file`, slo_specs.py): the KPI, the period, and a threshold SLO's objective."""
    labels = {"slo": slo.name, "tars_kpi": slo.kpi, "tars_period_days": str(slo.period_days)}
    if slo.sli == "threshold" and slo.objective is not None:
        labels["tars_objective"] = format_value(float(slo.objective))
    return labels


def _sloth_description(target: SloTarget, release: str) -> str:
    text = f"{target.kpi.title} SLO, from the TARS retrospective of release {release}"
    if target.budget_consumed_pct is not None:
        text += f": {format_value(round(target.budget_consumed_pct, 1))} % of the budget consumed"
    if target.reasons:
        text += " (" + "; ".join(target.reasons) + ")"
    return text + "."


def sloth_windows_spec(period_days: int, min_window_seconds: int = 300) -> dict[str, Any]:
    """A Sloth `AlertWindows` spec with the scaled windows of `alert_windows`, for a period
    Sloth has no catalog entry of its own for (it ships 30 and 28 days)."""
    pairs = alert_windows(period_days, min_window_seconds)

    def entry(pair: WindowPair) -> dict[str, Any]:
        return {
            "errorBudgetPercent": float(format_value(pair.budget_fraction * 100)),
            "shortWindow": pair.short,
            "longWindow": pair.long,
        }

    return {
        "apiVersion": "sloth.slok.dev/v1",
        "kind": "AlertWindows",
        "spec": {
            "sloPeriod": f"{period_days}d",
            "page": {"quick": entry(pairs[0]), "slow": entry(pairs[1])},
            "ticket": {"quick": entry(pairs[2]), "slow": entry(pairs[3])},
        },
    }


def sloth_windows_file(period_days: int) -> str:
    return f"GA_7DAY_SLOTH_WINDOWS_{period_days}d.yaml"


def render_sloth(
    model: Mapping[str, Any], config: TarsConfig, selection: Selection = "burned"
) -> dict[str, str]:
    """File name → text: the Sloth spec, and an `AlertWindows` spec for each SLO period
    other than Sloth's default 30 days."""
    release = str(model["release"]["name"])
    targets = slo_targets(model, config, selection)
    syntax = SourceSyntax.of(config)
    documents = sloth_documents(targets, syntax, release)
    periods = sorted({period for period, _ in documents})
    notes = ["Sloth (https://sloth.dev) prometheus/v1 specs, one document per service and period."]
    for period in periods:
        if period == WORKBOOK_PERIOD_DAYS:
            notes.append(f"{period}-day SLOs: sloth generate -i {SLOTH_FILE}")
        else:
            notes.append(
                f"{period}-day SLOs: put {sloth_windows_file(period)} in a folder of its own, "
                f"then sloth generate --default-slo-period={period}d "
                "--slo-period-windows-path=<that folder> on their documents"
            )
    header = _header("Sloth SLO specs", release, selection, targets, notes)
    body = "".join(
        f"---\n# SLO period: {period} days\n" + _dump(spec) for period, spec in documents
    )
    files = {SLOTH_FILE: header + body}
    for period in periods:
        if period != WORKBOOK_PERIOD_DAYS:
            windows = sloth_windows_spec(period, syntax.rate_window_seconds)
            files[sloth_windows_file(period)] = (
                f"# Sloth alert windows for {period}-day SLOs, written by TARS {__version__}:\n"
                "# the SRE Workbook's windows scaled by the period / 30 days.\n" + _dump(windows)
            )
    return files


# --- YAML --------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Safe YAML with multi-line strings (PromQL) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(body: Any) -> str:
    return yaml.dump(
        body, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1_000_000, indent=2
    )


def _header(
    what: str,
    release: str,
    selection: Selection,
    targets: Sequence[SloTarget],
    notes: Sequence[str],
) -> str:
    which = (
        "for every SLO (exports.slo_rules: all)."
        if selection == "all"
        else "for the SLOs whose error budget the week burned (exports.slo_rules: burned)."
    )
    lines = [
        f"{what} written by TARS {__version__} from the retrospective of release {release},",
        which,
        *notes,
    ]
    if targets:
        lines.append("SLOs:")
        for target in targets:
            # JSON with ASCII escapes: a hostile name cannot end the comment line.
            name = json.dumps(f"{target.service} / {target.slo.name}")
            lines.append(f"- {name}: " + "; ".join(target.reasons or (_not_burned(target),)))
    else:
        lines.append("No SLO burned its error budget this week: nothing to alert on.")
    return "".join(f"# {line}\n" for line in lines)


def _not_burned(target: SloTarget) -> str:
    consumed = target.budget_consumed_pct
    if consumed is None:
        return "not burned this week"
    return f"not burned this week, {format_value(round(consumed, 1))} % of the budget consumed"


# --- Names -------------------------------------------------------------------------------------


def _template_literals(labels: Mapping[str, str]) -> dict[str, str]:
    """Alert labels as Prometheus expands them: it runs an alert's labels through Go's
    text/template, so a value holding `{{` is written as a template that prints the value
    (a Go string constant; JSON's escapes are Go's)."""
    return {
        name: "{{ " + json.dumps(value, ensure_ascii=False) + " }}" if "{{" in value else value
        for name, value in labels.items()
    }


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "x"
    if slug != name:
        slug += "-" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:6]
    return slug


def _sloth_name(name: str) -> str:
    """A name Sloth accepts for a service or an SLO (it builds rule IDs from them)."""
    return _slug(name)


def _unique(name: str, taken: set[str]) -> str:
    candidate, index = name, 2
    while candidate in taken:
        candidate, index = f"{name}-{index}", index + 1
    taken.add(candidate)
    return candidate
