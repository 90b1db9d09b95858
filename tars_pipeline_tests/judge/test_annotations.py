"""Change annotations: the file format, and which changes a finding names.

The story: checkout's p99 latency steps up at 14:32 on Day 2. The team's annotation file
says checkout was deployed at 14:29, the shared database's pool was resized at 14:20, and
search was deployed at 14:31. The finding on checkout should read "began 3 min after
deploy checkout@4f2a" and then name the pool change; search's deploy is not checkout's
cause, and a flag flipped at 14:40 came too late to be one.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.annotations import (
    Annotation,
    annotations_before,
    clean_text,
    in_window,
    match_sentence,
    merge_annotations,
)
from tars_pipeline.sources.annotations import load_annotation_file

ONSET = pd.Timestamp("2026-03-05T14:32:00Z")


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


def annotation(
    minutes_before: float,
    title: str = "checkout@4f2a",
    *,
    service: str | None = "checkout",
    kind: str = "deploy",
    end_after_minutes: float | None = None,
) -> Annotation:
    ts = ONSET - pd.Timedelta(minutes=minutes_before)
    end = None if end_after_minutes is None else ts + pd.Timedelta(minutes=end_after_minutes)
    return Annotation(ts=ts, kind=kind, title=title, service=service, source="file", end=end)


# --- the file -------------------------------------------------------------------------------

GOOD_YAML = """\
# Changes of the v1.0.2 week, appended by the deploy pipeline.
annotations:
  - time: 2026-03-05T14:29:00Z
    kind: deploy
    title: checkout@4f2a
    service: checkout
    url: https://ci.example.com/deploys/4f2a
  - time: 2026-03-05T09:20:00-05:00      # New York time: 14:20 UTC
    kind: config
    title: "db pool 20 -> 40"
    detail: |
      Raised the shared pool
      after Tuesday's saturation.
  - time: 2026-03-05T15:31:30+01:00      # 14:31:30 UTC
    kind: feature_flag
    title: "1.10"
    service: [search, checkout]
    end: 2026-03-05T16:00:00+01:00
