"""NAB score of the anomaly detector on the 17 labelled AWS CloudWatch series, and its speed.

    .venv/bin/python benchmarks/nab_score.py [--data ../shared/data/nab]

Reads every realAWSCloudwatch/*.csv with the CSV mode's reader and drives the detector only
through the product's entry point, `tars_pipeline.judge.anomaly.detect_anomalies`: the CSV
mode's DEFAULT_SPAN / DEFAULT_WARMUP / DEFAULT_Z_THRESHOLD, every other setting at
`detect_anomalies`' own default, and any setting a table varies passed as a keyword
argument. So when the detector gains a keyword argument with a default, or its defaults
change, this script measures the new detector without an edit.

An event counts as a detection at its alarm row, the sample at which a live detector would
have raised it: the events' `alarm_ts` column when `detect_anomalies` reports one; else the
alarm of the same event replayed from the z-scores (`find_events`), used only where the
replay finds exactly the event `detect_anomalies` reported (same first and last sample and
point count); else the first row r from the event's start for which `detect_anomalies` on
the series up to r already reports the event (exact for a detector without look-ahead, and
slower; `--prefix-search` uses it for every event). The run says which source it used.

Scored with NAB's three profiles (tars_pipeline/judge/nab.py). Prints, from one run: the
current defaults; leave-one-file-out estimates (the threshold, then the event rules too,
chosen on 16 files by each profile's score, scored on the 17th, summed over the 17 held-out
files before normalising, as NAB sums a corpus); the z sweep at the default span with each
score's difference from the default z; the z x span sweep; and throughput.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tars_pipeline.cli.anomaly_csv import (  # noqa: E402
    DEFAULT_SPAN,
    DEFAULT_WARMUP,
    DEFAULT_Z_THRESHOLD,
    detect_csv,
    read_series,
)
from tars_pipeline.judge import anomaly  # noqa: E402
from tars_pipeline.judge.anomaly import detect_anomalies  # noqa: E402
from tars_pipeline.judge.nab import PROFILES, FileScore, normalised_score, score_file  # noqa: E402

CORPUS = "realAWSCloudwatch"
LABELS = f"combined_windows_{CORPUS}.json"
Z_SWEEP = (2.5, 2.75, 3.0, 3.25, 3.5, 3.75, 4.0)
# Leave one file out chooses among these (the sweep and a coarser tail above it).
LOO_THRESHOLDS = (*Z_SWEEP, 4.5, 5.0, 6.0, 7.0, 8.0, 10.0)
# The second leave-one-out also chooses the event rules (kept small: it runs every setting).
RULE_FAMILY: Mapping[str, Sequence[object]] = {
    "z_threshold": (3.0, 3.5, 4.0, 5.0),
    "merge_gap": (0, 24, 36, 48),
    "single_sample_z": (None, 5.0),
    "min_points": (1, 2, 3),
}
SPANS = (30, 60, 120, 288)
# What the issue asks of the detector (someone else tunes it; this script only measures).
LOO_TARGETS = {"standard": 45.0, "reward_low_FP_rate": 30.0}
SWEEP_TARGET_PROFILE = "standard"
SWEEP_TARGET_POINTS = 6.0
# Published standard-profile scores on these 17 files, each detector's threshold swept on
# the same files (NAB's per-row results rescored on this subset; the data README).
PUBLISHED = {
    "windowed Gaussian": 31.2,
    "Twitter ADVec": 38.5,
    "Etsy Skyline": 49.3,
    "relative entropy": 50.0,
    "KNN-CAD": 60.7,
    "contextOSE": 72.1,
    "Numenta HTM": 73.4,
}
# Severity does not change which events are found; any mapping will do.
SEVERITY_Z = {"medium": 4.0, "high": 6.0, "critical": 10.0}

Settings = Mapping[str, Any]
# The CSV mode's defaults; everything else is left to detect_anomalies' own defaults.
DEFAULTS: Settings = {
    "span": DEFAULT_SPAN,
    "warmup": DEFAULT_WARMUP,
    "z_threshold": DEFAULT_Z_THRESHOLD,
}


def signature_defaults() -> dict[str, Any]:
    """detect_anomalies' keyword arguments that have a default, with that default."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(detect_anomalies).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def with_(settings: Settings, **changes: Any) -> dict[str, Any]:
    """`settings` with `changes`, dropping any keyword detect_anomalies no longer takes."""
    accepted = inspect.signature(detect_anomalies).parameters
    return {k: v for k, v in {**settings, **changes}.items() if k in accepted}


