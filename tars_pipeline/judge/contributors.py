"""Top contributors: which label values (uri, status, instance, ...) a KPI's change is in.

Adtributor's drill-down (Bhagwan et al., "Adtributor: Revenue Debugging in Advertising
Systems", NSDI 2014), over a KPI broken down by one label at a time. Every KPI is read as
additive measures per label value j (an *element*) of a label (a *dimension*):

    ratio:     KPI = scale · Σ_j num_j / Σ_j den_j     error rate, mean latency, memory, CPU
    additive:  KPI = scale · Σ_j num_j                 throughput, cost

with each measure averaged over the baseline window (F, "forecast") and the degraded window
(A, "actual"). Two numbers per element (docs/methods/contributors.md has them worked out):

- **Explanatory power** EP_j: the share of the KPI's change that element j's change explains.
  Additive: (A_j − F_j) / (A − F). Ratio: Adtributor's finite-difference partial
  derivative, the KPI's change when element j alone moves from F to A,

      e_j = scale · (ΔN_j · F_den − ΔD_j · F_num) / (F_den · (F_den + ΔD_j))

  normalised so that a dimension's EPs add up to 1.
- **Surprise** S_j: element j's term of the Jensen-Shannon divergence (bits, so a
  dimension's total is in [0, 1]) between the baseline and the observed distribution.
  Additive: of the measure's shares (Adtributor). Ratio: Adtributor adds the numerator's
  and the denominator's surprise, taking them as independent; for request KPIs they are
  not (errors follow requests), and a traffic shift between values with equal rates then
  reads as twice surprising while the KPI has not moved. Here the ratio's change is split
  into a rate effect and a mix effect (Kitagawa's decomposition, below), and each effect
  counts its own divergence in proportion to the part of the change it explains:

      rate: observed numerator shares vs those the baseline rates predict on the observed
            denominators (p_j ∝ F_num_j / F_den_j · A_den_j): 0 when only traffic moved
      mix:  denominator shares, baseline vs observed
      ΔR = Σ_j w̄_j Δr_j  (rate effect)  +  Σ_j r̄_j Δw_j  (mix effect),
      w_j = den_j / Σ den, r_j = num_j / den_j, w̄ and r̄ the means of the two windows

The explanatory power is computed after scaling the baseline to the observed denominator's
total: the ratio is unchanged, and a window with 20 % less traffic everywhere is no
element's change (Adtributor's raw form credits every large element with one).

Elements are ranked by EP; a dimension's *top set* is its first elements, each explaining
≥ 10 % (T_EEP), up to `top_n`, until they explain ≥ 67 % (T_EP). Dimensions are ranked:
those whose top set reaches 67 % first, a *filter label* (status for an error rate: every
value's rate is 0 or 100 %, so it says which kind of error, not where) after the other
labels, then by surprise. The leading dimension's top set is the headline; another
dimension's leading element joins a single-element headline when both explain more than
half the change each, so the two must overlap ("uri=/api/v1/payments/{id}, status=503").

Pure: numpy and pandas only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.explain import title_in_sentence
from tars_pipeline.judge.formatting import finite_or_none, format_number, format_with_unit

BREAKDOWN_COLUMNS: tuple[str, ...] = (
    "dimension",
    "element",
    "baseline_num",
    "baseline_den",
    "observed_num",
    "observed_den",
)
"""One row per (dimension, element): the additive measures, averaged over each window."""
SLICE_KPI_COLUMNS: tuple[str, ...] = ("baseline_kpi", "observed_kpi")
"""Optional: the slice's own KPI where it is not scale · num / den (a percentile's own
quantile by label); NaN where it was not fetched."""
MEASURE_COLUMNS: tuple[str, ...] = BREAKDOWN_COLUMNS[2:]

EXPLAINS_SHARE = 0.67
"""Adtributor's T_EP: a dimension explains the change when its top elements hold 67 % of it."""
ELEMENT_MIN_SHARE = 0.10
"""Adtributor's T_EEP: an element joins the top only if it explains at least 10 %."""
COINCIDE_SHARE = 0.5
"""Two dimensions' leading elements each above half of the change overlap in at least
EP₁ + EP₂ − 1 of it (when the elements move one way): the headline names both."""
MAX_ELEMENTS = 50
"""Elements kept per dimension by `cap_elements`; the rest are summed into OTHER."""
OTHER = "(other)"
NO_VALUE = "(no value)"
"""The element of series that do not carry the label (PromQL's `sum by` gives them "")."""
SURPRISE_FLOOR = 1e-4
"""Bits. A dimension whose distribution moved less (about one percentage point of share
between two even halves) changed in proportion everywhere: its top set explains nothing."""
CHANGE_TOLERANCE = 1e-12
"""A relative change of the KPI below this is no change: nothing to attribute."""


