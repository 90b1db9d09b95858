"""Top contributors: Adtributor's explanatory power and surprise, by hand and on release
weeks with a change injected into one label value."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon

from tars_pipeline.errors import TarsUserError
from tars_pipeline.judge.contributors import (
    BREAKDOWN_COLUMNS,
    OTHER,
    Contributors,
    cap_elements,
    empty_breakdown,
    js_terms,
    rank_contributors,
)

PAYMENTS = "/api/v1/payments/{id}"
URIS = {PAYMENTS: 0.10, "/api/v1/search": 0.40, "/api/v1/users/{id}": 0.30, "/health": 0.20}
URI_LATENCY_S = {
    PAYMENTS: 0.050,
    "/api/v1/search": 0.120,
    "/api/v1/users/{id}": 0.080,
    "/health": 0.005,
}
INSTANCES = ("10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.4:8080")
BASE_500_RATE = 0.002
NOT_FOUND_RATE = 0.01
REQUESTS = 1_000_000.0  # per window, before any scaling


def frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(BREAKDOWN_COLUMNS))


def jsd(p: np.ndarray, q: np.ndarray) -> float:
    """scipy's Jensen-Shannon *distance* is the square root of the divergence."""
    return float(jensenshannon(p, q, base=2) ** 2)


# --- a small service: uri × code × instance cells ------------------------------------------