def describe(settings: Settings) -> str:
    """Every setting the detector runs with: those given and its own defaults."""
    full = {**signature_defaults(), **settings}
    full.pop("severity_z", None)
    return ", ".join(f"{name} {_fmt(value)}" for name, value in full.items())


def _fmt(value: object) -> str:
    if value is None:
        return "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _key(settings: Settings) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, repr(value)) for name, value in settings.items()))


@dataclass(frozen=True)
class Series:
    name: str
    ts: pd.Series
    values: np.ndarray
    windows: list[tuple[str, str]]


def load(data: Path) -> list[Series]:
    labels = json.loads((data / LABELS).read_text(encoding="utf-8"))
    series = []
    for key, windows in sorted(labels.items()):
        frame, _ = read_series(data / key)
        series.append(
            Series(Path(key).stem, frame["ts"], frame["value"].to_numpy(), windows=windows)
        )
    return series


def _samples(corpus: Sequence[Series], names: Sequence[str] | None = None) -> pd.DataFrame:
    names = [s.name for s in corpus] if names is None else names
    return pd.concat(
        [
            pd.DataFrame({"service": name, "kpi": "value", "ts": s.ts, "value": s.values})
            for name, s in zip(names, corpus, strict=True)
        ],
        ignore_index=True,
    )


@dataclass
class AlarmSources:
    """How many events took their alarm row from each source, over the whole run."""

    counts: dict[str, int] = field(
        default_factory=lambda: {"alarm_ts": 0, "replay": 0, "prefix search": 0}
    )

    def line(self) -> str:
        total = sum(self.counts.values())
        parts = ", ".join(f"{name} {count}" for name, count in self.counts.items())
        return f"{total} events over the run; alarm row from: {parts}"


def _rows_of(ts: pd.Series, stamps: Iterable[pd.Timestamp]) -> np.ndarray:
    """Row of each timestamp in a sorted series (the first of repeated timestamps)."""
    wanted = pd.DatetimeIndex(pd.to_datetime(pd.Series(list(stamps), dtype=object), utc=True))
    return np.asarray(pd.DatetimeIndex(ts).searchsorted(wanted, side="left"), dtype="int64")


def _replay(series: Series, settings: Settings) -> anomaly.EventRows | None:
    """The events again from the z-scores, with the settings find_events understands."""
    full = {**signature_defaults(), **settings}
    try:
        if full.get("method", "ewma") == "ewma":
            z = anomaly.ewma_zscores(series.values, span=full["span"], warmup=full["warmup"]).z
        else:
            z = anomaly.robust_zscores(series.values, window=full["span"], warmup=full["warmup"]).z
        accepted = inspect.signature(anomaly.find_events).parameters
        rules = {k: v for k, v in full.items() if k in accepted and k != "series_id"}
        return anomaly.find_events(z, **rules)
    except (AttributeError, KeyError, TypeError):
        return None


def _alarm_by_prefix(
    series: Series, events: list[tuple[int, int]], settings: Settings
) -> dict[int, int]:
    """For each (first, last) event, the first row r ≥ first at which detect_anomalies on
    the series up to r reports an event starting at `first`. All events of the series are
    searched in one call per step (each prefix a series of its own)."""
    alarms: dict[int, int] = {}
    pending = list(events)
    step = 0
    while pending:
        names = [f"e{i}" for i in range(len(pending))]
        parts = [
            Series(name, series.ts.iloc[: first + step + 1], series.values[: first + step + 1], [])
            for name, (first, _) in zip(names, pending, strict=True)
        ]
        found = detect_anomalies(_samples(parts, names), severity_z=SEVERITY_Z, **settings)
        still = []
        for name, (first, last) in zip(names, pending, strict=True):
            starts = found.loc[found["service"] == name, "start"]
            if (starts == series.ts.iloc[first]).any() or first + step >= last:
                alarms[first] = first + step
            else:
                still.append((first, last))
        pending = still
        step += 1
    return alarms