def empty_breakdown() -> pd.DataFrame:
    """A breakdown with no rows, with its columns and dtypes."""
    return pd.DataFrame(
        {
            "dimension": pd.Series(dtype=object),
            "element": pd.Series(dtype=object),
            **{column: pd.Series(dtype="float64") for column in MEASURE_COLUMNS},
        }
    )


# --- the results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Contributor:
    """One label value and its part in the KPI's change.

    `baseline` / `observed` are the slice's own value of the decomposed measure (scale ·
    num / den, or scale · num for an additive KPI; None where its denominator is 0);
    `baseline_kpi` / `observed_kpi` the slice's own KPI where that differs (a percentile).
    `share_pct` is the explanatory power × 100, signed: negative for an element that moved
    against the change. Shares are of the numerator (`*_share_pct`) and, for a ratio, of
    the denominator (`*_weight_pct`: the element's weight, e.g. its share of requests).
    """

    dimension: str
    element: str
    baseline: float | None
    observed: float | None
    share_pct: float
    surprise: float
    baseline_share_pct: float
    observed_share_pct: float
    baseline_weight_pct: float | None = None
    observed_weight_pct: float | None = None
    baseline_kpi: float | None = None
    observed_kpi: float | None = None

    @property
    def label(self) -> str:
        """`uri=/api/v1/payments/{id}`."""
        return f"{self.dimension}={self.element}"

    def as_record(self) -> dict:
        """dimension, element, baseline, observed, baseline_kpi, observed_kpi, share_pct,
        surprise, baseline_share_pct, observed_share_pct, baseline_weight_pct,
        observed_weight_pct (numbers finite or null)."""
        return {
            "dimension": self.dimension,
            "element": self.element,
            "baseline": finite_or_none(self.baseline),
            "observed": finite_or_none(self.observed),
            "baseline_kpi": finite_or_none(self.baseline_kpi),
            "observed_kpi": finite_or_none(self.observed_kpi),
            "share_pct": finite_or_none(self.share_pct),
            "surprise": finite_or_none(self.surprise),
            "baseline_share_pct": finite_or_none(self.baseline_share_pct),
            "observed_share_pct": finite_or_none(self.observed_share_pct),
            "baseline_weight_pct": finite_or_none(self.baseline_weight_pct),
            "observed_weight_pct": finite_or_none(self.observed_weight_pct),
        }


@dataclass(frozen=True)
class DimensionContributors:
    """One label's elements, ranked by explanatory power, and how surprising its change is.

    `top_count` elements from the start of `elements` are its top set (each ≥ 10 % of the
    change, at most `top_n`); `explains` says whether they hold ≥ 67 % of it and the
    dimension's `surprise`, its Jensen-Shannon divergence (bits, the sum of its elements'
    terms), reaches SURPRISE_FLOOR: a label whose values all moved in proportion explains
    nothing, however few of them there are.
    `mix_effect_pct` (ratio KPIs) is the part of the change that the denominator's mix
    explains: ~0 when rates changed, ~100 when only traffic moved between values.
    `filter_label`: every value's rate is 0 or 100 % (status for an error rate), so the
    label tells which kind of event rather than where; it never leads another label.
    """

    dimension: str
    baseline: float
    observed: float
    surprise: float
    elements: tuple[Contributor, ...]
    top_count: int
    explains: bool
    mix_effect_pct: float | None = None
    filter_label: bool = False
    localisation: float = 0.0

    @property
    def top(self) -> tuple[Contributor, ...]:
        return self.elements[: self.top_count]

    @property
    def explained_pct(self) -> float:
        """The share of the change its top set explains, in %."""
        return float(sum(element.share_pct for element in self.top))

    def as_record(self, limit: int) -> dict:
        """dimension, surprise, explains, filter_label, explained_pct, top_count,
        mix_effect_pct, element_count and the first `limit` (at least the top) elements."""
        shown = self.elements[: max(limit, self.top_count)]
        return {
            "dimension": self.dimension,
            "surprise": finite_or_none(self.surprise),
            "explains": self.explains,
            "filter_label": self.filter_label,
            "explained_pct": finite_or_none(self.explained_pct),
            "top_count": self.top_count,
            "mix_effect_pct": finite_or_none(self.mix_effect_pct),
            "localisation": finite_or_none(self.localisation),
            "element_count": len(self.elements),
            "elements": [element.as_record() for element in shown],
        }


