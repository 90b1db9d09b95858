"""Asset checks: the day's data is complete, each KPI's drift is within its threshold, and
the SLOs held. They read what the assets stored, per release-day partition.

Severity is chosen by what a failure means:
- data completeness: ERROR — with a series missing or mostly empty, every verdict of the
  day is built on sand; WARN for small gaps (the day is still judged, with care).
- drift within threshold (one check per KPI): WARN — drift is a finding to look at, not a
  broken pipeline; the regression analysis decides whether it is a degradation.
- SLO compliance: ERROR — a breached SLO is a broken promise to users.
None is blocking: a bad day must still reach the retrospective.
"""

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from tars_pipeline.config import KpiDefinition
from tars_pipeline.partitions import split_key
from tars_pipeline.reporting.escape import markdown
from tars_pipeline.store import open_store, read_table

COMPLETENESS_CHECK = "data_completeness"
SLO_CHECK = "slo_compliance"
COMPLETE_PCT = 99.0
USABLE_PCT = 50.0


def drift_check_name(kpi: str) -> str:
    return f"drift_within_threshold_{kpi}"


@dataclass(frozen=True)
class Verdict:
    passed: bool
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.WARN
    summary: str = ""
    details: dict = field(default_factory=dict)

    def result(self, check_name: str, asset: str) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            passed=self.passed,
            severity=self.severity,
            check_name=check_name,
            asset_key=asset,
            description=self.summary,
            metadata={"summary": self.summary, **self.details},
        )


def completeness_verdict(coverage: pd.DataFrame) -> Verdict:
    """ERROR below USABLE_PCT or with a series absent, WARN below COMPLETE_PCT."""
    if coverage.empty:
        return Verdict(False, dg.AssetCheckSeverity.ERROR, "no coverage recorded for the day")
    pct = (
        100.0
        * coverage["points"]
        / coverage["expected_points"].where(coverage["expected_points"] > 0)
    )
    coverage = coverage.assign(completeness_pct=pct.fillna(0.0).round(2))
    broken = coverage[coverage["completeness_pct"] < USABLE_PCT]
    gappy = coverage[
        (coverage["completeness_pct"] >= USABLE_PCT) & (coverage["completeness_pct"] < COMPLETE_PCT)
    ]
    overall = float(coverage["points"].sum() / max(coverage["expected_points"].sum(), 1) * 100)
    details = {
        "completeness_pct": dg.MetadataValue.float(round(overall, 2)),
        "series": dg.MetadataValue.int(len(coverage)),
        "series_below_usable": dg.MetadataValue.int(len(broken)),
        "series_with_gaps": dg.MetadataValue.int(len(gappy)),
    }
    worst = pd.concat([broken, gappy]).head(20)
    if len(worst):
        details["worst_series"] = dg.MetadataValue.md(
            "\n".join(
                f"- {markdown(r.service)} / {markdown(r.kpi)}: {r.completeness_pct:.1f} %"
                for r in worst.itertuples()
            )
        )
    if len(broken):
        return Verdict(
            False,
            dg.AssetCheckSeverity.ERROR,
            f"{len(broken)} series missing or below {USABLE_PCT:.0f} % of the day",
            details,
        )
    if len(gappy):
        return Verdict(
            False,
            dg.AssetCheckSeverity.WARN,
            f"{len(gappy)} series with gaps (below {COMPLETE_PCT:.0f} % of the day)",
            details,
        )
    return Verdict(True, summary=f"all {len(coverage)} series complete", details=details)


def drift_verdict(drift: pd.DataFrame, kpi: KpiDefinition) -> Verdict:
    """WARN when any service's drift on this KPI is flagged in its bad direction."""
    rows = drift[drift["kpi"] == kpi.name]
    if rows.empty:
        return Verdict(True, summary=f"no {kpi.name} data for the day")
    adverse = rows[
        rows["flagged"]
        & ((rows["adverse_drift_pct"].fillna(0) > 0) | ~rows["relative"].astype(bool))
    ]
    if kpi.direction == "neutral":
        adverse = rows[rows["flagged"]]
    table = "\n".join(
        f"- {markdown(r.service)}: {r.baseline_value:.4g} → {r.observed_value:.4g} {kpi.unit}"
        + (f" ({r.drift_pct:+.1f} %)" if pd.notna(r.drift_pct) else " (baseline ~0)")
        for r in rows.itertuples()
    )
    details = {
        "threshold_pct": dg.MetadataValue.float(float(kpi.threshold_pct)),
        "services": dg.MetadataValue.md(table),
    }
    if len(adverse):
        names = ", ".join(sorted(adverse["service"]))
        return Verdict(
            False,
            dg.AssetCheckSeverity.WARN,
            f"{kpi.title} drifted beyond {kpi.threshold_pct:g} % on {names}",
            details,
        )
    return Verdict(True, summary=f"{kpi.title} within {kpi.threshold_pct:g} %", details=details)