class Scorer:
    """Scores detector settings on the corpus; detections are cached per setting."""

    def __init__(self, corpus: Sequence[Series], replay: bool = True):
        self.corpus = corpus
        self.replay = replay
        self.frame = _samples(corpus)
        self.sources = AlarmSources()
        self._detections: dict[tuple, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        self._scores: dict[tuple, list[FileScore]] = {}

    def detections(self, settings: Settings) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per file: a detection at each event's alarm row, and at each event's first row."""
        key = _key(settings)
        if key in self._detections:
            return self._detections[key]
        events = detect_anomalies(self.frame, severity_z=SEVERITY_Z, **settings)
        at_alarm, at_start = [], []
        for series in self.corpus:
            mine = events[events["service"] == series.name]
            first = _rows_of(series.ts, mine["start"])
            last = _rows_of(series.ts, mine["end"])
            alarm = self._alarm_rows(series, mine, first, last, settings)
            hits = np.zeros(len(series.values), dtype=bool)
            hits[alarm] = True
            starts = np.zeros(len(series.values), dtype=bool)
            starts[first] = True
            at_alarm.append(hits)
            at_start.append(starts)
        self._detections[key] = (at_alarm, at_start)
        return at_alarm, at_start

    def _alarm_rows(
        self,
        series: Series,
        events: pd.DataFrame,
        first: np.ndarray,
        last: np.ndarray,
        settings: Settings,
    ) -> np.ndarray:
        if "alarm_ts" in events.columns:
            self.sources.counts["alarm_ts"] += len(events)
            return _rows_of(series.ts, events["alarm_ts"])
        alarm = np.full(len(first), -1, dtype="int64")
        replay = _replay(series, settings) if len(first) and self.replay else None
        if replay is not None:
            same = {
                (int(f), int(la), int(p)): int(a)
                for f, la, p, a in zip(
                    replay.first, replay.last, replay.points, replay.alarm, strict=True
                )
            }
            points = events["points"].to_numpy()
            for index, event in enumerate(zip(first, last, points, strict=True)):
                alarm[index] = same.get(tuple(int(v) for v in event), -1)
        self.sources.counts["replay"] += int((alarm >= 0).sum())
        missing = np.flatnonzero(alarm < 0)
        if len(missing):
            self.sources.counts["prefix search"] += len(missing)
            found = _alarm_by_prefix(
                series, [(int(first[i]), int(last[i])) for i in missing], settings
            )
            alarm[missing] = [found[int(first[i])] for i in missing]
        return alarm

    def file_scores(self, settings: Settings, profile: str, at: str = "alarm") -> list[FileScore]:
        key = (_key(settings), profile, at)
        if key not in self._scores:
            at_alarm, at_start = self.detections(settings)
            detections = at_alarm if at == "alarm" else at_start
            self._scores[key] = [
                score_file(s.ts, hits, s.windows, profile=PROFILES[profile])
                for s, hits in zip(self.corpus, detections, strict=True)
            ]
        return self._scores[key]

    def score(self, settings: Settings, profile: str = "standard", at: str = "alarm") -> float:
        return normalised_score(self.file_scores(settings, profile, at))

    def leave_one_out(
        self, family: Sequence[Settings], profile: str
    ) -> tuple[float, list[FileScore], list[Settings]]:
        """Each file scored with the setting of `family` best (by `profile`) on the 16
        others; the 17 held-out file scores are summed, then normalised."""
        table = [self.file_scores(settings, profile) for settings in family]
        held_out, chosen = [], []
        for index in range(len(self.corpus)):
            others = [
                normalised_score(s for i, s in enumerate(scores) if i != index) for scores in table
            ]
            best = int(np.argmax(others))
            chosen.append(family[best])
            held_out.append(table[best][index])
        return normalised_score(held_out), held_out, chosen


def _counts(scores: Sequence[FileScore]) -> tuple[int, int, int]:
    windows = sum(s.windows for s in scores)
    detected = sum(s.detected_windows for s in scores)
    return detected, windows, sum(s.false_positives for s in scores)


def _target(profile: str, value: float) -> str:
    if profile not in LOO_TARGETS:
        return "-"
    met = "met" if value >= LOO_TARGETS[profile] else "NOT met"
    return f">= {LOO_TARGETS[profile]:g} ({met})"


def print_defaults(scorer: Scorer) -> None:
    print("## Current defaults, three profiles\n")
    print(f"Settings: {describe(DEFAULTS)}.\n")
    print("| profile | score | windows found | false alarms | false alarms per file |")
    print("|---|---:|---:|---:|---:|")
    for profile in PROFILES:
        scores = scorer.file_scores(DEFAULTS, profile)
        detected, windows, false_alarms = _counts(scores)
        print(
            f"| {profile} | {normalised_score(scores):5.1f} | {detected}/{windows} | "
            f"{false_alarms} | {false_alarms / len(scores):.1f} |"
        )
    at_start = scorer.score(DEFAULTS, at="start")
    print(
        f"\nA detection is one row per event, at its alarm. At each event's first sample "
        f"instead (what a reader of events.json sees), standard profile: {at_start:.1f}.\n"
    )


def _rules(settings: Settings) -> str:
    return ", ".join(f"{name} {_fmt(value)}" for name, value in settings.items() if name in RULES)


RULES = ("z_threshold", "merge_gap", "single_sample_z", "min_points")


def print_generalisation(scorer: Scorer) -> None:
    print("## Chosen on 16 files, scored on the 17th (leave one file out)\n")
    print(
        "Each profile chooses by its own score; the 17 held-out file scores are summed "
        "and normalised as one corpus.\n"
    )
    print(
        "| profile | what is chosen | in-sample best | leave-one-out | windows found "
        "| false alarms | target | choices made |"
    )
    print("|---|---|---:|---:|---:|---:|---|---|")
    z_family = [with_(DEFAULTS, z_threshold=t) for t in LOO_THRESHOLDS]
    accepted = inspect.signature(detect_anomalies).parameters
    grid = {name: values for name, values in RULE_FAMILY.items() if name in accepted}
    rule_family = [
        with_(DEFAULTS, **dict(zip(grid, combination, strict=True)))
        for combination in _product(list(grid.values()))
    ]
    rules_label = " + ".join(grid)
    for profile in PROFILES:
        for label, family in (
            ("z only", z_family),
            (f"{rules_label} ({len(rule_family)} settings)", rule_family),
        ):
            in_sample = [scorer.score(settings, profile) for settings in family]
            best = int(np.argmax(in_sample))
            held_out, scores, chosen = scorer.leave_one_out(family, profile)
            detected, windows, false_alarms = _counts(scores)
            picks = "; ".join(sorted({_rules(settings) for settings in chosen}))
            print(
                f"| {profile} | {label} | {in_sample[best]:.1f} ({_rules(family[best])}) | "
                f"{held_out:.1f} | {detected}/{windows} | {false_alarms} | "
                f"{_target(profile, held_out) if label == 'z only' else '-'} | {picks} |"
            )
    print("\nPublished on these 17 files, standard profile (threshold swept on them):")
    print(", ".join(f"{name} {score}" for name, score in PUBLISHED.items()))
    print()


def _product(axes: list[Sequence[object]]) -> list[tuple[object, ...]]:
    combinations: list[tuple[object, ...]] = [()]
    for axis in axes:
        combinations = [(*done, value) for done in combinations for value in axis]
    return combinations


def print_z_sweep(scorer: Scorer) -> None:
    default_z = DEFAULTS["z_threshold"]
    print(
        f"## z sweep at the default span ({DEFAULTS['span']}), difference from the default "
        f"z {default_z:g}\n"
    )
    header = " | ".join(f"z {t:g}" for t in Z_SWEEP)
    print(f"| profile | z {default_z:g} (default) | {header} | max abs difference | target |")
    print("|---|---:|" + "---:|" * len(Z_SWEEP) + "---:|---|")
    for profile in PROFILES:
        base = scorer.score(DEFAULTS, profile)
        scores = [scorer.score(with_(DEFAULTS, z_threshold=t), profile) for t in Z_SWEEP]
        cells = " | ".join(f"{s:.1f} ({s - base:+.1f})" for s in scores)
        worst = max(abs(s - base) for s in scores)
        target = "-"
        if profile == SWEEP_TARGET_PROFILE:
            met = "met" if worst <= SWEEP_TARGET_POINTS else "NOT met"
            target = f"<= {SWEEP_TARGET_POINTS:g} ({met})"
        print(f"| {profile} | {base:.1f} | {cells} | {worst:.1f} | {target} |")
    print()


def print_span_sweep(scorer: Scorer) -> None:
    print("## z-threshold x span (standard profile)\n")
    header = " | ".join(f"z {t:g}" for t in Z_SWEEP)
    print(f"| span | {header} |")
    print("|---:|" + "---:|" * len(Z_SWEEP))
    for span in SPANS:
        cells = " | ".join(
            f"{scorer.score(with_(DEFAULTS, span=span, z_threshold=t)):5.1f}" for t in Z_SWEEP
        )
        marker = " (default)" if span == DEFAULTS["span"] else ""
        print(f"| {span}{marker} | {cells} |")
    print()


def _best_rate(run: Callable[[], object], samples: int, repeat: int = 3) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return samples / min(timings)


def print_throughput(scorer: Scorer, data: Path) -> None:
    samples = scorer.frame
    count = len(samples)

    def detect(method: str) -> Callable[[], object]:
        return lambda: detect_anomalies(
            samples, severity_z=SEVERITY_Z, **with_(DEFAULTS, method=method)
        )

    def csv_mode() -> None:
        for s in scorer.corpus:
            detect_csv(data / CORPUS / f"{s.name}.csv")

    rates = [
        (f"detect_anomalies, ewma ({count} samples, 17 series)", _best_rate(detect("ewma"), count)),
        ("detect_anomalies, robust", _best_rate(detect("robust"), count, repeat=1)),
        ("detect_csv (read + parse + detect + document)", _best_rate(csv_mode, count, repeat=1)),
    ]
    print("## Throughput (this machine, best of 3 for ewma, else one run)\n")
    reference = rates[0][1]
    print("| what | samples/s | vs detect_anomalies (ewma) |")
    print("|---|---:|---:|")
    for label, rate in rates:
        print(f"| {label} | {rate:,.0f} | {rate / reference:.2f}x |")
    print(
        f"\nThe bundled GA week (36 series x 8 days at 60 s, ~415k samples) is "
        f"~{415_000 / reference * 1000:.0f} ms of detection at this rate.\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=REPO.parent / "shared" / "data" / "nab",
        help="folder holding realAWSCloudwatch/ and the combined windows JSON",
    )
    parser.add_argument(
        "--prefix-search",
        action="store_true",
        help="find every alarm row by re-running detect_anomalies on prefixes (no replay "
        "from the z-scores): slower, and a check of the replay",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    corpus = load(args.data)
    scorer = Scorer(corpus, replay=not args.prefix_search)
    rows = sum(len(s.values) for s in corpus)
    windows = sum(len(s.windows) for s in corpus)
    print(f"# NAB realAWSCloudwatch: {len(corpus)} files, {rows} rows, {windows} windows\n")
    print(
        "Targets (the issue's): leave-one-out standard >= 45, reward_low_FP_rate >= 30; "
        "standard score within 6 points of the default z over z in [2.5, 4].\n"
    )
    print_defaults(scorer)
    print_generalisation(scorer)
    print_z_sweep(scorer)
    print_span_sweep(scorer)
    print_throughput(scorer, args.data)
    print(f"Events: {scorer.sources.line()}.")
    print(f"(whole run: {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
