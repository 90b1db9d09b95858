"""Asset checks: the judge's verdicts (`judge.checks`) as Dagster asset check results. Each
runs inside the step of the asset it checks (`check_specs`), on what the step has just
computed: no extra step, no second read of the store.

What the UI shows, on purpose: short check names in whole words (the checks tab cuts long
names in the middle), the KPIs, SLOs and series a check is about in its metadata rather
than in its name, and the severity written out: the spec's description starts with what
fails as ERROR and what as WARN, and every evaluation carries a `severity` entry (ERROR,
WARN, or "passed"). Numbers that are the same on every day go in as text, so the
asset's plots show only what moves.
"""

import dagster as dg

from tars_pipeline.judge.checks import (
    COMPLETENESS_CHECK,
    DRIFT_CHECK,
    SLO_CHECK,
    Markdown,
    Verdict,
)

SAMPLE_CHECKS = {
    COMPLETENESS_CHECK: "ERROR when a service x KPI series is missing or covers under 50 % of "
    "the day, WARN under 99 %. Passes when every series covers the day.",
}
DAY_CHECKS = {
    SLO_CHECK: "ERROR when an SLO was breached on the day (each SLO and service's burn rate "
    "in the metadata). Passes when every SLO held.",
    DRIFT_CHECK: "WARN when a KPI drifted beyond its threshold of the GA-day baseline, in its "
    "bad direction, on some service (each KPI's verdict in the metadata). Passes when every "
    "KPI stayed within its threshold.",
}
SEVERITY = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}
# The severity a failure of each check has (judge/checks.py): shown on the check's definition.
ON_FAILURE = {COMPLETENESS_CHECK: "ERROR or WARN", SLO_CHECK: "ERROR", DRIFT_CHECK: "WARN"}


def specs(asset: str, checks: dict[str, str]) -> list[dg.AssetCheckSpec]:
    """The checks an asset's step evaluates, as `check_specs` for its decorator."""
    return [
        dg.AssetCheckSpec(
            name,
            asset=asset,
            description=description,
            metadata={"severity_on_failure": ON_FAILURE[name]},
        )
        for name, description in checks.items()
    ]


def result(verdict: Verdict, asset: str) -> dg.AssetCheckResult:
    details = {
        key: dg.MetadataValue.md(value) if isinstance(value, Markdown) else value
        for key, value in verdict.details.items()
    }
    severity = SEVERITY[verdict.severity]
    return dg.AssetCheckResult(
        passed=verdict.passed,
        severity=severity,
        check_name=verdict.check_name,
        asset_key=asset,
        description=verdict.summary,
        metadata={
            "severity": "passed" if verdict.passed else severity.value,
            "summary": verdict.summary,
            **details,
            # One line per failing series, KPI or SLO: what the CLI prints and counts.
            "findings": dg.MetadataValue.json(list(verdict.findings)),
        },
    )
