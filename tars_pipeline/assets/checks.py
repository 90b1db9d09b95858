"""Asset checks: the judge's verdicts (`judge.checks`) as Dagster asset check results. Each
runs inside the step of the asset it checks (`check_specs`), on what the step has just
computed: no extra step, no second read of the store."""

import dagster as dg

from tars_pipeline.judge.checks import (
    COMPLETENESS_CHECK,
    DRIFT_CHECK,
    SLO_CHECK,
    Markdown,
    Verdict,
)

SAMPLE_CHECKS = {
    COMPLETENESS_CHECK: "Every service x KPI series covers the day (ERROR below 50 % or "
    "missing, WARN below 99 %).",
}
DAY_CHECKS = {
    SLO_CHECK: "Every SLO held on the day (ERROR when one is breached).",
    DRIFT_CHECK: "Every KPI stays within its drift threshold of the GA-day baseline on every "
    "service (WARN otherwise; each KPI's verdict in the metadata).",
}
SEVERITY = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}


def specs(asset: str, checks: dict[str, str]) -> list[dg.AssetCheckSpec]:
    """The checks an asset's step evaluates, as `check_specs` for its decorator."""
    return [
        dg.AssetCheckSpec(name, asset=asset, description=description)
        for name, description in checks.items()
    ]


def result(verdict: Verdict, asset: str) -> dg.AssetCheckResult:
    details = {
        key: dg.MetadataValue.md(value) if isinstance(value, Markdown) else value
        for key, value in verdict.details.items()
    }
    return dg.AssetCheckResult(
        passed=verdict.passed,
        severity=SEVERITY[verdict.severity],
        check_name=verdict.check_name,
        asset_key=asset,
        description=verdict.summary,
        metadata={"summary": verdict.summary, **details},
    )