def cells(
    *,
    uri_weights: dict[str, float] | None = None,
    instance_weights: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25),
    requests: float = REQUESTS,
    rate_503: dict[str, float] | None = None,
    rate_503_instance: dict[str, float] | None = None,
    extra_latency_s: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Request counts and latency sums of one window, one row per (uri, code, instance)."""
    uri_weights = uri_weights or URIS
    rows = []
    for uri, uri_share in uri_weights.items():
        for instance, instance_share in zip(INSTANCES, instance_weights, strict=True):
            total = requests * uri_share * instance_share
            rate_503_here = (rate_503 or {}).get(uri, 0.0) + (rate_503_instance or {}).get(
                instance, 0.0
            )
            shares = {
                "500": BASE_500_RATE,
                "503": rate_503_here,
                "404": NOT_FOUND_RATE,
            }
            shares["200"] = 1.0 - sum(shares.values())
            latency = URI_LATENCY_S[uri] + (extra_latency_s or {}).get(instance, 0.0)
            for code, share in shares.items():
                count = total * share
                rows.append((uri, code, instance, count, count * latency))
    return pd.DataFrame(rows, columns=["uri", "code", "instance", "requests", "duration_s"])


def breakdown_of(
    baseline: pd.DataFrame, observed: pd.DataFrame, kpi: str, labels=("uri", "code", "instance")
) -> pd.DataFrame:
    """What `sum by (label)` of each measure gives, computed here with pandas."""

    def measures(window: pd.DataFrame) -> pd.DataFrame:
        errors = window["requests"].where(window["code"].str.startswith("5"), 0.0)
        good = window["requests"] - errors
        if kpi == "error_rate":
            return window.assign(num=errors, den=window["requests"])
        if kpi == "availability":
            return window.assign(num=good, den=window["requests"])
        if kpi == "mean_latency":
            return window.assign(num=window["duration_s"], den=window["requests"])
        if kpi == "throughput":
            return window.assign(num=window["requests"], den=np.nan)
        raise AssertionError(kpi)

    parts = []
    for label in labels:
        base = measures(baseline).groupby(label, sort=False)[["num", "den"]].sum(min_count=1)
        obs = measures(observed).groupby(label, sort=False)[["num", "den"]].sum(min_count=1)
        joined = base.join(obs, how="outer", lsuffix="_b", rsuffix="_o")
        parts.append(
            pd.DataFrame(
                {
                    "dimension": label,
                    "element": joined.index.astype(str),
                    "baseline_num": joined["num_b"].to_numpy(),
                    "baseline_den": joined["den_b"].to_numpy(),
                    "observed_num": joined["num_o"].to_numpy(),
                    "observed_den": joined["den_o"].to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def kpi_value(window: pd.DataFrame, kpi: str) -> float:
    errors = window["requests"].where(window["code"].str.startswith("5"), 0.0).sum()
    if kpi == "error_rate":
        return 100 * errors / window["requests"].sum()
    if kpi == "mean_latency":
        return 1000 * window["duration_s"].sum() / window["requests"].sum()
    raise AssertionError(kpi)


def ranked(result: Contributors | None) -> Contributors:
    assert result is not None
    return result


# --- by hand -------------------------------------------------------------------------------


def test_additive_measure_by_hand():
    """Throughput by uri: /a 60 → 60, /b 30 → 30, /c 10 → 40 req/s (total 100 → 130)."""
    result = ranked(
        rank_contributors(
            frame(
                [
                    ("uri", "/a", 60.0, np.nan, 60.0, np.nan),
                    ("uri", "/b", 30.0, np.nan, 30.0, np.nan),
                    ("uri", "/c", 10.0, np.nan, 40.0, np.nan),
                ]
            ),
            ratio=False,
        )
    )
    (uri,) = result.dimensions
    by_element = {item.element: item for item in uri.elements}
    # EP = (A_j − F_j) / (A − F): /c explains 30 / 30; the others nothing.
    assert [item.element for item in uri.elements] == ["/c", "/a", "/b"]
    assert by_element["/c"].share_pct == pytest.approx(100.0)
    assert by_element["/a"].share_pct == pytest.approx(0.0)
    # Shares p = (0.6, 0.3, 0.1), q = (60, 30, 40) / 130. The JS term of /c:
    # ½ (0.1 log2(0.2 / (0.1 + 0.30769)) + 0.30769 log2(0.61538 / 0.40769)) = 0.040012.
    assert by_element["/c"].surprise == pytest.approx(0.0400118, abs=1e-7)
    assert by_element["/a"].surprise == pytest.approx(0.0065324, abs=1e-7)
    p, q = np.array([0.6, 0.3, 0.1]), np.array([60, 30, 40]) / 130
    assert uri.surprise == pytest.approx(jsd(p, q), rel=1e-12)  # 0.049810
    assert by_element["/c"].baseline_share_pct == pytest.approx(10.0)
    assert by_element["/c"].observed_share_pct == pytest.approx(4000 / 130)
    assert by_element["/c"].baseline_weight_pct is None
    assert (result.baseline, result.observed) == (100.0, 130.0)
    assert [item.element for item in result.top] == ["/c"]
    assert result.headline("Throughput", "req/s") == (
        "100 % of the throughput increase is uri=/c (10.0 → 40.0 req/s)."
    )


def test_ratio_measure_by_hand():
    """Error rate by uri: /a 10 errors of 1000 → 12 of 1200; /b 5 of 1000 → 50 of 800.

    F = 15 / 2000 = 0.75 %, A = 62 / 2000 = 3.1 %. Total traffic is unchanged (2000), so
    the finite-difference EP is Adtributor's as published:
      e_a = 100 (2 · 2000 − 200 · 15) / (2000 · 2200) = 0.0227273
      e_b = 100 (45 · 2000 + 200 · 15) / (2000 · 1800) = 2.5833333
    normalised by their sum 2.6060606: EP_a = 0.87 %, EP_b = 99.13 %.
    """
    breakdown = frame(
        [
            ("uri", "/a", 10.0, 1000.0, 12.0, 1200.0),
            ("uri", "/b", 5.0, 1000.0, 50.0, 800.0),
        ]
    )
    result = ranked(rank_contributors(breakdown, scale=100.0, ratio=True))
    (uri,) = result.dimensions
    b, a = uri.elements
    assert (b.element, a.element) == ("/b", "/a")
    assert b.share_pct == pytest.approx(100 * 2.5833333 / 2.6060606, rel=1e-6)  # 99.128
    assert a.share_pct == pytest.approx(100 * 0.0227273 / 2.6060606, rel=1e-5)  # 0.872
    assert (result.baseline, result.observed) == (pytest.approx(0.75), pytest.approx(3.1))
    assert (b.baseline, b.observed) == (pytest.approx(0.5), pytest.approx(6.25))

    # The same raw EPs, brute force: the KPI with only that uri at its observed measures.
    def kpi(num_a, den_a, num_b, den_b):
        return 100 * (num_a + num_b) / (den_a + den_b)

    e_b = kpi(10, 1000, 50, 800) - kpi(10, 1000, 5, 1000)
    e_a = kpi(12, 1200, 5, 1000) - kpi(10, 1000, 5, 1000)
    assert b.share_pct == pytest.approx(100 * e_b / (e_a + e_b), rel=1e-12)

    # Kitagawa: weights (.5, .5) → (.6, .4), rates (1 %, .5 %) → (1 %, 6.25 %):
    # rate effect .55 · 0 + .45 · .0575 = .025875; mix .01 · .1 − .03375 · .1 = −.002375.
    assert uri.mix_effect_pct == pytest.approx(100 * -0.002375 / 0.0235, rel=1e-9)
    rate_part = 0.025875 / (0.025875 + 0.002375)
    # Rate surprise: baseline rates on observed traffic expect errors (12, 4) → shares
    # (.75, .25); observed (12, 50) / 62. Mix surprise: (.5, .5) vs (.6, .4).
    expected = rate_part * jsd(np.array([0.75, 0.25]), np.array([12, 50]) / 62) + (
        1 - rate_part
    ) * jsd(np.array([0.5, 0.5]), np.array([0.6, 0.4]))
    assert uri.surprise == pytest.approx(expected, rel=1e-12)
    assert (b.baseline_weight_pct, b.observed_weight_pct) == (50.0, 40.0)


def test_a_traffic_level_change_is_no_elements_change():
    """20 % less traffic everywhere, and /b's errors up: Adtributor's raw EP would credit
    /a (the large, clean uri) with part of it; scaled to the observed traffic, /a moved
    exactly as the total did and explains nothing."""
    breakdown = frame(
        [
            ("uri", "/a", 9.0, 9000.0, 7.2, 7200.0),  # 0.1 %, at 80 % of its traffic
            ("uri", "/b", 1.0, 1000.0, 8.0, 800.0),  # 0.1 % → 1 %
        ]
    )
    result = ranked(rank_contributors(breakdown, scale=100.0, ratio=True))
    by_element = {item.element: item for item in result.dimensions[0].elements}
    assert by_element["/a"].share_pct == pytest.approx(0.0, abs=1e-9)
    assert by_element["/b"].share_pct == pytest.approx(100.0)
    # The published form: e_a = 100 (−1.8 · 10000 + 1800 · 10) / (10000 · 8200) = 0 here too,
    # but e_b = 100 (7 · 10000 + 200 · 10) / (10000 · 9800) is not the whole change.
    published_b = 100 * (7 * 10000 + 200 * 10) / (10000 * 9800)
    assert published_b != pytest.approx(result.change)


# --- release weeks with one injected value ---------------------------------------------------


def test_errors_in_one_uri_lead_and_the_status_code_joins_the_headline():
    baseline = cells()
    observed = cells(rate_503={PAYMENTS: 0.05})
    result = ranked(
        rank_contributors(breakdown_of(baseline, observed, "error_rate"), scale=100.0, ratio=True)
    )
    assert result.baseline == pytest.approx(kpi_value(baseline, "error_rate"))  # 0.2 %
    assert result.observed == pytest.approx(kpi_value(observed, "error_rate"))  # 0.7 %
    assert [d.dimension for d in result.dimensions][:2] == ["uri", "code"]
    uri, code = result.dimensions[:2]
    assert uri.elements[0].element == PAYMENTS
    assert uri.elements[0].share_pct == pytest.approx(100.0)
    assert (uri.elements[0].baseline, uri.elements[0].observed) == (
        pytest.approx(0.2),
        pytest.approx(5.2),
    )
    assert code.filter_label and code.elements[0].element == "503"
    # Instances all moved alike: no surprise, and no top set that explains the change.
    instance = next(d for d in result.dimensions if d.dimension == "instance")
    assert instance.surprise < 1e-12 and not instance.explains
    assert [item.label for item in result.top] == [f"uri={PAYMENTS}", "code=503"]
    assert result.headline("Error rate", "%") == (
        f"100 % of the error rate increase is uri={PAYMENTS} (0.2 → 5.2 %), code=503."
    )


def test_availability_attributes_the_same_uri_through_its_errors():
    """Availability = 100 · (1 − errors / requests): the same breakdown as the error rate,
    read as its complement. Read as good / requests instead, the EPs are the same but the
    good requests' shares barely move, so the uri's surprise falls under the floor; its
    localisation (the change sits on the payments uri, not where the requests are) still
    puts it ahead of the code label, which always explains an error-rate change."""
    observed = cells(rate_503={PAYMENTS: 0.05})
    errors = breakdown_of(cells(), observed, "error_rate")
    result = ranked(rank_contributors(errors, scale=100.0, ratio=True, complement=True))
    good = ranked(
        rank_contributors(breakdown_of(cells(), observed, "availability"), scale=100.0, ratio=True)
    )
    assert good.dimensions[0].surprise < 1e-4 < good.dimensions[0].localisation
    assert good.leader.label == f"uri={PAYMENTS}"
    assert good.leader.share_pct == pytest.approx(result.leader.share_pct)
    assert (result.baseline, result.observed) == (pytest.approx(99.8), pytest.approx(99.3))
    assert result.direction == "decrease"
    assert result.leader.label == f"uri={PAYMENTS}"
    assert result.leader.share_pct == pytest.approx(100.0)
    assert result.headline("Availability", "%").startswith(
        f"100 % of the availability decrease is uri={PAYMENTS} (99.8 → 94.8 %)"
    )


def test_errors_on_one_instance():
    observed = cells(rate_503_instance={INSTANCES[2]: 0.02})
    result = ranked(
        rank_contributors(breakdown_of(cells(), observed, "error_rate"), scale=100.0, ratio=True)
    )
    assert result.dimensions[0].dimension == "instance"
    assert result.leader.element == INSTANCES[2]
    assert result.leader.share_pct == pytest.approx(100.0)
    assert [item.label for item in result.top] == [f"instance={INSTANCES[2]}", "code=503"]


def test_latency_on_one_instance_through_the_mean_latency():
    """A p99 KPI is attributed through duration_sum / duration_count by label. The slow
    instance adds 200 ms to every request it serves; every uri slows by the same 50 ms on
    average, so the uri label is no explanation, whatever its latencies."""
    baseline = cells()
    observed = cells(extra_latency_s={INSTANCES[1]: 0.200})
    breakdown = breakdown_of(baseline, observed, "mean_latency", labels=("uri", "instance"))
    breakdown["baseline_kpi"] = np.where(breakdown["element"] == INSTANCES[1], 180.0, np.nan)
    breakdown["observed_kpi"] = np.where(breakdown["element"] == INSTANCES[1], 450.0, np.nan)
    result = ranked(rank_contributors(breakdown, scale=1000.0, ratio=True, measure="mean latency"))
    assert result.observed - result.baseline == pytest.approx(50.0)
    assert result.dimensions[0].dimension == "instance"
    assert result.leader.element == INSTANCES[1]
    assert result.leader.share_pct == pytest.approx(100.0)
    uri = result.dimensions[1]
    assert not uri.explains or uri.surprise < result.dimensions[0].surprise
    assert result.headline("Latency p99", "ms") == (
        f"100 % of the latency p99 increase is instance={INSTANCES[1]} (180 → 450 ms)."
    )
    without_own_quantile = ranked(
        rank_contributors(
            breakdown.drop(columns=["baseline_kpi", "observed_kpi"]),
            scale=1000.0,
            ratio=True,
            measure="mean latency",
        )
    )
    assert without_own_quantile.headline("Latency p99", "ms") == (
        f"100 % of the latency p99 increase is instance={INSTANCES[1]} "
        "(mean latency 78.0 → 278 ms)."  # Σ share · latency: 5 + 48 + 24 + 1
    )


def test_more_traffic_on_one_uri_for_an_additive_kpi():
    base_weights = dict(URIS)
    observed_weights = {uri: share for uri, share in URIS.items()}
    observed_weights["/api/v1/search"] = 0.40 * 3  # 3x the search traffic
    result = ranked(
        rank_contributors(
            breakdown_of(
                cells(uri_weights=base_weights),
                cells(uri_weights=observed_weights),
                "throughput",
                labels=("uri", "instance"),
            ),
            ratio=False,
        )
    )
    assert result.leader.label == "uri=/api/v1/search"
    assert result.leader.share_pct == pytest.approx(100.0)
    instance = next(d for d in result.dimensions if d.dimension == "instance")
    assert instance.surprise < 1e-12 and not instance.explains


def test_a_status_code_surge_everywhere_leads_with_the_code():
    """503s from a shared dependency, on every uri and instance alike: no uri or instance
    stands out, and the code label, a filter of the error rate, is the explanation."""
    observed = cells(rate_503={uri: 0.01 for uri in URIS})
    result = ranked(
        rank_contributors(breakdown_of(cells(), observed, "error_rate"), scale=100.0, ratio=True)
    )
    assert result.dimensions[0].dimension == "code"
    assert [item.label for item in result.top] == ["code=503"]
    for dimension in result.dimensions[1:]:
        assert not dimension.explains


# --- masking: traffic that moves is not a change --------------------------------------------


def test_traffic_moving_between_instances_with_no_real_change_is_nothing_to_attribute():
    moved = cells(instance_weights=(0.40, 0.10, 0.25, 0.25))
    assert (
        rank_contributors(breakdown_of(cells(), moved, "error_rate"), scale=100, ratio=True) is None
    )


def test_a_traffic_shift_does_not_mask_the_uri_that_changed():
    """Search's errors rise (0.2 % → 0.5 % of 500s) while a rebalance moves 30 % of the
    traffic between instances. Adtributor's derived surprise, numerator's plus
    denominator's, finds the instance label the more surprising; here its surprise is 0."""
    baseline = cells()
    observed = cells(instance_weights=(0.40, 0.10, 0.25, 0.25), rate_503={"/api/v1/search": 0.003})
    breakdown = breakdown_of(baseline, observed, "error_rate", labels=("uri", "instance"))
    result = ranked(rank_contributors(breakdown, scale=100.0, ratio=True))
    assert result.leader.label == "uri=/api/v1/search"
    instance = next(d for d in result.dimensions if d.dimension == "instance")
    assert instance.surprise < 1e-12
    assert instance.mix_effect_pct == pytest.approx(0.0, abs=1e-9)

    def adtributor_surprise(label: str) -> float:
        rows = breakdown[breakdown["dimension"] == label]
        shares = {c: rows[c].to_numpy() / rows[c].sum() for c in BREAKDOWN_COLUMNS[2:]}
        return jsd(shares["baseline_num"], shares["observed_num"]) + jsd(
            shares["baseline_den"], shares["observed_den"]
        )

    assert adtributor_surprise("instance") > adtributor_surprise("uri")


