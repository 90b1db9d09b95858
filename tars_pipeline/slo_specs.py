"""SLOs from an OpenSLO (v1) or Sloth (prometheus/v1) spec file, as tars.yaml's `slos:`.

Teams that keep their SLOs as code point `slo_file:` at that file instead of repeating them
in tars.yaml. Each SLO becomes one TARS SLO on a KPI of the catalog:

- **KPI.** The label `tars_kpi` (Sloth: the SLO's `labels`; OpenSLO: the SLO's or its
  indicator's `metadata.labels`) names it; without the label, the SLO's name (OpenSLO: or
  its indicator's name) must be a catalog KPI. TARS judges the SLO on the KPI's own query,
  per service, not on the spec's PromQL: the spec says what the objective is, the catalog
  how TARS measures it.
- **Kind.** A ratio of events (Sloth `events`/`raw`; OpenSLO `Occurrences`, `ratioMetric`)
  is a `ratio` SLO. A threshold on a value (OpenSLO `Timeslices` with `op` and `value`;
  Sloth with the label `tars_objective`, e.g. "200" for p99 <= 200 ms) is a `threshold`
  SLO, good when the KPI is on the right side of it.
- **Target and period.** Sloth's `objective` is in percent; OpenSLO's `target` is a
  fraction. OpenSLO's `timeWindow` duration (e.g. 30d, 1w, 7d) is the period; Sloth takes
  its period from the command line, so it is the label `tars_period_days` here (default 30).
- **Services.** A TARS SLO applies to every service. Specs of several services that
  define the same SLO with the same objective are one TARS SLO; different objectives for
  the same SLO name are refused (name them apart).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tars_pipeline.errors import TarsUserError

DEFAULT_PERIOD_DAYS = 30
KPI_LABEL = "tars_kpi"
OBJECTIVE_LABEL = "tars_objective"
PERIOD_LABEL = "tars_period_days"
_DURATION = re.compile(r"^(\d+)([dwhm])$")
_THRESHOLD_OPS = {"lte", "lt", "gte", "gt"}


class _SpecError(ValueError):
    """A problem with one SLO of the file; `where` names it inside the file."""

    def __init__(self, where: str, message: str):
        super().__init__(message)
        self.where = where


def read_slo_file(path: Path, kpi_directions: Mapping[str, str]) -> list[dict[str, Any]]:
    """The SLOs of an OpenSLO or Sloth file as tars.yaml `slos:` entries; `kpi_directions`
    is the catalog (KPI name → direction)."""
    where = str(path)
    if not path.is_file():
        raise TarsUserError(
            "SLO spec file not found",
            where=f"slo_file ({where})",
            remedy="point slo_file at an OpenSLO (apiVersion: openslo/v1) or Sloth "
            "(version: prometheus/v1) file, relative to tars.yaml",
        )
    try:
        documents = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    except (yaml.YAMLError, ValueError) as error:
        raise TarsUserError(f"not valid YAML: {error}", where=where) from None
    try:
        slos = _convert(documents, dict(kpi_directions))
    except _SpecError as error:
        raise TarsUserError(
            str(error),
            where=f"{where}: {error.where}",
            remedy="see docs/configuration.md#slo_file for how spec fields map to TARS SLOs",
        ) from None
    if not slos:
        raise TarsUserError(
            "no SLO in the file",
            where=where,
            remedy="an OpenSLO file needs 'kind: SLO' documents, a Sloth file 'slos:'",
        )
    return slos


def _convert(documents: list[Any], known: dict[str, str]) -> list[dict[str, Any]]:
    if not all(isinstance(doc, Mapping) for doc in documents):
        raise _SpecError("document", "every YAML document must be a mapping")
    sloth = [doc for doc in documents if str(doc.get("version", "")).startswith("prometheus/")]
    openslo = [doc for doc in documents if str(doc.get("apiVersion", "")).startswith("openslo/")]
    if sloth and openslo:
        raise _SpecError("documents", "mixes Sloth and OpenSLO documents; use one format")
    if sloth:
        found = [slo for doc in sloth for slo in _from_sloth(doc, known)]
    elif openslo:
        found = _from_openslo(openslo, known)
    else:
        raise _SpecError(
            "document",
            "neither OpenSLO (apiVersion: openslo/v1) nor Sloth (version: prometheus/v1)",
        )
    return _merge(found)


def _merge(found: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One TARS SLO per name: the same SLO of several services once, differing ones refused."""
    by_name: dict[str, dict[str, Any]] = {}
    for where, slo in found:
        seen = by_name.get(slo["name"])
        if seen is None:
            by_name[slo["name"]] = slo
        elif seen != slo:
            raise _SpecError(
                where,
                f"SLO {slo['name']!r} is defined twice with different settings ({seen} and "
                f"{slo}); TARS applies one SLO to every service: give them different names",
            )
    return list(by_name.values())


def _kpi_of(
    names: list[str | None], labels: Mapping[str, Any], known: Mapping[str, str], where: str
) -> str:
    label = labels.get(KPI_LABEL)
    if label is not None:
        if str(label) not in known:
            raise _SpecError(where, f"{KPI_LABEL}: {label!r} is not a KPI of the catalog")
        return str(label)
    for name in names:
        if name in known:
            return name
    shown = ", ".join(repr(n) for n in names if n)
    raise _SpecError(
        where,
        f"which KPI does this SLO judge? Neither {shown} is a KPI of the catalog "
        f"({', '.join(sorted(known))}); add the label {KPI_LABEL}: <kpi>",
    )