def slo_verdict(slo_daily: pd.DataFrame) -> Verdict:
    """ERROR when any SLO was breached on the day."""
    if slo_daily.empty:
        return Verdict(True, summary="no SLO data for the day")
    breached = slo_daily[slo_daily["breached"]]
    table = "\n".join(
        f"- {markdown(r.slo)} / {markdown(r.service)}: burn rate {r.burn_rate:.2f}"
        + (" — **breached**" if r.breached else "")
        for r in slo_daily.itertuples()
    )
    details = {
        "slos": dg.MetadataValue.md(table),
        "max_burn_rate": dg.MetadataValue.float(round(float(slo_daily["burn_rate"].max()), 3)),
    }
    if len(breached):
        names = ", ".join(sorted(f"{r.slo} on {r.service}" for r in breached.itertuples()))
        return Verdict(False, dg.AssetCheckSeverity.ERROR, f"SLO breached: {names}", details)
    return Verdict(True, summary=f"all {len(slo_daily)} SLO-service pairs held", details=details)


def _day_table(duckdb: DuckDBResource, table: str, partition_key: str) -> pd.DataFrame:
    release, day = split_key(partition_key)
    with open_store(duckdb) as conn:
        return read_table(conn, table, release, [day])


def build(
    kpi_samples: dg.AssetsDefinition,
    daily_summary: dg.AssetsDefinition,
    kpis: Sequence[KpiDefinition],
) -> list[dg.AssetChecksDefinition]:
    # Partitioned asset checks are a preview feature in Dagster 1.13; the version is pinned
    # and the checks are exercised per partition by the whole-graph tests.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return _build(kpi_samples, daily_summary, kpis)


def _build(
    kpi_samples: dg.AssetsDefinition,
    daily_summary: dg.AssetsDefinition,
    kpis: Sequence[KpiDefinition],
) -> list[dg.AssetChecksDefinition]:
    partitions = kpi_samples.partitions_def

    @dg.asset_check(
        asset=kpi_samples,
        name=COMPLETENESS_CHECK,
        partitions_def=partitions,
        description="Every service x KPI series covers the day (ERROR below 50 % or "
        "missing, WARN below 99 %).",
    )
    def data_completeness(
        context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource
    ) -> dg.AssetCheckResult:
        coverage = _day_table(duckdb, "coverage", context.partition_key)
        return completeness_verdict(coverage).result(COMPLETENESS_CHECK, "kpi_samples")

    @dg.asset_check(
        asset=daily_summary,
        name=SLO_CHECK,
        partitions_def=partitions,
        description="Every SLO held on the day (ERROR when one is breached).",
    )
    def slo_compliance(
        context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource
    ) -> dg.AssetCheckResult:
        slo_daily = _day_table(duckdb, "slo_daily", context.partition_key)
        return slo_verdict(slo_daily).result(SLO_CHECK, "daily_summary")

    def drift_check(kpi: KpiDefinition) -> dg.AssetChecksDefinition:
        name = drift_check_name(kpi.name)

        @dg.asset_check(
            asset=daily_summary,
            name=name,
            partitions_def=partitions,
            description=f"{kpi.title} stays within {kpi.threshold_pct:g} % of the GA-day "
            "baseline on every service (WARN otherwise).",
        )
        def _check(
            context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource
        ) -> dg.AssetCheckResult:
            drift = _day_table(duckdb, "drift", context.partition_key)
            return drift_verdict(drift, kpi).result(name, "daily_summary")

        return _check

    return [data_completeness, slo_compliance, *(drift_check(kpi) for kpi in kpis)]