def test_traffic_moving_to_an_error_prone_uri_is_a_mix_effect():
    """No rate changed; payments (errors at 0.2 % like the rest, plus 5 % 503s on both
    windows) got 3x its traffic: the error rate rose through the mix."""
    weights = dict(URIS)
    weights[PAYMENTS] = 0.30
    result = ranked(
        rank_contributors(
            breakdown_of(
                cells(rate_503={PAYMENTS: 0.05}),
                cells(uri_weights=weights, rate_503={PAYMENTS: 0.05}),
                "error_rate",
                labels=("uri", "instance"),
            ),
            scale=100.0,
            ratio=True,
        )
    )
    uri = result.dimensions[0]
    assert uri.dimension == "uri" and result.leader.element == PAYMENTS
    assert uri.mix_effect_pct == pytest.approx(100.0)
    instance = result.dimensions[1]
    assert not instance.explains  # every instance moved alike: surprise 0


# --- the target: injected weeks rank the injected value first ---------------------------------


ERROR_CODES = ("500", "502", "503")


def random_week(rng: np.random.Generator) -> tuple[pd.DataFrame, tuple[str, str], str]:
    """A service with 5-40 uris (Zipf traffic), 3-9 instances and 1-3 regions, Poisson
    counts. One uri or instance gets more errors (half the time mostly 503s) or more
    latency (×1.3-5, or +20-500 ms); half the weeks also move traffic between instances (a
    rebalance, ×0.5-1.5) and between uris (×0.85-1.15), and the traffic level moves ±30 %.
    An error KPI is broken down by uri, instance, region and code; latency by the first
    three."""
    n_uri, n_instance, n_region = (int(rng.integers(*ends)) for ends in ((5, 41), (3, 10), (1, 4)))
    shape = (n_uri, n_instance, n_region)

    def weights(values: np.ndarray) -> np.ndarray:
        return values / values.sum()

    uri_w = weights(rng.zipf(1.6, n_uri).astype(float))
    instance_w = weights(rng.uniform(0.8, 1.2, n_instance))
    region_w = weights(rng.uniform(0.3, 1.0, n_region))
    rate = np.broadcast_to(rng.uniform(0.0002, 0.01, n_uri)[:, None, None], shape).copy()
    latency = np.broadcast_to(rng.lognormal(np.log(0.08), 0.8, n_uri)[:, None, None], shape)
    code_mix = rng.dirichlet([5, 1, 1])
    requests = rng.uniform(20, 2000) * 3600 * rng.choice([1, 6, 24])

    kind = "errors" if rng.random() < 0.5 else "latency"
    on_uri = rng.random() < 0.5
    culprit = int(rng.integers(n_uri if on_uri else n_instance))
    where = np.s_[culprit, :, :] if on_uri else np.s_[:, culprit, :]
    new_rate, new_latency, new_mix = rate.copy(), latency.copy(), code_mix
    if kind == "errors":
        new_rate[where] = np.clip(new_rate[where] * rng.uniform(2, 30) + rng.uniform(0, 0.05), 0, 1)
        if rng.random() < 0.5:
            new_mix = np.array([0.1, 0.1, 0.8])
    elif rng.random() < 0.5:
        new_latency[where] *= rng.uniform(1.3, 5)
    else:
        new_latency[where] += rng.uniform(0.02, 0.5)
    new_uri_w, new_instance_w = uri_w, instance_w
    if rng.random() < 0.5:
        new_instance_w = weights(instance_w * rng.uniform(0.5, 1.5, n_instance))
        new_uri_w = weights(uri_w * rng.uniform(0.85, 1.15, n_uri))

    def window(uri_w, instance_w, rate, lat, mix, total):
        traffic = total * np.einsum("i,j,k->ijk", uri_w, instance_w, region_w)
        counts = rng.poisson(traffic).astype(float)
        errors = rng.binomial(counts.astype(np.int64), rate)
        by_code = rng.multinomial(errors, mix).astype(float)  # [uri, instance, region, code]
        duration = counts * lat * rng.normal(1, 0.02, counts.shape)
        return counts, by_code, duration

    new_requests = requests * rng.uniform(0.7, 1.3)
    windows = [
        window(uri_w, instance_w, rate, latency, code_mix, requests),
        window(new_uri_w, new_instance_w, new_rate, new_latency, new_mix, new_requests),
    ]
    rows = []
    for label, axis in (("uri", 0), ("instance", 1), ("region", 2)):
        others = tuple(a for a in range(3) if a != axis)
        sums = []
        for counts, by_code, duration in windows:
            num = by_code.sum(axis=3) if kind == "errors" else duration
            sums += [num.sum(axis=others), counts.sum(axis=others)]
        rows += [(label, f"{label}-{j}", *(s[j] for s in sums)) for j in range(shape[axis])]
    if kind == "errors":
        for j, code in enumerate(ERROR_CODES):
            sums = [w[1][..., j].sum() for w in windows]
            rows.append(("code", code, sums[0], sums[0], sums[1], sums[1]))
        ok = [w[0].sum() - w[1].sum() for w in windows]
        rows.append(("code", "200", 0.0, ok[0], 0.0, ok[1]))
    truth = ("uri", f"uri-{culprit}") if on_uri else ("instance", f"instance-{culprit}")
    return frame(rows), truth, kind