def _number(value: Any, where: str, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _SpecError(where, f"{what} must be a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise _SpecError(where, f"{what} must be finite, got {value!r}")
    return number


def _labels(value: Any) -> dict[str, Any]:
    """Labels as a mapping: OpenSLO also allows a list of values per label."""
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out[str(key)] = item[0] if isinstance(item, list) and len(item) == 1 else item
    return out


# --- Sloth --------------------------------------------------------------------------------


def _from_sloth(
    doc: Mapping[str, Any], known: Mapping[str, str]
) -> list[tuple[str, dict[str, Any]]]:
    service = doc.get("service", "?")
    entries = doc.get("slos")
    if not isinstance(entries, list):
        raise _SpecError(f"service {service}", "'slos' must be a list")
    found = []
    for index, entry in enumerate(entries):
        where = f"service {service}, slos[{index}]"
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise _SpecError(where, "each SLO needs a name")
        labels = _labels(entry.get("labels"))
        name = str(labels.get("slo") or entry["name"])
        kpi = _kpi_of([name, str(entry["name"])], labels, known, where)
        target = _number(entry.get("objective"), where, "objective")
        period = int(_number(labels.get(PERIOD_LABEL, DEFAULT_PERIOD_DAYS), where, PERIOD_LABEL))
        slo: dict[str, Any] = {"name": name, "kpi": kpi, "target_pct": target}
        if OBJECTIVE_LABEL in labels:
            slo["sli"] = "threshold"
            slo["objective"] = _number(labels[OBJECTIVE_LABEL], where, OBJECTIVE_LABEL)
        else:
            slo["sli"] = "ratio"
        slo["period_days"] = period
        found.append((where, slo))
    return found


# --- OpenSLO ------------------------------------------------------------------------------


def _from_openslo(
    docs: list[Mapping[str, Any]], known: Mapping[str, str]
) -> list[tuple[str, dict[str, Any]]]:
    indicators = {
        str(doc.get("metadata", {}).get("name")): doc for doc in docs if doc.get("kind") == "SLI"
    }
    found = []
    for doc in docs:
        if doc.get("kind") != "SLO":
            continue
        metadata = doc.get("metadata") or {}
        name = str(metadata.get("name", "?"))
        where = f"SLO {name}"
        spec = doc.get("spec") or {}
        indicator = spec.get("indicator")
        if indicator is None and spec.get("indicatorRef") is not None:
            indicator = indicators.get(str(spec["indicatorRef"]))
            if indicator is None:
                raise _SpecError(where, f"indicatorRef {spec['indicatorRef']!r}: no such SLI")
        indicator = indicator or {}
        indicator_meta = indicator.get("metadata") or {}
        labels = {**_labels(indicator_meta.get("labels")), **_labels(metadata.get("labels"))}
        kpi = _kpi_of([name, indicator_meta.get("name")], labels, known, where)
        objectives = spec.get("objectives") or []
        if len(objectives) != 1 or not isinstance(objectives[0], Mapping):
            raise _SpecError(where, "exactly one entry in 'objectives' is supported")
        objective = objectives[0]
        target = 100.0 * _number(objective.get("target"), where, "objectives[0].target")
        method = spec.get("budgetingMethod", "Occurrences")
        slo: dict[str, Any] = {"name": name, "kpi": kpi, "target_pct": round(target, 10)}
        if method == "Timeslices" or "op" in objective:
            op = objective.get("op")
            if op not in _THRESHOLD_OPS:
                raise _SpecError(
                    where, f"objectives[0].op: expected lte, lt, gte or gt, got {op!r}"
                )
            wanted = "lower_is_better" if op in ("lte", "lt") else "higher_is_better"
            if known[kpi] != wanted:
                raise _SpecError(
                    where,
                    f"objectives[0].op {op} asks the KPI to stay "
                    f"{'below' if op.startswith('l') else 'above'} the value, but {kpi} is "
                    f"{known[kpi]}",
                )
            slo["sli"] = "threshold"
            slo["objective"] = _number(objective.get("value"), where, "objectives[0].value")
        elif method == "Occurrences":
            slo["sli"] = "ratio"
        else:
            raise _SpecError(where, f"budgetingMethod {method!r} is not supported")
        slo["period_days"] = _period_days(spec.get("timeWindow"), where)
        found.append((where, slo))
    return found


def _period_days(windows: Any, where: str) -> int:
    if not windows:
        return DEFAULT_PERIOD_DAYS
    if not isinstance(windows, list) or not isinstance(windows[0], Mapping):
        raise _SpecError(where, "timeWindow must be a list of {duration: ...}")
    duration = str(windows[0].get("duration", ""))
    match = _DURATION.match(duration)
    if not match:
        raise _SpecError(where, f"timeWindow duration {duration!r}: expected e.g. 30d, 4w")
    count, unit = int(match.group(1)), match.group(2)
    hours = {"d": 24, "w": 168, "h": 1, "m": 1 / 60}[unit] * count
    if hours % 24:
        raise _SpecError(where, f"timeWindow duration {duration!r} is not whole days")
    return int(hours // 24)