@dataclass(frozen=True)
class Contributors:
    """A KPI's change attributed to label values.

    `dimensions` are ranked (the first leads); `top` are the headline contributors: the
    leading dimension's top set, and another dimension's leading element that coincides
    with it; empty when no dimension explains the change (it is spread out: `leader` is
    then the best single answer). `measure` names the decomposed measure when it is not
    the KPI itself ("mean latency" for a percentile KPI).
    """

    baseline: float
    observed: float
    ratio: bool
    dimensions: tuple[DimensionContributors, ...]
    top: tuple[Contributor, ...]
    top_n: int = 3
    measure: str | None = None

    @property
    def change(self) -> float:
        return self.observed - self.baseline

    @property
    def direction(self) -> Literal["increase", "decrease"]:
        return "increase" if self.change > 0 else "decrease"

    @property
    def leader(self) -> Contributor:
        """The leading dimension's first element: the best single answer, spread or not."""
        return self.dimensions[0].elements[0]

    def headline(self, kpi_title: str, unit: str) -> str:
        """One sentence: '82 % of the error rate increase is uri=/api/v1/payments/{id}
        (0.1 → 4.2 %), status=503.' Label values are quoted as they are: a renderer
        escapes them."""
        change = f"{title_in_sentence(kpi_title)} {self.direction}"
        if not self.top:
            return (
                f"No label value stands out in the {change}: the largest share, "
                f"{share_text(self.leader.share_pct)} %, is {self.leader.label}."
            )
        lead_dimension = self.top[0].dimension
        lead = [item for item in self.top if item.dimension == lead_dimension]
        also = [item for item in self.top if item.dimension != lead_dimension]
        share = sum(item.share_pct for item in lead)
        parts = [f"{item.label} ({self._values(item, unit)})" for item in lead]
        named = " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)
        extra = "".join(f", {item.label}" for item in also)
        return f"{share_text(share)} % of the {change} is {named}{extra}."

    def _values(self, item: Contributor, unit: str) -> str:
        if self.measure is None:
            before, after, prefix = item.baseline, item.observed, ""
        elif item.baseline_kpi is not None or item.observed_kpi is not None:
            before, after, prefix = item.baseline_kpi, item.observed_kpi, ""
        else:
            before, after, prefix = item.baseline, item.observed, f"{self.measure} "
        return f"{prefix}{format_number(before)} → {format_with_unit(after, unit)}"

    def as_record(self) -> dict:
        """baseline, observed, change, direction, ratio, measure, top (contributor
        records), dimensions (ranked, each with its first `top_n` elements)."""
        return {
            "baseline": finite_or_none(self.baseline),
            "observed": finite_or_none(self.observed),
            "change": finite_or_none(self.change),
            "direction": self.direction,
            "ratio": self.ratio,
            "measure": self.measure,
            "top": [item.as_record() for item in self.top],
            "dimensions": [dimension.as_record(self.top_n) for dimension in self.dimensions],
        }


def share_text(share_pct: float) -> str:
    """A share of the change for a sentence: whole percent from 10 % (82, 100: a share is
    an estimate), one decimal below (5.2)."""
    return f"{share_pct:.0f}" if abs(share_pct) >= 9.95 else f"{share_pct:.1f}"


# --- the ranking ------------------------------------------------------------------------------