def adtributor_as_published(breakdown: pd.DataFrame) -> tuple[str, str] | None:
    """The paper's algorithm, for comparison: derived EP without the traffic scaling,
    surprise = S(numerator) + S(denominator), elements examined by surprise, the candidate
    set (T_EEP 0.1, T_EP 0.67) of highest surprise; its largest-EP element."""
    best = None
    for dimension, rows in breakdown.groupby("dimension", sort=False):
        f1, f2, a1, a2 = (rows[c].to_numpy() for c in BREAKDOWN_COLUMNS[2:])
        raw = ((a1 - f1) * f2.sum() - (a2 - f2) * f1.sum()) / (f2.sum() * (f2.sum() + a2 - f2))
        ep = raw / raw.sum()
        surprise = js_terms(f1 / f1.sum(), a1 / a1.sum()) + js_terms(f2 / f2.sum(), a2 / a2.sum())
        candidates, explained = [], 0.0
        for j in np.argsort(-surprise):
            if ep[j] > 0.1:
                candidates.append(j)
                explained += ep[j]
            if explained > 0.67:
                break
        score = surprise[candidates].sum()
        if explained > 0.67 and (best is None or score > best[0]):
            best = (score, dimension, rows["element"].iloc[max(candidates, key=lambda j: ep[j])])
    return None if best is None else best[1:]


