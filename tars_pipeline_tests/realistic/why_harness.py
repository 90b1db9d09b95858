"""Load the localised weeks (why_weeks) into a Prometheus, run TARS on each with its
annotation file, and score the why-and-when of what it wrote (docs/scenario-suite.md).

Per injected change (one route or one pod): for each degradation the injection truly
causes and TARS reported, the onset error (reported onset − injected start, minutes), the
rank of the injected label value among the contributors of its dimension, and whether the
deploy placed before it was named and the decoy after it was not.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tars_pipeline.config import load_config
from tars_pipeline_tests.conftest import run_the_week, week_runner
from tars_pipeline_tests.prometheus.conftest import serving
from tars_pipeline_tests.realistic import generator as gen
from tars_pipeline_tests.realistic import harness
from tars_pipeline_tests.realistic.why_weeks import annotations_of, label_of, placed_why_weeks

__all__ = ["load_why_suite", "placed_why_weeks", "run_why_week", "score_why_week", "totals"]

ONSET_TOLERANCE_MINUTES = 10.0


@contextmanager
def load_why_suite(folder: Path, keys: list[str] | None = None) -> Iterator[harness.Suite]:
    found = harness.binaries()
    assert found is not None, "prometheus/promtool not installed"
    prometheus, promtool = found
    now = dt.datetime.now(dt.UTC)
    weeks = placed_why_weeks(now)
    if keys is not None:
        weeks = tuple(w for w in weeks if w.key in set(keys))
    started = time.monotonic()
    truths = {w.key: gen.ground_truth(w) for w in weeks}
    samples, timings = harness.build_tsdb(weeks, folder / "tsdb", promtool, now)
    with serving(prometheus, folder / "tsdb", folder) as (url, _port, _pid):
        yield harness.Suite(
            url, weeks, truths, time.monotonic() - started, samples, folder, timings
        )


def run_why_week(
    week: gen.WeekSpec, url: str, folder: Path, marks: list[dict[str, Any]] | None = None
) -> harness.WeekRun:
    """The week through the graph with its annotation file, and with `marks` as the
    tars.feedback.yaml beside its tars.yaml when given."""
    folder.mkdir(parents=True, exist_ok=True)
    notes = folder / "annotations.yaml"
    notes.write_text(yaml.safe_dump({"annotations": annotations_of(week)}), encoding="utf-8")
    if marks:
        feedback = folder / "tars.feedback.yaml"
        feedback.write_text(yaml.safe_dump({"marks": marks}), encoding="utf-8")
    config = load_config(harness.week_config(week, url, folder, annotations={"file": str(notes)}))
    started = time.monotonic()
    with week_runner(folder, config) as (runner, _instance):
        run_the_week(runner, week.release_name)
    out = folder / "out" / week.release_name
    retro = json.loads((out / "GA_7DAY_RETROSPECTIVE.json").read_text(encoding="utf-8"))
    return harness.WeekRun(week.key, time.monotonic() - started, retro, {})


def _contributor_rank(record: dict[str, Any], label: str, value: str) -> int | None:
    """1-based rank of `value` among the contributors of dimension `label`; None when
    that dimension was not ranked or the value is not listed."""
    contributors = record.get("contributors") or {}
    for dimension in contributors.get("dimensions") or []:
        if dimension.get("dimension") != label:
            continue
        elements = [e.get("element") for e in dimension.get("elements") or []]
        return elements.index(value) + 1 if value in elements else None
    return None


def _headline_first(record: dict[str, Any], label: str, value: str) -> bool:
    """The first headline contributor is the injected label value."""
    top = (record.get("contributors") or {}).get("top") or []
    return bool(top) and top[0].get("dimension") == label and top[0].get("element") == value


def score_why_week(week: gen.WeekSpec, truths: list[gen.Truth], run: harness.WeekRun) -> list[dict]:
    """One row per (injection, truly degraded KPI) that TARS reported as a degradation,
    plus one row per truly degraded KPI it missed (found False)."""
    found = {(d["service"], d["kpi"]): d for d in run.retrospective.get("degradations", [])}
    notes = annotations_of(week)
    rows = []
    for truth in truths:
        inj = truth.injection
        label, value = label_of(inj)
        deploys = {
            n["title"] for n in notes if n["kind"] == "deploy" and n["service"] == inj.service
        }
        decoys = {
            n["title"] for n in notes if n["kind"] == "config" and n["service"] == inj.service
        }
        for kpi, service, _day in truth.degradations:
            record = found.get((service, kpi))
            row: dict[str, Any] = {
                "week": week.key,
                "injection": inj.label,
                "kpi": kpi,
                "label": f"{label}={value}",
                "found": record is not None,
            }
            if record is not None:
                onset = record.get("onset")
                error = None
                if onset:
                    at = dt.datetime.fromisoformat(onset["onset"]).timestamp()
                    error = (at - truth.start_ts) / 60.0
                named = {a["title"] for a in record.get("annotations") or []}
                row.update(
                    onset_error_min=error,
                    onset_ok=error is not None and abs(error) <= ONSET_TOLERANCE_MINUTES,
                    ci_minutes=(
                        max(onset["onset_minus_minutes"], onset["onset_plus_minutes"])
                        if onset
                        else None
                    ),
                    rank=_contributor_rank(record, label, value),
                    headline_first=_headline_first(record, label, value),
                    deploy_named=bool(named & deploys),
                    decoy_named=bool(named & decoys),
                    headline=(record.get("contributors") or {}).get("headline"),
                )
            rows.append(row)
    return rows


def totals(rows: list[dict]) -> dict[str, Any]:
    judged = [r for r in rows if r["found"]]
    n = len(judged)

    def share(key: str) -> float | None:
        return sum(1 for r in judged if r.get(key)) / n if n else None

    return {
        "truly_degraded": len(rows),
        "reported": n,
        "onset_within_10min": share("onset_ok"),
        "label_ranked_first": (sum(1 for r in judged if r.get("rank") == 1) / n) if n else None,
        "headline_first": share("headline_first"),
        "deploy_named": share("deploy_named"),
        "decoy_named": share("decoy_named"),
    }
