"""Score the why and when of TARS's findings (issue 12), and its false discoveries.

1. Localised changes (`--weeks`, default all of tars_pipeline_tests/realistic/why_weeks.py):
   each week is generated as exporter-shaped metrics with changes injected into one route
   or one pod, backfilled by promtool into a real Prometheus, and run through the Dagster
   graph with an annotation file (a deploy 3-14 min before each change, a decoy config
   change 20 min after it). Per truly degraded KPI that TARS reported: the onset error,
   the rank of the injected label value among its dimension's contributors, whether the
   deploy was named and the decoy not.
2. Null weeks (`--null-weeks N`, default 20): 12 KPIs x `--null-services` services x 7 days
   of the generator's noise with nothing injected (`realistic/null_weeks.py`), judged by
   the window judge: every degradation is a false discovery. Under the default thresholds,
   and under a stress setting (1 % drift thresholds, so the statistics alone decide) with
   and without the false-discovery control.

    python benchmarks/why_score.py                   # both parts (~6 min)
    python benchmarks/why_score.py --null-weeks 0    # localised weeks only
    python benchmarks/why_score.py --skip-prometheus # null weeks only
    python benchmarks/why_score.py --json

Exits 0 whatever the scores (it measures, it does not gate).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tars_pipeline.sources.base import empty_samples  # noqa: E402
from tars_pipeline_tests.realistic import harness, why_harness  # noqa: E402
from tars_pipeline_tests.realistic.null_weeks import null_week  # noqa: E402
from tars_pipeline_tests.scenarios.harness import judge_days, scenario_config  # noqa: E402

STRESS = {"drift_pct": 1.0, "unexpected_drift_max_pct": 2.0}
SETTINGS = {
    "default": {},
    "stress, fdr bh": STRESS,
    "stress, fdr none": {**STRESS, "fdr_method": "none"},
}


def localised(keys: list[str] | None) -> dict:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="tars-why-") as tmp:
        folder = Path(tmp)
        with why_harness.load_why_suite(folder, keys) as suite:
            for week in suite.weeks:
                run = why_harness.run_why_week(week, suite.url, folder / week.key)
                rows.extend(why_harness.score_why_week(week, suite.truths[week.key], run))
                print(f"  {week.key}: {run.seconds:.0f} s", file=sys.stderr)
    return {"rows": rows, "totals": why_harness.totals(rows)}


def null(weeks: int, services: int) -> dict:
    counts = {label: [] for label in SETTINGS}
    started = time.monotonic()
    for seed in range(1, weeks + 1):
        week = null_week(seed, services)
        for label, thresholds in SETTINGS.items():
            config = scenario_config(week.release, **thresholds)
            _, judgement, _, _ = judge_days(
                week.days,
                config,
                week.release,
                lambda date, week=week: week.reference.get(date, empty_samples()),
            )
            counts[label].append(len(judgement["degradations"]))
    return {
        "weeks": weeks,
        "services": services,
        "kpi_series_per_week": services * 12,
        "seconds": round(time.monotonic() - started, 1),
        "settings": {
            label: {
                "degradations": sum(found),
                "weeks_with_any": sum(1 for n in found if n),
                "share_of_weeks_with_any": sum(1 for n in found if n) / weeks,
            }
            for label, found in counts.items()
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", help="comma-separated why-week keys (default: all)")
    parser.add_argument("--null-weeks", type=int, default=20)
    parser.add_argument("--null-services", type=int, default=3)
    parser.add_argument("--skip-prometheus", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result: dict = {}
    if not args.skip_prometheus:
        if harness.binaries() is None:
            print("prometheus/promtool not installed: localised weeks skipped", file=sys.stderr)
        else:
            result["localised"] = localised(args.weeks.split(",") if args.weeks else None)
    if args.null_weeks > 0:
        result["null"] = null(args.null_weeks, args.null_services)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    if "localised" in result:
        print("localised changes (one route or pod), per truly degraded KPI:")
        print(
            f"{'week':4} {'injection':34} {'kpi':12} {'found':5} {'onset':>7} {'±ci':>5} "
            f"{'rank':>4} {'head':>4} {'deploy':>6} {'decoy':>5}"
        )
        for r in result["localised"]["rows"]:
            err = r.get("onset_error_min")
            ci = r.get("ci_minutes")
            print(
                f"{r['week']:4} {r['injection'][:34]:34} {r['kpi'][:12]:12} "
                f"{'yes' if r['found'] else 'no':5} "
                f"{(f'{err:+.1f}' if err is not None else '-'):>7} "
                f"{(f'{ci:.0f}' if ci is not None else '-'):>5} "
                f"{r.get('rank') or '-'!s:>4} {('y' if r.get('headline_first') else 'n'):>4} "
                f"{('y' if r.get('deploy_named') else 'n'):>6} "
                f"{('y' if r.get('decoy_named') else 'n'):>5}"
            )
        print(json.dumps(result["localised"]["totals"]))
    if "null" in result:
        n = result["null"]
        print(
            f"null weeks: {n['weeks']} weeks x {n['kpi_series_per_week']} KPI series x 7 days "
            f"({n['seconds']} s)"
        )
        for label, figures in n["settings"].items():
            print(
                f"  {label:18} degradations {figures['degradations']:4}  weeks with any "
                f"{figures['weeks_with_any']:3} ({100 * figures['share_of_weeks_with_any']:.0f} %)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