def degraded_weeks(seed: int, count: int):
    """`count` weeks whose KPI moved by ≥ 10 % (only a degraded KPI is attributed)."""
    rng = np.random.default_rng(seed)
    found = 0
    while found < count:
        breakdown, truth, kind = random_week(rng)
        uri = breakdown[breakdown["dimension"] == "uri"]
        before = uri["baseline_num"].sum() / uri["baseline_den"].sum()
        after = uri["observed_num"].sum() / uri["observed_den"].sum()
        if (after - before) / before >= 0.10:
            found += 1
            yield breakdown, truth, kind


def test_an_injected_value_ranks_first_in_well_over_90_percent_of_weeks():
    """The target is ≥ 90 %. Measured with this generator on 2,000 degraded weeks (seeds
    2014 and 1; docs/methods/contributors.md has them by scenario): the injected value
    leads, and heads the headline, in all 2,000; Adtributor as published in 75 %, mostly
    because the code label explains every error-rate change."""
    hits = headline_hits = published = weeks = 0
    for breakdown, truth, kind in degraded_weeks(2014, 300):
        weeks += 1
        result = ranked(
            rank_contributors(breakdown, scale=100.0 if kind == "errors" else 1000.0, ratio=True)
        )
        hits += (result.leader.dimension, result.leader.element) == truth
        headline = result.top[0] if result.top else None
        headline_hits += headline is not None and (headline.dimension, headline.element) == truth
        published += adtributor_as_published(breakdown) == truth
    assert hits / weeks >= 0.97, f"{hits}/{weeks}"
    assert headline_hits / weeks >= 0.95, f"{headline_hits}/{weeks}"
    assert published < hits  # the reference is beaten on the same weeks