def rank_contributors(
    breakdown: pd.DataFrame,
    *,
    scale: float = 1.0,
    ratio: bool,
    complement: bool = False,
    top_n: int = 3,
    measure: str | None = None,
    explains_share: float = EXPLAINS_SHARE,
    element_min_share: float = ELEMENT_MIN_SHARE,
) -> Contributors | None:
    """The KPI's change, baseline window → observed window, attributed to label values.

    `breakdown` has BREAKDOWN_COLUMNS (and optionally SLICE_KPI_COLUMNS): one row per
    (dimension, element). NaN in a measure means the element had no samples there (0);
    ±Inf or a negative measure is refused (TarsUserError). `ratio=False` ignores the
    denominators. `complement=True` reads a ratio as KPI = scale · (1 − Σ num / Σ den):
    availability from errors / requests, so the surprise is measured on the errors, where
    the change is, not on the good requests, whose shares barely move; the explanatory
    power is the same either way. `measure` names the decomposed measure when it is not
    the KPI (a percentile KPI attributed through its mean latency).

    None when there is nothing to attribute: no rows, or no dimension with two values or
    more where the KPI is defined on both windows and changed.
    """
    if not math.isfinite(scale) or scale == 0:
        raise TarsUserError(
            f"breakdown scale must be a finite non-zero number, got {scale!r}",
            where="kpis[].breakdown.scale",
        )
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    frame = _validated(breakdown, ratio=ratio)
    ranked: list[DimensionContributors] = []
    for dimension, rows in frame.groupby("dimension", sort=False):
        result = _rank_dimension(
            str(dimension),
            rows,
            scale=scale,
            ratio=ratio,
            complement=complement,
            top_n=top_n,
            explains_share=explains_share,
            element_min_share=element_min_share,
        )
        if result is not None:
            ranked.append(result)
    if not ranked:
        return None
    ranked.sort(key=_dimension_rank)
    lead = ranked[0]
    return Contributors(
        baseline=lead.baseline,
        observed=lead.observed,
        ratio=ratio,
        dimensions=tuple(ranked),
        top=_headline_contributors(ranked, top_n),
        top_n=top_n,
        measure=measure,
    )


def _dimension_rank(dimension: DimensionContributors) -> tuple:
    """Dimensions whose top elements explain the change first, filter labels after the
    others; then by surprise (Adtributor); then fewer top elements, a larger first share."""
    first = dimension.elements[0].share_pct if dimension.elements else 0.0
    return (
        not dimension.explains,
        dimension.filter_label,
        -max(dimension.surprise, dimension.localisation),
        dimension.top_count,
        -first,
    )


def _headline_contributors(
    ranked: list[DimensionContributors], top_n: int
) -> tuple[Contributor, ...]:
    lead = ranked[0]
    if not lead.explains or (lead.filter_label and _mix_unmoved(lead)):
        # A filter label (status for an error rate) whose mix did not move (every error was
        # a 500 and still is) says which requests failed, not where: nothing localises the
        # change. A code that surged (503s from a shared dependency) is the explanation.
        return ()
    top = list(lead.top)
    if len(top) == 1 and top[0].share_pct >= COINCIDE_SHARE * 100:
        for other in ranked[1:]:
            if len(top) >= top_n:
                break
            if other.explains and other.elements[0].share_pct >= COINCIDE_SHARE * 100:
                top.append(other.elements[0])
    return tuple(top)


def _mix_unmoved(dimension: DimensionContributors) -> bool:
    """No value's share of the numerator moved by a point (the errors were 500s and are)."""
    return all(
        abs(element.observed_share_pct - element.baseline_share_pct) < 1.0
        for element in dimension.elements
    )


def _validated(breakdown: pd.DataFrame, *, ratio: bool) -> pd.DataFrame:
    """The breakdown with float measures (NaN → 0), or a TarsUserError naming the fault."""
    missing = [column for column in BREAKDOWN_COLUMNS if column not in breakdown.columns]
    if missing:
        raise TarsUserError(
            f"the breakdown has no column(s) {missing} (it has {sorted(breakdown.columns)})",
            where="breakdown",
            remedy=f"give one row per (dimension, element) with {', '.join(BREAKDOWN_COLUMNS)}",
        )
    used = MEASURE_COLUMNS if ratio else ("baseline_num", "observed_num")
    frame = breakdown.reset_index(drop=True)
    measures = {}
    for column in MEASURE_COLUMNS:
        try:
            values = pd.to_numeric(frame[column], errors="raise").to_numpy(dtype="float64")
        except (TypeError, ValueError):
            raise TarsUserError(
                f"breakdown column {column} is not numeric", where=f"breakdown.{column}"
            ) from None
        if column in used:
            infinite = np.isinf(values)
            negative = values < 0
            for mask, what in ((infinite, "an infinite"), (negative, "a negative")):
                if mask.any():
                    row = frame.loc[int(np.flatnonzero(mask)[0])]
                    raise TarsUserError(
                        f"{what} {column} ({values[mask][0]!r}) for "
                        f"{row['dimension']}={row['element']}",
                        where=f"breakdown.{column}",
                        remedy="the measures are rates, counts or sizes: non-negative and "
                        "finite; check the breakdown query or file",
                    )
        measures[column] = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    result = pd.DataFrame(
        {
            "dimension": frame["dimension"].astype(str),
            "element": frame["element"].astype(str),
            **measures,
        }
    )
    for column in SLICE_KPI_COLUMNS:
        if column in frame.columns:
            kpi_values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
            result[column] = np.where(np.isfinite(kpi_values), kpi_values, np.nan)
    doubled = result.duplicated(["dimension", "element"])
    if doubled.any():
        row = result[doubled].iloc[0]
        raise TarsUserError(
            f"{int(doubled.sum())} duplicate row(s) in the breakdown, the first "
            f"{row['dimension']}={row['element']}",
            where="breakdown",
            remedy="one row per (dimension, element): sum the series of one label value",
        )
    return result


