"""The window judge streams the services a few at a time; the judgement must be the same,
to the last bit, however the services are cut: one piece, one service per piece, or two.

Five generated services with different stories (a latency step, a ramp, an availability
breach, a resource drift with its cause, a quiet one, and a cost step over every service),
so the pieces split the family of tests of the false-discovery control, the SLOs, the
sensitivity table and the onsets of the findings between them.
"""

from __future__ import annotations

import json
from functools import cache

import pandas as pd
import pytest

from tars_pipeline.judge.window import FrameSamples, service_chunks
from tars_pipeline.reporting.jsonio import to_jsonable
from tars_pipeline_tests.scenarios.generator import Ramp, Step, generate_week, release
from tars_pipeline_tests.scenarios.harness import judge_days, scenario_config

COST_STEP = Step("cost_compute", 2, 40.0)  # every service's: the total steps on day 2
STORIES = {
    "api": (Step("latency_p95", 3, 25.0), COST_STEP),
    "billing": (Ramp("latency_p50", 3.0), COST_STEP),
    "checkout": (Step("error_rate", 6, 300.0), COST_STEP),
    "search": (Ramp("cpu_utilization", 2.5), Ramp("throughput", 2.0), COST_STEP),
    "users": (COST_STEP,),
}


@cache
def _samples_by_day() -> dict[int, pd.DataFrame]:
    weeks = {
        service: generate_week(changes, seed=seed)
        for seed, (service, changes) in enumerate(STORIES.items(), start=1)
    }
    return {
        day: pd.concat(
            [week.samples(day).assign(service=service) for service, week in weeks.items()],
            ignore_index=True,
        )
        for day in range(8)
    }


def _document(**extra) -> str:
    config = scenario_config(release())
    _, judgement, recommendations, _ = judge_days(
        _samples_by_day(), config, config.releases[0], **extra
    )
    return json.dumps(
        to_jsonable({**judgement, "recommendations": recommendations}), sort_keys=True
    )


@cache
def _whole() -> str:
    return _document()


def test_the_week_has_findings_in_several_services_and_a_cost_onset() -> None:
    document = json.loads(_whole())
    assert {d["service"] for d in document["degradations"]} >= {"api", "billing", "checkout"}
    assert any(d["service"] == "search" for d in document["unexpected_drifts"])
    onsets = {(d["service"], d["kpi"]): d["onset"] for d in document["degradations"]}
    assert onsets[("api", "latency_p95")] is not None  # a step has an onset (a ramp none)
    assert onsets[("checkout", "error_rate")] is not None
    assert document["cost_analysis"]["level_change"]["onset"] is not None
    assert len(document["slo_compliance"]) >= 2 * len(STORIES)
    assert {s["service"] for k in document["sensitivity"] for s in k["services"]} == set(STORIES)


@pytest.mark.parametrize("per_piece", [1, 2])
def test_any_cut_of_the_services_gives_the_same_judgement(per_piece: int) -> None:
    by_day = _samples_by_day()
    week = pd.concat([by_day[day] for day in range(1, 8)], ignore_index=True)
    rows = FrameSamples(by_day[0], week).rows_by_service()
    chunk_rows = per_piece * max(rows.values())
    pieces = list(service_chunks(rows, chunk_rows))
    assert len(pieces) == -(-len(STORIES) // per_piece)  # 5 pieces, or 3
    assert _document(chunk_rows=chunk_rows) == _whole()


def test_the_services_are_cut_in_order_and_none_is_lost() -> None:
    rows = {"c": 5, "a": 3, "b": 4, "d": 0, "e": 9}
    assert list(service_chunks(rows, 7)) == [["a", "b"], ["c", "d"], ["e"]]
    assert list(service_chunks(rows, 1)) == [["a"], ["b"], ["c"], ["d"], ["e"]]
    assert list(service_chunks({}, 7)) == []