# --- degenerate and bad input ----------------------------------------------------------------


def test_nothing_to_attribute():
    assert rank_contributors(empty_breakdown(), ratio=True) is None
    flat = frame([("uri", "/a", 1.0, 10.0, 1.0, 10.0), ("uri", "/b", 2.0, 10.0, 2.0, 10.0)])
    assert rank_contributors(flat, ratio=True) is None  # no change
    no_traffic = frame([("uri", "/a", 0.0, 0.0, 1.0, 10.0), ("uri", "/b", 0.0, 0.0, 2.0, 10.0)])
    assert rank_contributors(no_traffic, ratio=True) is None  # undefined on the baseline
    one_value = frame([("version", "1.0.2", 1.0, 100.0, 5.0, 100.0)])
    assert rank_contributors(one_value, ratio=True) is None  # a single value localises nothing
    assert (
        rank_contributors(
            frame([("uri", "/a", 0, 0, 0, 0), ("uri", "/b", 0, 0, 0, 0)]), ratio=False
        )
        is None
    )


def test_a_missing_measure_is_no_samples_so_a_new_uri_can_lead():
    """NaN on one side: the uri did not exist then (0), e.g. a route the release added."""
    breakdown = frame(
        [
            ("uri", "/old", 10.0, 10_000.0, 10.0, 10_000.0),
            ("uri", "/new", np.nan, np.nan, 40.0, 1_000.0),
        ]
    )
    result = ranked(rank_contributors(breakdown, scale=100.0, ratio=True))
    assert result.leader.element == "/new"
    assert result.leader.baseline is None and result.leader.observed == pytest.approx(4.0)
    assert result.dimensions[0].mix_effect_pct == pytest.approx(100.0)  # all of it is new traffic
    record = result.as_record()
    json.dumps(record, allow_nan=False)  # no NaN or Infinity reaches JSON
    assert record["top"][0]["baseline"] is None


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("observed_num", math.inf, "an infinite observed_num"),
        ("baseline_den", -1.0, "a negative baseline_den"),
        ("observed_den", "lots", "not numeric"),
    ],
)
def test_bad_measures_are_refused_with_the_row(column, value, message):
    breakdown = frame([("uri", "/a", 1.0, 10.0, 2.0, 10.0), ("uri", "/b", 1.0, 10.0, 1.0, 10.0)])
    breakdown[column] = breakdown[column].astype(object)
    breakdown.loc[1, column] = value
    with pytest.raises(TarsUserError, match=message) as raised:
        rank_contributors(breakdown, ratio=True)
    assert raised.value.where == f"breakdown.{column}"