"""


def test_a_yaml_file_reads_into_utc_annotations_in_time_order(tmp_path: Path) -> None:
    path = tmp_path / "changes.yaml"
    path.write_text(GOOD_YAML, encoding="utf-8")

    loaded = load_annotation_file(path)

    # By hand: 09:20 at -05:00 is 14:20 UTC; 15:31:30 at +01:00 is 14:31:30 UTC.
    assert [a.ts for a in loaded] == [
        pd.Timestamp("2026-03-05 14:20:00", tz="UTC"),
        pd.Timestamp("2026-03-05 14:29:00", tz="UTC"),
        pd.Timestamp("2026-03-05 14:31:30", tz="UTC"),
        pd.Timestamp("2026-03-05 14:31:30", tz="UTC"),
    ]
    pool, deploy, flag_checkout, flag_search = loaded
    assert deploy.as_record() == {
        "ts": "2026-03-05T14:29:00+00:00",
        "end": None,
        "kind": "deploy",
        "title": "checkout@4f2a",
        "service": "checkout",
        "source": "file",
        "url": "https://ci.example.com/deploys/4f2a",
        "detail": None,
    }
    assert pool.service is None and pool.kind == "config"
    assert pool.detail == "Raised the shared pool after Tuesday's saturation."
    # A list of services is one annotation per service; a quoted "1.10" stays text.
    assert {flag_checkout.service, flag_search.service} == {"checkout", "search"}
    assert flag_search.title == "1.10"
    assert flag_search.end == pd.Timestamp("2026-03-05 15:00:00", tz="UTC")
    json.dumps([a.as_record() for a in loaded], allow_nan=False)


def test_the_same_annotations_from_json(tmp_path: Path) -> None:
    (tmp_path / "changes.yaml").write_text(GOOD_YAML, encoding="utf-8")
    entries = [
        {
            "time": "2026-03-05T14:29:00Z",
            "kind": "deploy",
            "title": "checkout@4f2a",
            "service": "checkout",
            "url": "https://ci.example.com/deploys/4f2a",
        },
        {
            "time": "2026-03-05T09:20:00-05:00",
            "kind": "config",
            "title": "db pool 20 -> 40",
            "detail": "Raised the shared pool\nafter Tuesday's saturation.\n",
        },
        {
            "time": "2026-03-05T15:31:30+01:00",
            "kind": "feature_flag",
            "title": "1.10",
            "service": ["search", "checkout"],
            "end": "2026-03-05T16:00:00+01:00",
        },
    ]
    (tmp_path / "changes.json").write_text(json.dumps({"annotations": entries}), "utf-8")

    from_json = load_annotation_file("changes.json", base_dir=tmp_path)
    assert from_json == load_annotation_file(tmp_path / "changes.yaml")


def test_an_empty_list_is_no_annotations(tmp_path: Path) -> None:
    for text in ("annotations: []\n", "annotations:\n"):
        (tmp_path / "none.yaml").write_text(text, encoding="utf-8")
        assert load_annotation_file(tmp_path / "none.yaml") == []


ENTRY = {"time": "2026-03-05T14:29:00Z", "kind": "deploy", "title": "checkout@4f2a"}


def yaml_entry(**fields: str) -> str:
    """A two-entry file whose second entry (annotations[1], line 5) has these fields."""
    body = "".join(f"    {name}: {value}\n" for name, value in fields.items())
    return (
        "annotations:\n"
        "  - time: 2026-03-05T14:00:00Z\n    kind: other\n    title: fine\n"
        f"  - {body[4:]}"
    )


BAD_ENTRIES = [
    # (name, fields of annotations[1], field named, words the message must hold)
    ("no offset", dict(ENTRY, time="2026-03-05T14:29:00"), "time", "no UTC offset"),
    ("date only", dict(ENTRY, time="2026-03-05"), "time", "no UTC offset"),
    ("garbage", dict(ENTRY, time="yesterday"), "time", "not an ISO-8601 time"),
    ("NaN", dict(ENTRY, time=".nan"), "time", "not a time"),
    ("NaT", dict(ENTRY, time="NaT"), "time", "not an ISO-8601 time"),
    ("epoch", dict(ENTRY, time="1772720940"), "time", "ambiguous"),
    ("bad offset", dict(ENTRY, time="2026-03-05T14:29:00+25:00"), "time", "not an ISO-8601"),
    ("kind typo", dict(ENTRY, kind="deployment"), "kind", "did you mean 'deploy'"),
    ("kind list", dict(ENTRY, kind="[deploy]"), "kind", "must be text, got a list"),
    ("title number", dict(ENTRY, title="1.10"), "title", "quote it"),
    ("title boolean", dict(ENTRY, title="yes"), "title", "expected text"),
    ("title blank", dict(ENTRY, title='"  "'), "title", "title is empty"),
    ("field typo", dict(ENTRY, servce="checkout"), "servce", "did you mean 'service'"),
    ("end first", dict(ENTRY, end="2026-03-05T14:00:00Z"), "end", "before it begins"),
    ("end naive", dict(ENTRY, end="2026-03-05T15:00:00"), "end", "no UTC offset"),
    ("url creds", dict(ENTRY, url="https://bot:hunter22@ci.example.com/x"), "url", "credentials"),
    ("url scheme", dict(ENTRY, url="ci.example.com/x"), "url", "not an http(s) URL"),
    ("services empty", dict(ENTRY, service="[]"), "service", "empty list"),
    ("service number", dict(ENTRY, service="42"), "service", "expected text"),
]


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [case[1:] for case in BAD_ENTRIES],
    ids=[case[0] for case in BAD_ENTRIES],
)
def test_a_bad_entry_names_the_file_line_entry_title_and_field(
    tmp_path: Path, fields: dict[str, str], field: str, words: str
) -> None:
    path = tmp_path / "changes.yaml"
    path.write_text(yaml_entry(**fields), encoding="utf-8")

    with pytest.raises(TarsUserError) as raised:
        load_annotation_file(path)

    error = raised.value
    title = yaml.safe_load(fields["title"])  # what YAML makes of it, independently
    named = f" ({title!r})" if isinstance(title, str) and title.strip() else ""
    assert error.where == f"{path}:5 annotations[1]{named}.{field}", error.where
    assert words in str(error)
    assert error.remedy


def test_a_missing_required_field_is_named(tmp_path: Path) -> None:
    path = tmp_path / "changes.yaml"
    path.write_text(yaml_entry(time="2026-03-05T14:29:00Z", kind="deploy"), "utf-8")
    with pytest.raises(TarsUserError, match="required field 'title' is missing") as raised:
        load_annotation_file(path)
    assert raised.value.where == f"{path}:5 annotations[1].title"


def test_a_field_given_twice_is_refused_not_silently_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "changes.yaml"
    text = yaml_entry(**ENTRY) + "    time: 2026-03-05T18:00:00Z\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TarsUserError, match="'time' is given twice") as raised:
        load_annotation_file(path)
    assert raised.value.where == f"{path}:5 annotations[1] ('checkout@4f2a').time"


def test_an_entry_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "changes.yaml"
    path.write_text("annotations:\n  - deploy checkout at 14:29\n", encoding="utf-8")
    with pytest.raises(TarsUserError, match="must be a mapping of fields") as raised:
        load_annotation_file(path)
    assert raised.value.where == f"{path}:2 annotations[0]"


def test_json_errors_name_the_entry_too(tmp_path: Path) -> None:
    path = tmp_path / "changes.json"
    entries = [ENTRY, {**ENTRY, "time": float("nan"), "title": "search@9e1c"}]
    path.write_text(json.dumps({"annotations": entries}), encoding="utf-8")  # writes NaN
    with pytest.raises(TarsUserError, match="not a time") as raised:
        load_annotation_file(path)
    assert raised.value.where == f"{path} annotations[1] ('search@9e1c').time"


FILE_PROBLEMS = [
    ("missing.yaml", None, "not found", ""),
    ("changes.txt", "annotations: []\n", "unknown annotation file type", ""),
    ("empty.yaml", "# nothing yet\n", "the file is empty", ""),
    ("syntax.yaml", "annotations:\n  - time: [2026\n", "not valid YAML", ":3"),
    ("syntax.json", '{"annotations": [\n  {"time": 1,}\n]}', "not valid JSON", ":2"),
    ("list.yaml", "- time: 2026-03-05T14:29:00Z\n", "expected a mapping", ""),
    ("extra.yaml", "annotations: []\nversion: 2\n", "unknown top-level key(s) version", ""),
    ("scalar.yaml", "annotations: deploy\n", "must be a list of entries", " annotations"),
    ("twice.yaml", "annotations: []\nannotations: []\n", "given twice", ""),
    ("latin1.yaml", b"annotations:\n  - title: caf\xe9\n", "not UTF-8", ""),
]


@pytest.mark.parametrize(
    ("name", "content", "words", "suffix"), FILE_PROBLEMS, ids=[p[0] for p in FILE_PROBLEMS]
)
def test_a_bad_file_names_the_file(
    tmp_path: Path, name: str, content: str | bytes | None, words: str, suffix: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(TarsUserError) as raised:
        load_annotation_file(path)
    assert words in str(raised.value)
    assert raised.value.where == f"{path}{suffix}"
    assert raised.value.remedy


# --- the model ------------------------------------------------------------------------------


def test_an_annotation_is_utc_and_one_line() -> None:
    made = Annotation(
        ts=pd.Timestamp("2026-03-05 09:29", tz="America/New_York"),
        kind="deploy",
        title="checkout\n@4f2a\x1b[31m",
        service="checkout",
        source="file",
    )
    assert made.ts == pd.Timestamp("2026-03-05 14:29", tz="UTC")
    assert str(made.ts.tz) == "UTC"
    assert made.title == "checkout @4f2a[31m"
    assert len(clean_text("x" * 500)) == 200


@pytest.mark.parametrize(
    "fields",
    [
        {"ts": pd.Timestamp("2026-03-05 14:29")},  # naive
        {"ts": pd.NaT},
        {"kind": "deployment"},
        {"source": "jira"},
        {"title": " \n "},
        {"end": pd.Timestamp("2026-03-05 14:00", tz="UTC")},
    ],
)
def test_an_annotation_refuses_what_it_cannot_be(fields: dict) -> None:
    base = dict(
        ts=pd.Timestamp("2026-03-05 14:29", tz="UTC"),
        kind="deploy",
        title="x",
        service=None,
        source="file",
    )
    with pytest.raises(ValueError):
        Annotation(**{**base, **fields})


# --- matching -------------------------------------------------------------------------------


@pytest.mark.parametrize("minutes_before", [0.0, 0.5, 1.0, 3.0, 9.25, 14.99, 15.0])
def test_a_deploy_up_to_15_minutes_before_the_onset_is_named(minutes_before: float) -> None:
    matches = annotations_before([annotation(minutes_before)], ONSET, service="checkout")
    assert len(matches) == 1
    match = matches[0]
    assert match.minutes_before_onset == pytest.approx(minutes_before)
    assert match.relation == "before_onset"
    assert "deploy checkout@4f2a" in match.sentence


@pytest.mark.parametrize("minutes_after", [1 / 60, 0.5, 1.0, 10.0, 120.0])
def test_a_change_after_the_onset_is_not_named(minutes_after: float) -> None:
    assert annotations_before([annotation(-minutes_after)], ONSET, service="checkout") == []


def test_the_story_of_the_checkout_finding() -> None:
    changes = [
        annotation(3, "checkout@4f2a"),  # 14:29
        annotation(12, "db pool 20 -> 40", service=None, kind="config"),  # 14:20, all services
        annotation(1, "search@9e1c", service="search"),  # another service
        annotation(-8, "new-checkout-flow", kind="feature_flag"),  # 14:40, after the onset
        annotation(45, "checkout@1b7d"),  # 13:47, beyond the 30 min lookback
    ]
    matches = annotations_before(changes, ONSET, service="checkout")
    assert [m.sentence for m in matches] == [
        "began 3 min after deploy checkout@4f2a",
        "began 12 min after config change db pool 20 -> 40",
    ]
    assert [m.minutes_before_onset for m in matches] == [3.0, 12.0]
    assert matches[0].as_record()["sentence"] == "began 3 min after deploy checkout@4f2a"
    assert matches[0].as_record()["minutes_before_onset"] == 3.0
    # The search finding at the same onset names search's deploy and the shared change.
    titles = [m.annotation.title for m in annotations_before(changes, ONSET, service="search")]
    assert titles == ["search@9e1c", "db pool 20 -> 40"]


def test_several_changes_come_nearest_first() -> None:
    minutes = [14.0, 2.0, 27.5, 7.0, 0.0, 21.0]
    changes = [annotation(m, f"c{i}") for i, m in enumerate(minutes)]
    matches = annotations_before(changes, ONSET, service="checkout")
    assert [m.minutes_before_onset for m in matches] == sorted(minutes)
    assert [m.annotation.title for m in matches] == ["c4", "c1", "c3", "c0", "c5", "c2"]


def test_the_window_edges() -> None:
    second = 1 / 60
    changes = [
        annotation(30, "at the lookback"),
        annotation(30 + second, "a second too early"),
        annotation(-2, "at the grace"),
        annotation(-2 - second, "a second too late"),
    ]
    matches = annotations_before(changes, ONSET, service="checkout", grace_minutes=2)
    assert [(m.annotation.title, m.relation) for m in matches] == [
        ("at the lookback", "before_onset"),
        ("at the grace", "after_onset"),
    ]
    narrow = annotations_before(changes, ONSET, service="checkout", lookback_minutes=10)
    assert narrow == []


def test_the_onset_interval_lets_a_change_inside_it_be_named_after_the_others() -> None:
    """The onset is 14:32 but may be as late as 14:35: a deploy at 14:34 may still have
    come first. It is named, marked after_onset, and listed after those before 14:32."""
    changes = [annotation(-2, "checkout@5c3e"), annotation(20, "db pool"), annotation(-4, "late")]
    high = ONSET + pd.Timedelta(minutes=3)
    matches = annotations_before(changes, ONSET, service="checkout", onset_high=high)
    assert [(m.annotation.title, m.relation) for m in matches] == [
        ("db pool", "before_onset"),
        ("checkout@5c3e", "after_onset"),
    ]
    assert matches[1].minutes_before_onset == -2.0
    assert matches[1].sentence == (
        "began 2 min before deploy checkout@5c3e was recorded (within the onset's uncertainty)"
    )
    # An interval that ends before onset + grace changes nothing; NaT is no interval.
    early = ONSET - pd.Timedelta(minutes=5)
    for onset_high in (early, pd.NaT, None):
        kept = annotations_before(
            changes, ONSET, service="checkout", grace_minutes=2.5, onset_high=onset_high
        )
        assert [m.annotation.title for m in kept] == ["db pool", "checkout@5c3e"]


def test_an_onset_in_another_timezone_is_the_same_moment() -> None:
    local = ONSET.tz_convert("America/New_York")
    assert annotations_before([annotation(3)], local, service="checkout")[0].sentence == (
        "began 3 min after deploy checkout@4f2a"
    )


def test_no_onset_means_no_match() -> None:
    assert annotations_before([annotation(3)], None, service="checkout") == []
    assert annotations_before([annotation(3)], pd.NaT, service="checkout") == []


@pytest.mark.parametrize(
    ("setting", "value"),
    [("lookback_minutes", float("nan")), ("lookback_minutes", -1), ("grace_minutes", float("inf"))],
)
def test_a_bad_window_setting_is_a_user_error(setting: str, value: float) -> None:
    with pytest.raises(TarsUserError) as raised:
        annotations_before([annotation(3)], ONSET, service="checkout", **{setting: value})
    assert raised.value.where == setting


def test_matching_agrees_with_a_brute_force_count_in_whole_seconds() -> None:
    """Random changes at whole seconds around random onsets: the kept set and its order
    are those of integer arithmetic on seconds (no pandas, no floats)."""
    rng = random.Random(7)
    services = ["checkout", "search", None]
    epoch = dt.datetime(2026, 3, 5, tzinfo=dt.UTC)
    for _ in range(200):
        onset_s = rng.randrange(0, 86_400)
        lookback_s, grace_s = rng.choice([60, 900, 1800]), rng.choice([0, 30, 120])
        changes = []
        for index in range(12):
            offset_s = rng.randrange(-3600, 600)
            changes.append(
                Annotation(
                    ts=pd.Timestamp(epoch + dt.timedelta(seconds=onset_s + offset_s)),
                    kind="deploy",
                    title=f"c{index}",
                    service=rng.choice(services),
                    source="file",
                )
            )
        offsets = {
            a.title: int((a.ts - pd.Timestamp(epoch)).total_seconds()) - onset_s for a in changes
        }
        expected = sorted(
            (
                (offsets[a.title] > 0, abs(offsets[a.title]), a.title)
                for a in changes
                if a.service in ("checkout", None) and -lookback_s <= offsets[a.title] <= grace_s
            ),
        )
        got = annotations_before(
            changes,
            pd.Timestamp(epoch + dt.timedelta(seconds=onset_s)),
            service="checkout",
            lookback_minutes=lookback_s / 60,
            grace_minutes=grace_s / 60,
        )
        assert [m.annotation.title for m in got] == [title for *_, title in expected]


def test_sentences_read_in_minutes_and_hours() -> None:
    deploy = annotation(0)
    assert match_sentence(deploy, 0.2) == "began within a minute of deploy checkout@4f2a"
    assert match_sentence(deploy, 2.6) == "began 3 min after deploy checkout@4f2a"
    assert match_sentence(deploy, 90) == "began 1 h 30 min after deploy checkout@4f2a"
    assert match_sentence(deploy, 120) == "began 2 h after deploy checkout@4f2a"
    alert = annotation(0, "HighLatency", kind="alert")
    assert match_sentence(alert, 5) == "began 5 min after alert HighLatency"


# --- charts and merging ---------------------------------------------------------------------


def test_in_window_shows_what_begins_or_lasts_in_it() -> None:
    start, end = ONSET - pd.Timedelta(hours=1), ONSET + pd.Timedelta(hours=1)
    changes = [
        annotation(0, "inside"),
        annotation(90, "incident from before", kind="incident", end_after_minutes=45),
        annotation(90, "over before", kind="incident", end_after_minutes=20),
        annotation(-60, "at the end"),  # [start, end): the end is outside
        annotation(60, "at the start", service="search"),
    ]
    titles = [a.title for a in in_window(changes, start, end)]
    assert titles == ["incident from before", "at the start", "inside"]
    assert [a.title for a in in_window(changes, start, end, service="checkout")] == [
        "incident from before",
        "inside",
    ]


def test_merging_sources_keeps_one_of_each_change_in_time_order() -> None:
    from_file = [annotation(3), annotation(12, "db pool", service=None, kind="config")]
    from_github = [
        Annotation(
            ts=ONSET - pd.Timedelta(minutes=3),
            kind="deploy",
            title="checkout@4f2a",
            service="checkout",
            source="github",
        ),
        annotation(1, "checkout@4f2b"),
    ]
    merged = merge_annotations(from_file, from_github)
    assert [(a.title, a.source) for a in merged] == [
        ("db pool", "file"),
        ("checkout@4f2a", "file"),
        ("checkout@4f2b", "file"),
    ]
