"""Feedback marks on the bundled week's findings: what the SRE said, and what it changes.

The judgement is the golden v1.0.1 regression summary (2 degradations, 3 unexpected
drifts, 3 incidents, 1 burned SLO of 9) with the retrospective's 6 anomaly events.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.feedback import (
    DEFAULT_FEEDBACK_NAME,
    Feedback,
    Mark,
    apply_feedback,
    detector_precision,
    feedback_path,
    finding_days,
    load_feedback,
    slo_burned,
)

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "v1.0.1"
RELEASE = "v1.0.1"


def _json(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def judgement() -> dict[str, Any]:
    return _json("regression_summary.json")


@pytest.fixture(scope="module")
def retrospective() -> dict[str, Any]:
    return _json("GA_7DAY_RETROSPECTIVE.json")


@pytest.fixture(scope="module")
def anomalies(retrospective: dict[str, Any]) -> list[dict[str, Any]]:
    return retrospective["anomalies"]


def _write(folder: Path, text: str) -> Path:
    path = folder / DEFAULT_FEEDBACK_NAME
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _load(folder: Path, text: str, **kwargs: Any) -> Feedback:
    return load_feedback(_write(folder, text), **kwargs)


def _applied(feedback: Feedback, judgement: dict, anomalies: list) -> dict[str, Any]:
    return apply_feedback(feedback, judgement, release=RELEASE, anomalies=anomalies)


def _by(records: list[dict], **fields: Any) -> dict[str, Any]:
    (record,) = [r for r in records if all(r.get(k) == v for k, v in fields.items())]
    return record


def _mark_status(result: dict, entry: int) -> str:
    return result["feedback"]["marks"][entry]["status"]


# --- the file ---------------------------------------------------------------------------


def test_no_file_or_an_empty_file_is_no_feedback(tmp_path: Path) -> None:
    assert load_feedback(None).marks == ()
    assert load_feedback(tmp_path / "absent.yaml").marks == ()
    assert _load(tmp_path, "").marks == ()
    assert _load(tmp_path, "marks:\n").marks == ()
    assert _load(tmp_path, "# nothing marked yet\nmarks: []\n").marks == ()


def test_a_mark_reads_every_field(tmp_path: Path) -> None:
    feedback = _load(
        tmp_path,
        """
        start_tolerance_minutes: 5
        marks:
          - finding: anomaly
            release: v1.0.1
            service: checkout
            kpi: error_rate
            day: 4
            start: 2026-03-07T11:17:00-05:00
            mark: expected
            reason: load test of the payment provider
            by: alice
            at: 2026-03-10
        """,
    )
    (mark,) = feedback.marks
    assert feedback.start_tolerance == dt.timedelta(minutes=5)
    assert mark.as_record() == {
        "entry": 0, "finding": "anomaly", "release": "v1.0.1", "service": "checkout",
        "kpi": "error_rate", "slo": None, "id": None, "day": 4,
        "start": "2026-03-07T11:17:00-05:00", "mark": "expected",
        "reason": "load test of the payment provider", "by": "alice", "at": "2026-03-10",
        "specificity": 5,
    }  # fmt: skip
    assert feedback.path == str(tmp_path / DEFAULT_FEEDBACK_NAME)


def test_the_file_lives_beside_tars_yaml_unless_configured(tmp_path: Path) -> None:
    config = tmp_path / "deploy" / "tars.yaml"
    assert feedback_path(config) == tmp_path / "deploy" / DEFAULT_FEEDBACK_NAME
    assert feedback_path(config, "marks/week.yaml") == tmp_path / "deploy" / "marks/week.yaml"
    assert feedback_path(config, tmp_path / "abs.yaml") == tmp_path / "abs.yaml"


# --- bad input: the file, the entry and the field, with the fix ---------------------------


def _entry(*lines: str) -> str:
    """One list item of marks:, a `key: value` per line."""
    return "  - " + "\n    ".join(lines) + "\n"


_CHECKOUT = ("finding: degradation", "service: checkout", "kpi: error_rate")
_ANOMALY = ("finding: anomaly", "service: checkout")
# case: (the entry, the field the error names)
BAD_ENTRIES = {
    "unknown key": (_entry(*_CHECKOUT, "mark: confirmed", "severity: high"), "severity"),
    "a key of another kind": (
        _entry(*_CHECKOUT, "mark: confirmed", "start: 2026-03-07T16:17:00Z"),
        "start",
    ),
    "bad mark": (_entry(*_CHECKOUT, "mark: false_positive"), "mark"),
    "missing mark": (_entry(*_CHECKOUT), "mark"),
    "bad finding": (_entry("finding: alert", "service: checkout", "mark: confirmed"), "finding"),
    "day past the window": (_entry(*_CHECKOUT, "day: 8", "mark: confirmed"), "day"),
    "negative day": (_entry(*_CHECKOUT, "day: -1", "mark: confirmed"), "day"),
    "fractional day": (_entry(*_CHECKOUT, "day: 2.5", "mark: confirmed"), "day"),
    "NaN day": (_entry(*_CHECKOUT, "day: .nan", "mark: confirmed"), "day"),
    "boolean day": (_entry(*_CHECKOUT, "day: yes", "mark: confirmed"), "day"),
    "start without offset": (
        _entry(*_ANOMALY, "start: 2026-03-07T16:17:00", "mark: confirmed"),
        "start",
    ),
    "start without a time": (_entry(*_ANOMALY, "start: 2026-03-07", "mark: confirmed"), "start"),
    "start not a time": (_entry(*_ANOMALY, "start: 'after lunch'", "mark: confirmed"), "start"),
    "at without offset": (_entry(*_CHECKOUT, "mark: confirmed", "at: 2026-03-10T09:00:00"), "at"),
    "expected without a reason": (_entry(*_CHECKOUT, "mark: expected"), "reason"),
    "numeric release": (_entry(*_CHECKOUT, "release: 1.10", "mark: confirmed"), "release"),
    "NaN service": (_entry("finding: slo", "service: .nan", "mark: confirmed"), "service"),
    "empty kpi": (_entry(*_ANOMALY, "kpi: ' '", "mark: confirmed"), "kpi"),
}


@pytest.mark.parametrize("case", sorted(BAD_ENTRIES))
def test_a_bad_entry_names_the_file_the_entry_and_the_field(tmp_path: Path, case: str) -> None:
    entry, field_name = BAD_ENTRIES[case]
    text = "marks:\n" + _entry(*_CHECKOUT, "mark: confirmed") + entry
    with pytest.raises(TarsUserError) as raised:
        load_feedback(_write(tmp_path, text), window_days=7)
    assert raised.value.where == f"{tmp_path / DEFAULT_FEEDBACK_NAME}: marks[1].{field_name}"
    assert raised.value.remedy


def test_the_nan_and_the_quoting_are_said_in_words(tmp_path: Path) -> None:
    for case, words in (("NaN day", "NaN"), ("numeric release", "quote it"),
                        ("a key of another kind", "anomaly findings only"),
                        ("day past the window", "outside the window 0..7")):  # fmt: skip
        with pytest.raises(TarsUserError, match=words):
            load_feedback(_write(tmp_path, "marks:\n" + BAD_ENTRIES[case][0]), window_days=7)


# case: (the file, words of the message, what `where` names after the file)
BAD_FILES = {
    "a list at the top": ("- finding: degradation\n", "top level", None),
    "unknown top-level key": ("marks: []\nowner: sre\n", "unknown top-level key", "owner"),
    "marks not a list": ("marks:\n  finding: degradation\n", "must be a list", "marks"),
    "an entry not a mapping": (
        "marks:\n  - degradation checkout\n",
        "must be a mapping",
        "marks[0]",
    ),
    "a mark that selects nothing": (
        "marks:\n" + _entry("finding: anomaly", "mark: confirmed"),
        "selects nothing",
        "marks[0]",
    ),
    "a key given twice": (
        "marks:\n" + _entry(*_CHECKOUT, "mark: confirmed", "mark: expected"),
        "given twice",
        None,
    ),
    "NaN tolerance": ("start_tolerance_minutes: .nan\n", "NaN", "start_tolerance_minutes"),
    "negative tolerance": ("start_tolerance_minutes: -5\n", "≥ 0", "start_tolerance_minutes"),
    "not YAML": ("marks: [\n", "not valid YAML", None),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_is_a_user_error_with_a_remedy(tmp_path: Path, case: str) -> None:
    text, words, field_name = BAD_FILES[case]
    path = _write(tmp_path, text)
    with pytest.raises(TarsUserError, match=words) as raised:
        load_feedback(path)
    expected_where = f"{path}: {field_name}" if field_name else str(path)
    assert raised.value.where == expected_where
    assert raised.value.remedy


def test_a_folder_in_place_of_the_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(TarsUserError, match="not a file"):
        load_feedback(tmp_path)


# --- matching each kind of finding --------------------------------------------------------


def test_a_degradation_is_matched_on_any_of_its_days(
    tmp_path: Path, judgement: dict, anomalies: list
) -> None:
    feedback = _load(
        tmp_path,
        """
        marks:
          - {finding: degradation, service: checkout, kpi: error_rate, day: 5, mark: confirmed}
          - {finding: degradation, service: checkout, kpi: error_rate, day: 6, mark: confirmed}
          - {finding: degradation, service: search, mark: confirmed}
        """,
    )
    result = _applied(feedback, judgement, anomalies)
    # checkout's error rate degraded on days 4 and 5 (golden days_degraded), not on 6.
    checkout = _by(result["degradations"], service="checkout")
    assert checkout["feedback"]["mark"] == "confirmed"
    assert checkout["feedback"]["entry"] == 0
    assert _by(result["degradations"], service="api-gateway")["feedback"] is None
    assert [_mark_status(result, entry) for entry in range(3)] == ["applied", "stale", "stale"]


def test_an_unexpected_drift_is_matched_on_the_days_it_reached_its_threshold(
    tmp_path: Path, judgement: dict, anomalies: list
) -> None:
    cpu = _by(judgement["unexpected_drifts"], kpi="cpu_utilization")
    # By hand from the golden record: 2.4 5.1 7.3 9.7 11.6 13.7 15.7 % against 10 %.
    assert finding_days("unexpected_drift", cpu) == {5, 6, 7}
    feedback = _load(
        tmp_path,
        """
        marks:
          - {finding: unexpected_drift, service: api-gateway, kpi: cpu_utilization,
             day: 4, mark: confirmed}
          - {finding: unexpected_drift, service: api-gateway, kpi: cpu_utilization,
             day: 5, mark: not_an_anomaly}
        """,
    )
    result = _applied(feedback, judgement, anomalies)
    assert _by(result["unexpected_drifts"], kpi="cpu_utilization")["feedback"]["entry"] == 1
    assert _by(result["unexpected_drifts"], kpi="memory_utilization")["feedback"] is None
    assert [_mark_status(result, entry) for entry in range(2)] == ["stale", "applied"]


def test_an_anomaly_is_matched_on_its_start_within_the_tolerance(
    tmp_path: Path, judgement: dict, anomalies: list
) -> None:
    # The CPU spike started 2026-03-08T20:29Z; the marks are 14 and 16 minutes off.
    text = """
        marks:
          - {finding: anomaly, service: api-gateway, start: "2026-03-08T20:43:00Z",
             mark: confirmed}
          - {finding: anomaly, service: api-gateway, start: "2026-03-08T16:13:00-04:00",
             mark: confirmed}
        """
    result = _applied(_load(tmp_path, text), judgement, anomalies)
    spike = _by(result["anomalies"], kpi="cpu_utilization")
    assert spike["feedback"]["entry"] == 0
    assert [_mark_status(result, entry) for entry in range(2)] == ["applied", "stale"]


def test_an_anomaly_with_a_wider_tolerance_fits_both_marks_and_that_is_an_error(
    tmp_path: Path, judgement: dict, anomalies: list
) -> None:
    text = """
        start_tolerance_minutes: 30
        marks:
          - {finding: anomaly, service: api-gateway, start: "2026-03-08T20:43:00Z",
             mark: confirmed}
          - {finding: anomaly, service: api-gateway, start: "2026-03-08T16:13:00-04:00",
             mark: expected, reason: x}
        """
    with pytest.raises(TarsUserError, match=r"marks\[0\].*and marks\[1\].*same specificity"):
        _applied(_load(tmp_path, text), judgement, anomalies)


def test_anomalies_as_the_asset_reads_them_match_too(
    tmp_path: Path, judgement: dict, anomalies: list
) -> None:
    events = pd.DataFrame(anomalies).assign(start=lambda f: pd.to_datetime(f["start"]))
    feedback = _load(
        tmp_path,
        "marks:\n  - {finding: anomaly, service: checkout, start: 2026-03-07T16:20:00Z,"
        " mark: confirmed}\n",
    )
    result = apply_feedback(feedback, judgement, release=RELEASE, anomalies=events)
    marked = [(a["kpi"], a["feedback"]["mark"]) for a in result["anomalies"] if a["feedback"]]
    assert marked == [("availability", "confirmed"), ("error_rate", "confirmed")]
    assert result["feedback"]["marks"][0]["note"] == "applies to 2 findings"


def test_a_mark_matching_several_findings_marks_them_all_and_says_so(
    tmp_path: Path, judgement: dict, anomalies: list
) -> None:
    feedback = _load(
        tmp_path, "marks:\n  - {finding: anomaly, service: api-gateway, day: 2, mark: confirmed}\n"
    )
    result = _applied(feedback, judgement, anomalies)
    (record,) = result["feedback"]["marks"]
    assert record["note"] == "applies to 3 findings"
    assert sorted(label.split(" at ")[0] for label in record["applied_to"]) == [
        "anomaly api-gateway/latency_p50",
        "anomaly api-gateway/latency_p95",
        "anomaly api-gateway/latency_p99",
    ]


def test_an_slo_is_a_finding_only_when_it_burned(
    tmp_path: Path, judgement: dict, anomalies: list
) -> None:
    burned = [(s["service"], s["slo"]) for s in judgement["slo_compliance"] if slo_burned(s)]
    assert burned == [("api-gateway", "latency_p99")]  # breached on day 2, 2 alerts fired
    feedback = _load(
        tmp_path,
        """
        marks:
          - {finding: slo, service: api-gateway, slo: latency_p99, day: 2, mark: confirmed}
          - {finding: slo, service: api-gateway, slo: availability, mark: confirmed}
        """,
    )
    result = _applied(feedback, judgement, anomalies)
    latency = _by(result["slo_compliance"], service="api-gateway", slo="latency_p99")
    assert latency["feedback"]["mark"] == "confirmed"
    assert [_mark_status(result, entry) for entry in range(2)] == ["applied", "stale"]


def test_an_incident_mark_is_inherited_by_members_without_a_mark_of_their_own(
    tmp_path: Path, judgement: dict, anomalies: list
) -> None:
    feedback = _load(
        tmp_path,
        """
        marks:
          - {finding: incident, id: "checkout#1", mark: expected, reason: load test, by: alice}
          - {finding: anomaly, service: checkout, kpi: availability, mark: confirmed}
          - {finding: incident, service: search, mark: confirmed}
        """,
    )
    result = _applied(feedback, judgement, anomalies)
    incident = _by(result["incidents"], id="checkout#1")
    assert incident["feedback"]["mark"] == "expected"
    degradation = _by(result["degradations"], service="checkout")
    assert degradation["feedback"]["via"] == "incident checkout#1"
    assert degradation["feedback"]["by"] == "alice"
    assert _by(result["anomalies"], service="checkout", kpi="error_rate")["feedback"]["via"]
    own = _by(result["anomalies"], service="checkout", kpi="availability")["feedback"]
    assert (own["mark"], own["via"]) == ("confirmed", None)
    assert _by(result["incidents"], id="api-gateway#1")["feedback"] is None
    first = result["feedback"]["marks"][0]
    assert first["inherited_by"] == [
        "degradation checkout/error_rate",
        "anomaly checkout/error_rate at 2026-03-07T16:17:00+00:00",
    ]
    assert _mark_status(result, 2) == "stale"


def test_an_incident_is_matched_by_any_of_its_kpis_and_days(
    tmp_path: Path, judgement: dict, anomalies: list
) -> None:
    feedback = _load(
        tmp_path,
        """
        marks:
          - {finding: incident, service: api-gateway, kpi: latency_p50, day: 2, mark: confirmed}
          - {finding: incident, service: api-gateway, kpi: error_rate, mark: confirmed}
        """,
    )
    result = _applied(feedback, judgement, anomalies)
    assert _by(result["incidents"], id="api-gateway#1")["feedback"]["entry"] == 0
    assert _by(result["incidents"], id="api-gateway#2")["feedback"] is None
    assert _mark_status(result, 1) == "stale"  # no api-gateway incident involves error_rate


# --- specificity and releases -----------------------------------------------------------


def test_the_more_specific_mark_wins_and_the_other_is_reported_overridden(
    tmp_path: Path, judgement: dict, anomalies: list
) -> None:
    feedback = _load(
        tmp_path,
        """
        marks:
          - {finding: degradation, service: checkout, mark: confirmed}
          - {finding: degradation, service: checkout, kpi: error_rate, day: 4,
             mark: expected, reason: migration}
        """,
    )
    result = _applied(feedback, judgement, anomalies)
    assert _by(result["degradations"], service="checkout")["feedback"]["entry"] == 1
    loser = result["feedback"]["marks"][0]
    assert loser["status"] == "overridden"
    assert loser["overridden_on"] == [{"finding": "degradation checkout/error_rate", "by_entry": 1}]


def test_equal_specificity_on_one_finding_names_both_entries(
    tmp_path: Path, judgement: dict, anomalies: list
) -> None:
    feedback = _load(
        tmp_path,
        """
        marks:
          - {finding: degradation, service: checkout, kpi: error_rate, mark: confirmed}
          - {finding: degradation, kpi: error_rate, day: 4, mark: not_an_anomaly}
        """,
    )
    with pytest.raises(TarsUserError) as raised:
        _applied(feedback, judgement, anomalies)
    message = str(raised.value)
    assert "marks[0]" in message and "marks[1]" in message
    assert "degradation checkout/error_rate" in message
    assert raised.value.where == str(tmp_path / DEFAULT_FEEDBACK_NAME)


def test_a_release_narrows_a_mark_and_another_release_is_ignored(
    tmp_path: Path, judgement: dict, anomalies: list
) -> None:
    feedback = _load(
        tmp_path,
        """
        marks:
          - {finding: degradation, service: checkout, mark: not_an_anomaly}
          - {finding: degradation, release: v1.0.1, service: checkout, mark: confirmed}
          - {finding: degradation, release: v1.0.2, service: checkout, kpi: error_rate,
             mark: expected, reason: x}
        """,
    )
    assert [m.entry for m in feedback.for_release(RELEASE).marks] == [0, 1]
    result = _applied(feedback, judgement, anomalies)
    assert _by(result["degradations"], service="checkout")["feedback"]["entry"] == 1
    assert [m["entry"] for m in result["feedback"]["marks"]] == [0, 1]
    # Without a release only the marks naming none apply.
    plain = apply_feedback(feedback, judgement, anomalies=anomalies)
    assert _by(plain["degradations"], service="checkout")["feedback"]["entry"] == 0


def test_mark_of_picks_the_most_specific_match() -> None:
    broad = Mark(entry=0, finding="anomaly", mark="confirmed", service="checkout")
    narrow = Mark(entry=1, finding="anomaly", mark="not_an_anomaly", service="checkout", day=4)
    event = {"service": "checkout", "kpi": "error_rate", "day": 4, "start": "2026-03-07T16:17Z"}
    feedback = Feedback(marks=(broad, narrow))
    assert feedback.mark_of("anomaly", event) is narrow
    assert feedback.mark_of("anomaly", {**event, "day": 5}) is broad
    assert feedback.mark_of("degradation", event) is None


# --- the verdict, and what stays as measured ----------------------------------------------


def test_expected_findings_leave_the_verdict_with_their_reasons(
    tmp_path: Path, retrospective: dict
) -> None:
    feedback = _load(
        tmp_path,
        """
        marks:
          - {finding: incident, id: "api-gateway#1", mark: expected, reason: cache flush, by: bob}
          - {finding: slo, service: api-gateway, slo: latency_p99,
             mark: expected, reason: cache flush}
          - {finding: degradation, service: checkout, kpi: error_rate,
             mark: expected, reason: load test}
        """,
    )
    before = copy.deepcopy(retrospective)
    result = apply_feedback(feedback, retrospective, release=RELEASE)
    assert retrospective == before  # a copy, not the input, is annotated
    assert result["verdict"] == {"status": "pass", "reasons": []}
    assert result["feedback"]["verdict_as_measured"] == before["verdict"]
    excluded = {
        (e["label"], e["reason"], e["verdict_reason"]["rule"])
        for e in result["feedback"]["excluded_from_verdict"]
    }
    assert excluded == {
        ("degradation api-gateway/latency_p99", "cache flush", "high_degradation"),
        ("degradation checkout/error_rate", "load test", "medium_degradation"),
        ("slo api-gateway/latency_p99", "cache flush", "slo_breached_on_a_day"),
    }
    # The verdict only: health, the findings and their figures stay as measured.
    assert result["health_scores"] == before["health_scores"]
    assert len(result["degradations"]) == 2
    for key in ("severity", "change_pct", "p_value", "status"):
        assert [d[key] for d in result["degradations"]] == [d[key] for d in before["degradations"]]


def test_a_false_positive_or_a_confirmation_keeps_its_verdict_reason(
    tmp_path: Path, judgement: dict, anomalies: list
) -> None:
    feedback = _load(
        tmp_path,
        """
        marks:
          - {finding: degradation, service: api-gateway, kpi: latency_p99, mark: not_an_anomaly}
          - {finding: degradation, service: checkout, kpi: error_rate, mark: confirmed}
          - {finding: anomaly, service: api-gateway, kpi: cpu_utilization,
             mark: expected, reason: backup}
        """,
    )
    result = _applied(feedback, judgement, anomalies)
    assert result["verdict"] == judgement["verdict"]
    assert result["feedback"]["excluded_from_verdict"] == []
    spike = _by(result["anomalies"], kpi="cpu_utilization")["feedback"]
    assert (spike["mark"], spike["excluded_from_verdict"]) == ("expected", False)


def test_an_expected_slo_that_only_fired_alerts_had_no_verdict_reason_to_drop(
    tmp_path: Path, judgement: dict, anomalies: list
) -> None:
    alerts_only = copy.deepcopy(judgement)
    latency = _by(alerts_only["slo_compliance"], service="api-gateway", slo="latency_p99")
    latency["by_day"] = [{**day, "compliant": True} for day in latency["by_day"]]
    alerts_only["degradations"] = []
    alerts_only["verdict"] = {"status": "pass", "reasons": []}
    assert slo_burned(latency) and latency["alerts_fired"]
    feedback = _load(
        tmp_path,
        "marks:\n  - {finding: slo, slo: latency_p99, mark: expected, reason: failover drill}\n",
    )
    result = _applied(feedback, alerts_only, anomalies)
    marked = _by(result["slo_compliance"], service="api-gateway", slo="latency_p99")
    mark = marked["feedback"]
    assert (mark["mark"], mark["excluded_from_verdict"]) == ("expected", False)
    assert result["feedback"]["excluded_from_verdict"] == []
    assert result["verdict"] == {"status": "pass", "reasons": []}


def test_the_days_a_mark_can_name_for_each_kind(judgement: dict) -> None:
    by_day = [{"day": 1, "compliant": True}, {"day": 3, "compliant": False},
              {"day": 4, "compliant": None}, {"day": 6, "compliant": False}]  # fmt: skip
    assert finding_days("slo", {"by_day": by_day}) == {3, 6}
    assert finding_days("degradation", {"day_first": 3, "days_degraded": []}) == {3}
    checkout = _by(judgement["degradations"], service="checkout")
    assert finding_days("degradation", checkout) == {4, 5}
    incident = _by(judgement["incidents"], id="api-gateway#1")
    assert finding_days("incident", incident) == {2}
    assert finding_days("anomaly", {"day": float("nan")}) == set()


# --- precision --------------------------------------------------------------------------


def test_precision_per_detector_from_the_marks(
    tmp_path: Path, judgement: dict, anomalies: list
) -> None:
    feedback = _load(
        tmp_path,
        """
        marks:
          - {finding: anomaly, service: api-gateway, kpi: latency_p99, mark: confirmed}
          - {finding: anomaly, service: api-gateway, kpi: latency_p95, mark: confirmed}
          - {finding: anomaly, service: api-gateway, kpi: latency_p50, mark: not_an_anomaly}
          - {finding: anomaly, service: api-gateway, kpi: cpu_utilization,
             mark: expected, reason: backup}
          - {finding: unexpected_drift, service: search, mark: expected, reason: reindex}
          - {finding: degradation, service: checkout, mark: not_an_anomaly}
        """,
    )
    rows = {
        r["detector"]: r for r in _applied(feedback, judgement, anomalies)["feedback"]["precision"]
    }
    # By hand: 6 events, 2 confirmed, 1 false, 1 expected, 2 unmarked → 2 / 3.
    assert rows["anomaly"] == {
        "detector": "anomaly", "findings": 6, "confirmed": 2, "not_an_anomaly": 1,
        "expected": 1, "unmarked": 2, "precision": pytest.approx(2 / 3),
    }  # fmt: skip
    assert rows["degradation"]["precision"] == 0.0  # 0 confirmed of 1 judged
    assert rows["degradation"]["unmarked"] == 1
    assert rows["unexpected_drift"]["expected"] == 1
    assert rows["unexpected_drift"]["precision"] is None  # expected counts on neither side
    assert rows["slo_burn"] == {
        "detector": "slo_burn", "findings": 1, "confirmed": 0, "not_an_anomaly": 0,
        "expected": 0, "unmarked": 1, "precision": None,
    }  # fmt: skip


def test_incident_marks_count_for_their_members_detectors(
    tmp_path: Path, judgement: dict, anomalies: list
) -> None:
    feedback = _load(
        tmp_path, "marks:\n  - {finding: incident, id: 'checkout#1', mark: confirmed}\n"
    )
    rows = {
        r["detector"]: r for r in _applied(feedback, judgement, anomalies)["feedback"]["precision"]
    }
    # checkout#1: the error-rate degradation and 2 anomaly events (error rate, availability).
    assert (rows["degradation"]["confirmed"], rows["anomaly"]["confirmed"]) == (1, 2)
    assert rows["degradation"]["precision"] == rows["anomaly"]["precision"] == 1.0
    assert [r["detector"] for r in detector_precision([])] == [
        "degradation", "anomaly", "unexpected_drift", "slo_burn",
    ]  # fmt: skip


def test_detector_precision_counts_pairs() -> None:
    marks = ["confirmed"] * 7 + ["not_an_anomaly"] * 3 + ["expected"] * 2 + [None] * 5
    (row,) = [r for r in detector_precision(("degradation", m) for m in marks)
              if r["detector"] == "degradation"]  # fmt: skip
    assert (row["findings"], row["unmarked"], row["precision"]) == (17, 5, 0.7)
    with pytest.raises(ValueError, match="unknown detector"):
        detector_precision([("incident", "confirmed")])