def test_missing_columns_and_duplicate_rows_are_refused():
    with pytest.raises(TarsUserError, match="no column"):
        rank_contributors(pd.DataFrame({"dimension": ["uri"], "element": ["/a"]}), ratio=True)
    doubled = frame([("uri", "/a", 1.0, 10.0, 2.0, 10.0), ("uri", "/a", 1.0, 10.0, 1.0, 10.0)])
    with pytest.raises(TarsUserError, match="duplicate"):
        rank_contributors(doubled, ratio=True)
    with pytest.raises(TarsUserError, match="scale"):
        rank_contributors(doubled, ratio=True, scale=math.nan)


def test_an_additive_kpi_ignores_the_denominators():
    breakdown = frame(
        [("uri", "/a", 5.0, math.inf, 5.0, -3.0), ("uri", "/b", 5.0, np.nan, 15.0, np.nan)]
    )
    result = ranked(rank_contributors(breakdown, ratio=False))
    assert result.leader.element == "/b"


def test_a_change_spread_evenly_is_said_to_be_spread():
    """Throughput up 20 % on every uri alike: no label value stands out."""
    observed = {uri: share * 1.2 for uri, share in URIS.items()}
    result = ranked(
        rank_contributors(
            breakdown_of(cells(), cells(uri_weights=observed), "throughput", labels=("uri",)),
            ratio=False,
        )
    )
    assert result.top == ()
    assert result.leader.label == "uri=/api/v1/search"  # 40 % of the traffic, of the rise
    assert result.headline("Throughput", "req/s") == (
        "No label value stands out in the throughput increase: the largest share, 40 %, "
        "is uri=/api/v1/search."
    )


def test_two_values_in_one_label_share_the_headline():
    """Errors in two uris, 2:1: neither explains 67 % alone, both together all of it."""
    observed = cells(rate_503={PAYMENTS: 0.06, "/api/v1/users/{id}": 0.01})
    result = ranked(
        rank_contributors(
            breakdown_of(cells(), observed, "error_rate", labels=("uri", "instance")),
            scale=100.0,
            ratio=True,
        )
    )
    # Payments: 10 % of traffic × 6 % = 0.6 points; users 30 % × 1 % = 0.3 points.
    assert [round(item.share_pct, 6) for item in result.top] == [
        pytest.approx(200 / 3),
        pytest.approx(100 / 3),
    ]
    assert result.headline("Error rate", "%") == (
        f"100 % of the error rate increase is uri={PAYMENTS} (0.2 → 6.2 %) and "
        "uri=/api/v1/users/{id} (0.2 → 1.2 %)."
    )