def _rank_dimension(
    dimension: str,
    rows: pd.DataFrame,
    *,
    scale: float,
    ratio: bool,
    complement: bool,
    top_n: int,
    explains_share: float,
    element_min_share: float,
) -> DimensionContributors | None:
    if len(rows) < 2:
        return None  # one value (a label every series carries alike) localises nothing
    base_num = rows["baseline_num"].to_numpy()
    obs_num = rows["observed_num"].to_numpy()
    if ratio:
        base_den = rows["baseline_den"].to_numpy()
        obs_den = rows["observed_den"].to_numpy()
        measures = _ratio_measures(base_num, base_den, obs_num, obs_den, scale, complement)
    else:
        measures = _additive_measures(base_num, obs_num, scale)
    if measures is None:
        return None
    order = np.argsort(-measures.explanatory_power, kind="stable")
    slice_kpis = {
        column: rows[column].to_numpy() if column in rows.columns else None
        for column in SLICE_KPI_COLUMNS
    }
    elements = tuple(
        _contributor(dimension, str(rows["element"].iloc[i]), i, measures, slice_kpis)
        for i in order
    )
    top_count, cumulative = 0, 0.0
    for share in measures.explanatory_power[order][:top_n]:
        if share < element_min_share or cumulative >= explains_share:
            break
        top_count += 1
        cumulative += float(share)
    surprise = float(measures.surprise.sum())
    localisation = _localisation(measures)
    return DimensionContributors(
        dimension=dimension,
        baseline=measures.baseline,
        observed=measures.observed,
        surprise=surprise,
        elements=elements,
        top_count=top_count,
        explains=cumulative >= explains_share and max(surprise, localisation) >= SURPRISE_FLOOR,
        mix_effect_pct=measures.mix_effect_pct,
        filter_label=ratio and _is_filter_label(rows),
        localisation=localisation,
    )


def _localisation(measures: _Measures) -> float:
    """How far a ratio KPI's change is concentrated away from where the traffic is: the
    Jensen-Shannon divergence (bits) of the elements' explanatory power (its positive part,
    normalised) from their share of the denominator. 0 for an additive KPI.

    Surprise compares the numerator's shares before and after; when one value already
    carried every error and carries every error still, those shares do not move, yet the
    change sits on a value holding a third of the requests: that is the localisation."""
    weights = measures.observed_weights
    if weights is None:
        return 0.0
    power = np.clip(np.asarray(measures.explanatory_power, dtype="float64"), 0.0, None)
    total, weight_total = float(power.sum()), float(np.sum(weights))
    if total <= 0 or weight_total <= 0:
        return 0.0
    return float(js_terms(power / total, np.asarray(weights, "float64") / weight_total).sum())


def _is_filter_label(rows: pd.DataFrame) -> bool:
    """Every value's rate is 0 or 1 on both windows (num is 0 or all of den): the KPI's
    numerator is a filter on this label (status for an error rate), so the label says
    which kind of event, not where."""
    for num, den in (("baseline_num", "baseline_den"), ("observed_num", "observed_den")):
        n, d = rows[num].to_numpy(), rows[den].to_numpy()
        tolerance = 1e-9 * np.maximum(np.abs(d), 1e-300)
        if not ((np.abs(n) <= tolerance) | (np.abs(n - d) <= tolerance) | (d == 0)).all():
            return False
    return True


