"""Score TARS on the realistic scenario suite, through a real Prometheus.

Generates the weeks of tars_pipeline_tests/realistic (exporter-shaped Micrometer, JVM,
kube-state and OpenCost metrics with injected changes and controls), backfills them into one
TSDB, serves it with one Prometheus, runs each week through the Dagster graph and prints one
row per week and a total line. docs/scenario-suite.md explains every column.

    python benchmarks/scenario_score.py                 # all weeks
    python benchmarks/scenario_score.py --weeks w1,w2   # some
    python benchmarks/scenario_score.py --json          # machine output

Exits 0 whatever the scores (it measures, it does not gate); without prometheus/promtool it
prints one line and exits 0.
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

from tars_pipeline_tests.realistic import harness  # noqa: E402

COLUMNS = (
    ("week", "week", 4),
    ("verdict", "verdict", 7),
    ("verdict_expected", "expect", 9),
    ("deg", "deg tp/fp/fn", 12),
    ("deg_precision", "prec", 5),
    ("deg_recall", "rec", 5),
    ("sudden", "sudden", 6),
    ("control_events_per_series", "ev/ctl", 6),
    ("control_criticals", "ctlcrit", 7),
    ("ga_health", "GA hl", 5),
    ("clean_min_health", "clean", 5),
    ("rec", "rec n/noise", 11),
    ("one_p01", "1xP01", 5),
    ("dup_p01", "dupP01", 6),
    ("drift", "drift/ctl", 9),
    ("incidents", "inc", 4),
    ("run_seconds", "run s", 6),
)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"
    return str(value)


def _cells(row: dict) -> dict[str, str]:
    if "error" in row:
        return {"week": row["week"], "verdict": "ERROR"}
    return {
        **{key: _fmt(row.get(key)) for key, _, _ in COLUMNS},
        "deg": f"{row['deg_tp']}/{row['deg_fp']}/{row['deg_fn']}",
        "sudden": f"{row['sudden_found']}/{row['sudden_total']}",
        "rec": f"{row['recommendations']}/{row['rec_noise']}",
        "one_p01": f"{row['injections_with_one_p01']}/{row['injections']}",
        "dup_p01": f"{row['injections_with_duplicate_p01']}/{row['injections_with_p01']}",
        "drift": f"{row['drifts']}/{row['drifts_on_controls']}",
    }


def total(rows: list[dict]) -> dict:
    ok = [r for r in rows if "error" not in r]

    def add(key: str) -> int:
        return sum(r[key] for r in ok)

    tp, fp, fn = add("deg_tp"), add("deg_fp"), add("deg_fn")
    control_series = add("control_series")
    clean = [r["clean_min_health"] for r in ok if r["clean_min_health"] is not None]
    ga = [r["ga_health"] for r in ok if r["ga_health"] is not None]
    incidents = [r["incidents"] for r in ok if r.get("incidents") is not None]
    return {
        "week": "ALL",
        "verdict": f"{sum(r['verdict_ok'] for r in ok)}ok",
        "verdict_expected": f"of {len(rows)}",
        "deg_tp": tp,
        "deg_fp": fp,
        "deg_fn": fn,
        "deg_precision": tp / (tp + fp) if tp + fp else None,
        "deg_recall": tp / (tp + fn) if tp + fn else None,
        "sudden_found": add("sudden_found"),
        "sudden_total": add("sudden_total"),
        "control_series": control_series,
        "control_events_per_series": round(add("control_events") / max(control_series, 1), 3),
        "control_criticals": add("control_criticals"),
        "ga_health": min(ga, default=None),
        "clean_min_health": min(clean, default=None),
        "recommendations": add("recommendations"),
        "rec_noise": add("rec_noise"),
        "injections_with_one_p01": add("injections_with_one_p01"),
        "injections_with_p01": add("injections_with_p01"),
        "injections_with_duplicate_p01": add("injections_with_duplicate_p01"),
        "injections": add("injections"),
        "drifts": add("drifts"),
        "drifts_on_controls": add("drifts_on_controls"),
        "incidents": sum(incidents) if incidents else None,
        "run_seconds": round(sum(r["run_seconds"] for r in rows), 1),
        "errors": len(rows) - len(ok),
    }


def print_table(rows: list[dict], out=sys.stdout) -> None:
    header = " ".join(title.rjust(width) for _, title, width in COLUMNS)
    print(header, file=out)
    print("-" * len(header), file=out)
    for row in [*rows, total(rows)]:
        cells = _cells(row)
        print(" ".join(cells.get(k, "").rjust(w) for k, _, w in COLUMNS), file=out)
    for row in rows:
        if "error" in row:
            print(f"  {row['week']}: {row['error'][:300]}", file=out)
            continue
        notes = []
        if row["missed"]:
            notes.append("missed " + ", ".join(row["missed"]))
        if row["false_degradations"]:
            notes.append("false " + ", ".join(row["false_degradations"]))
        misses = [d for d in row["sudden_detail"] if d.endswith("MISSED")]
        if misses:
            notes.append("sudden " + ", ".join(misses))
        for step in row.get("cost_steps", []):
            notes.append(
                f"cost step {step['injection']!r} day {step['day']}: cost level change "
                f"dated day {step['level_change_day']}"
            )
        if notes:
            print(f"  {row['week']}: " + "; ".join(notes), file=out)
    ok = [r for r in rows if "error" not in r]
    for key, title in (
        ("control_events_by_kpi", "events"),
        ("control_criticals_by_kpi", "critical events"),
    ):
        counts: dict[str, int] = {}
        for row in ok:
            for kpi, n in row[key].items():
                counts[kpi] = counts.get(kpi, 0) + n
        ranked = sorted(counts.items(), key=lambda item: -item[1])
        text = ", ".join(f"{kpi} {n}" for kpi, n in ranked) or "none"
        print(f"  {title} on control series by KPI: {text}", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", help="comma-separated week keys (default: all)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    if harness.binaries() is None:
        print("scenario_score: skipped, prometheus/promtool not installed")
        return 0
    keys = [k.strip() for k in args.weeks.split(",")] if args.weeks else None
    with tempfile.TemporaryDirectory(prefix="tars-scenarios-") as temporary:
        folder = args.keep or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        with harness.load_suite(folder, keys) as suite:
            rows = []
            started = time.monotonic()
            for week in suite.weeks:
                run = harness.run_week(week, suite.url, folder / "runs" / week.key)
                rows.append(harness.score_week(week, suite.truths[week.key], run))
            run_seconds = time.monotonic() - started
    timing = {
        "load_seconds": round(suite.load_seconds, 1),
        "run_seconds": round(run_seconds, 1),
        "samples": suite.samples,
        **{f"{k}_seconds": round(v, 1) for k, v in suite.timings.items()},
    }
    if args.json:
        weeks = {
            w.key: {
                "title": w.title,
                "ga_date": w.ga_date.isoformat() if w.ga_date else None,
                "timezone": w.timezone,
                "truth": [t.as_dict() for t in suite.truths[w.key]],
            }
            for w in suite.weeks
        }
        print(json.dumps({"timing": timing, "weeks": weeks, "rows": rows, "total": total(rows)}))
        return 0
    for w in suite.weeks:
        print(f"{w.key}: GA {w.ga_date} {w.ga_date:%a} {w.timezone}: {w.title}")
    print()
    print_table(rows)
    print()
    print(
        f"loaded {suite.samples:,} samples in {timing['load_seconds']} s "
        f"(generate {timing['generate_seconds']} s, waiting for promtool "
        f"{timing['backfill_wait_seconds']} s); ran {len(rows)} week(s) in "
        f"{timing['run_seconds']} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