def test_the_record_shape():
    result = ranked(
        rank_contributors(
            breakdown_of(cells(), cells(rate_503={PAYMENTS: 0.05}), "error_rate"),
            scale=100.0,
            ratio=True,
        )
    )
    record = result.as_record()
    json.dumps(record, allow_nan=False)
    assert set(record) == {
        "baseline", "observed", "change", "direction", "ratio", "measure", "top", "dimensions",
    }  # fmt: skip
    assert record["direction"] == "increase" and record["ratio"] is True
    first = record["dimensions"][0]
    assert first["dimension"] == "uri" and first["explains"] and first["top_count"] == 1
    assert first["element_count"] == 4 and len(first["elements"]) == 3  # top_n
    assert set(first["elements"][0]) == {
        "dimension", "element", "baseline", "observed", "baseline_kpi", "observed_kpi",
        "share_pct", "surprise", "baseline_share_pct", "observed_share_pct",
        "baseline_weight_pct", "observed_weight_pct",
    }  # fmt: skip


# --- helpers -----------------------------------------------------------------------------------


def test_js_terms_add_up_to_scipys_divergence():
    rng = np.random.default_rng(7)
    for _ in range(20):
        p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6))
        p[0] = 0.0  # a value present on one side only
        p /= p.sum()
        assert js_terms(p, q).sum() == pytest.approx(jsd(p, q), rel=1e-10)
    assert js_terms(np.array([1.0, 0.0]), np.array([0.0, 1.0])).sum() == pytest.approx(1.0)


def test_cap_elements_keeps_the_largest_and_sums_the_rest():
    rows = [("uri", f"/u{i}", float(i), 100.0, float(i), 100.0) for i in range(1, 61)]
    rows.append(("uri", "/rare-but-failing", 500.0, 1.0, 900.0, 1.0))
    rows.append(("instance", "a", 1.0, 1.0, 1.0, 1.0))
    breakdown = frame(rows)
    capped = cap_elements(breakdown, 10)
    uri = capped[capped["dimension"] == "uri"]
    assert len(uri) == 10 and uri["element"].iloc[-1] == OTHER
    assert "/rare-but-failing" in set(uri["element"])  # small traffic, most of the errors
    for column in BREAKDOWN_COLUMNS[2:]:
        before = breakdown.loc[breakdown["dimension"] == "uri", column].sum()
        assert uri[column].sum() == pytest.approx(before)
    assert len(capped[capped["dimension"] == "instance"]) == 1
    assert cap_elements(breakdown, 100).equals(breakdown)


def test_a_value_that_already_carried_every_error_still_leads_over_the_status_label():
    """Errors only ever come from /api/orders (a third of the requests); its error rate
    rises tenfold. The numerator's shares by uri do not move (100 % → 100 %), so the
    uri's surprise is 0, but the change sits where a third of the traffic is: its
    localisation leads it ahead of status=500, which only says which requests failed."""
    rows = [
        ("uri", "/api/orders", 10, 3500, 130, 3500),
        ("uri", "/api/orders/{id}", 0, 6500, 0, 6500),
        ("status", "200", 0, 9925, 0, 9805),
        ("status", "404", 0, 65, 0, 65),
        ("status", "500", 10, 10, 130, 130),
        ("instance", "a", 5, 5000, 66, 5000),
        ("instance", "b", 5, 5000, 64, 5000),
    ]
    frame = pd.DataFrame(rows, columns=list(BREAKDOWN_COLUMNS))
    result = ranked(rank_contributors(frame, scale=100.0, ratio=True))
    assert result.dimensions[0].dimension == "uri"
    assert result.dimensions[0].surprise == pytest.approx(0.0, abs=1e-9)
    assert result.top[0].label == "uri=/api/orders"
    assert result.headline("Error rate", "%").startswith(
        "100 % of the error rate increase is uri=/api/orders (0.29 → 3.7 %)"
    )
    instance = next(d for d in result.dimensions if d.dimension == "instance")
    assert not instance.explains  # spread like the traffic: no localisation


def test_a_status_label_that_only_says_the_errors_were_500s_is_no_headline():
    """Every error was a 500 before and after, and no other label localises the rise:
    'code=500 (100 → 100 %)' would say nothing, so the headline says nothing stands out."""
    rows = [
        ("code", "200", 0, 9950, 0, 9900),
        ("code", "500", 50, 50, 100, 100),
        ("instance", "a", 25, 5000, 50, 5000),
        ("instance", "b", 25, 5000, 50, 5000),
    ]
    frame = pd.DataFrame(rows, columns=list(BREAKDOWN_COLUMNS))
    result = ranked(rank_contributors(frame, scale=100.0, ratio=True))
    assert result.top == ()
    assert result.headline("Error rate", "%").startswith("No label value stands out")