def _contributor(
    dimension: str,
    element: str,
    i: int,
    measures: _Measures,
    slice_kpis: Mapping[str, np.ndarray | None],
) -> Contributor:
    def pct(values: np.ndarray | None) -> float | None:
        return None if values is None else float(values[i] * 100.0)

    def kpi(column: str) -> float | None:
        values = slice_kpis[column]
        return None if values is None else finite_or_none(values[i])

    return Contributor(
        dimension=dimension,
        element=element,
        baseline=finite_or_none(measures.baseline_values[i]),
        observed=finite_or_none(measures.observed_values[i]),
        share_pct=float(measures.explanatory_power[i] * 100.0),
        surprise=float(measures.surprise[i]),
        baseline_share_pct=float(measures.baseline_shares[i] * 100.0),
        observed_share_pct=float(measures.observed_shares[i] * 100.0),
        baseline_weight_pct=pct(measures.baseline_weights),
        observed_weight_pct=pct(measures.observed_weights),
        baseline_kpi=kpi("baseline_kpi"),
        observed_kpi=kpi("observed_kpi"),
    )


@dataclass(frozen=True)
class _Measures:
    """One dimension's per-element figures, in input order."""

    baseline: float
    observed: float
    explanatory_power: np.ndarray
    surprise: np.ndarray
    baseline_values: np.ndarray
    observed_values: np.ndarray
    baseline_shares: np.ndarray
    observed_shares: np.ndarray
    baseline_weights: np.ndarray | None = None
    observed_weights: np.ndarray | None = None
    mix_effect_pct: float | None = None


def _no_change(baseline: float, observed: float) -> bool:
    return abs(observed - baseline) <= CHANGE_TOLERANCE * max(abs(baseline), abs(observed))


def _additive_measures(base: np.ndarray, obs: np.ndarray, scale: float) -> _Measures | None:
    """EP_j = (A_j − F_j) / (A − F); S_j = JS term of the shares F_j / F and A_j / A."""
    base_total, obs_total = float(base.sum()), float(obs.sum())
    baseline, observed = scale * base_total, scale * obs_total
    if _no_change(baseline, observed):
        return None
    base_shares = _shares(base)
    obs_shares = _shares(obs)
    surprise = (
        js_terms(base_shares, obs_shares)
        if base_total > 0 and obs_total > 0
        else np.zeros(len(base))
    )
    return _Measures(
        baseline=baseline,
        observed=observed,
        explanatory_power=(obs - base) / (obs_total - base_total),
        surprise=surprise,
        baseline_values=scale * base,
        observed_values=scale * obs,
        baseline_shares=base_shares,
        observed_shares=obs_shares,
    )


def _ratio_measures(
    base_num: np.ndarray,
    base_den: np.ndarray,
    obs_num: np.ndarray,
    obs_den: np.ndarray,
    scale: float,
    complement: bool = False,
) -> _Measures | None:
    """Adtributor's finite-difference EP; surprise split into rate and mix (module doc)."""
    f_num, f_den = float(base_num.sum()), float(base_den.sum())
    a_num, a_den = float(obs_num.sum()), float(obs_den.sum())
    if f_den <= 0 or a_den <= 0:
        return None  # the KPI is undefined on a window: nothing to compare
    baseline, observed = scale * f_num / f_den, scale * a_num / a_den
    if _no_change(baseline, observed):
        return None
    change = observed - baseline

    # The KPI when element j alone moves from its baseline to its observed measures, with
    # the baseline first scaled to the observed denominator's total: the ratio is the same,
    # and a window with 20 % less traffic everywhere is no element's change.
    growth = a_den / f_den
    g_num, g_den = f_num * growth, a_den
    d_num, d_den = obs_num - base_num * growth, obs_den - base_den * growth
    counterfactual_den = g_den + d_den
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(
            counterfactual_den > 0,
            scale * (d_num * g_den - d_den * g_num) / (g_den * counterfactual_den),
            0.0,
        )
    total = float(raw.sum())
    norm = total if total != 0 and math.copysign(1, total) == math.copysign(1, change) else change
    explanatory_power = raw / norm

    base_rate = _rates(base_num, base_den, fallback=f_num / f_den)
    obs_rate = _rates(obs_num, obs_den, fallback=a_num / a_den)
    # Kitagawa: each element's rate on the side where it has no denominator is taken from
    # the other side, so a value that appears or disappears is all mix.
    base_rate_k = np.where(base_den > 0, base_rate, obs_rate)
    obs_rate_k = np.where(obs_den > 0, obs_rate, base_rate)
    base_weights, obs_weights = base_den / f_den, obs_den / a_den
    rate_effect = float(((base_weights + obs_weights) / 2 * (obs_rate_k - base_rate_k)).sum())
    mix_effect = float(((base_rate_k + obs_rate_k) / 2 * (obs_weights - base_weights)).sum())
    effects = abs(rate_effect) + abs(mix_effect)
    rate_part = abs(rate_effect) / effects if effects > 0 else 1.0

    expected_num = base_rate * obs_den  # what the baseline rates predict on observed traffic
    expected = _shares(expected_num) if expected_num.sum() > 0 else obs_weights
    rate_surprise = js_terms(expected, _shares(obs_num)) if a_num > 0 else np.zeros(len(obs_num))
    mix_surprise = js_terms(base_weights, obs_weights)
    with np.errstate(divide="ignore", invalid="ignore"):
        baseline_values = np.where(base_den > 0, scale * base_num / base_den, np.nan)
        observed_values = np.where(obs_den > 0, scale * obs_num / obs_den, np.nan)
    if complement:  # scale · (1 − r): the same changes, mirrored; EP's sign cancels out
        baseline, observed = scale - baseline, scale - observed
        baseline_values, observed_values = scale - baseline_values, scale - observed_values
    return _Measures(
        baseline=baseline,
        observed=observed,
        explanatory_power=explanatory_power,
        surprise=rate_part * rate_surprise + (1 - rate_part) * mix_surprise,
        baseline_values=baseline_values,
        observed_values=observed_values,
        baseline_shares=_shares(base_num),
        observed_shares=_shares(obs_num),
        baseline_weights=base_weights,
        observed_weights=obs_weights,
        mix_effect_pct=100.0 * mix_effect / (rate_effect + mix_effect)
        if rate_effect + mix_effect != 0
        else None,
    )


def _rates(num: np.ndarray, den: np.ndarray, *, fallback: float) -> np.ndarray:
    """num / den per element; `fallback` (the dimension's own rate) where den is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, fallback)


def _shares(values: np.ndarray) -> np.ndarray:
    total = float(values.sum())
    return values / total if total > 0 else np.zeros(len(values))


def js_terms(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Each element's term of the Jensen-Shannon divergence of distributions p and q, in
    bits: ½ (p log₂(2p / (p + q)) + q log₂(2q / (p + q))), with 0 · log 0 = 0. The terms
    add up to JSD(p, q) ∈ [0, 1] (Adtributor's per-element surprise)."""
    p = np.asarray(p, dtype="float64")
    q = np.asarray(q, dtype="float64")
    mean = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log2(p / mean), 0.0)
        right = np.where(q > 0, q * np.log2(q / mean), 0.0)
    return np.maximum((left + right) / 2, 0.0)


# --- shaping a breakdown --------------------------------------------------------------------


def cap_elements(breakdown: pd.DataFrame, max_elements: int = MAX_ELEMENTS) -> pd.DataFrame:
    """At most `max_elements` rows per dimension: the elements with the largest share of
    the numerator or the denominator (both windows together), the rest summed into one
    OTHER row, so a uri label with thousands of values stays readable and nothing of the
    totals is lost. A slice's own KPI is not additive: OTHER's is NaN."""
    if max_elements < 1:
        raise ValueError(f"max_elements must be at least 1, got {max_elements}")
    parts = []
    for _, rows in breakdown.groupby("dimension", sort=False):
        if len(rows) <= max_elements:
            parts.append(rows)
            continue
        num = rows["baseline_num"].fillna(0) + rows["observed_num"].fillna(0)
        den = rows["baseline_den"].fillna(0) + rows["observed_den"].fillna(0)
        weight = _shares(num.to_numpy(dtype="float64")) + _shares(den.to_numpy(dtype="float64"))
        keep = np.argsort(-weight, kind="stable")[: max_elements - 1]
        kept = rows.iloc[np.sort(keep)]
        rest = rows.drop(index=kept.index)
        other = {
            "dimension": rows["dimension"].iloc[0],
            "element": OTHER,
            **{column: rest[column].sum(min_count=1) for column in MEASURE_COLUMNS},
        }
        for column in SLICE_KPI_COLUMNS:
            if column in rows.columns:
                other[column] = np.nan
        parts.append(pd.concat([kept, pd.DataFrame([other])], ignore_index=True))
    if not parts:
        return breakdown.reset_index(drop=True)
    return pd.concat(parts, ignore_index=True)
