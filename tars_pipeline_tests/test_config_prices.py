"""`cost.prices` in tars.yaml: the usage KPIs it brings, `cost.basis`, and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tars_pipeline.config import (
    USAGE_UNITS,
    CostConfig,
    default_kpis,
    load_config,
    priced_catalog,
    usage_kpis,
)
from tars_pipeline.errors import TarsUserError
from tars_pipeline.sources.prometheus import render_query
from tars_pipeline_tests.conftest import write_config

DEFAULT_NAMES = [kpi.name for kpi in default_kpis()]
PRICES = {"compute": 0.031, "memory": 0.004, "storage": 0.1, "network": 0.09}


def load(tmp_path: Path, **settings: object):
    return load_config(write_config(tmp_path, **settings))


def refused(tmp_path: Path, **settings: object) -> str:
    with pytest.raises(TarsUserError) as error:
        load(tmp_path, **settings)
    return str(error.value)


def test_without_prices_the_catalog_is_the_default_one(tmp_path: Path) -> None:
    config = load(tmp_path, cost={"days_per_month": 31})
    assert [kpi.name for kpi in config.kpis] == DEFAULT_NAMES
    assert config.cost.prices is None and config.cost.basis == "auto"


def test_each_priced_resource_type_brings_its_usage_kpi(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        thresholds={"drift_pct": 12},
        cost={"prices": {"compute": 0.031, "services": {"search": {"storage": 0.2}}}},
    )
    names = [kpi.name for kpi in config.kpis]
    assert names == [*DEFAULT_NAMES, "usage_compute", "usage_storage"]  # cost KPIs stay (auto)
    compute = config.kpi("usage_compute")
    assert (compute.kind, compute.unit, compute.resource_type) == ("cost", "cores", "compute")
    assert compute.threshold_pct == 12  # like every KPI without its own threshold
    assert config.cost.prices.price("search", "storage") == 0.2
    assert config.cost.prices.price("checkout", "storage") is None
    assert config.cost.prices.price("checkout", "compute") == 0.031


def test_the_usage_queries_read_cadvisor_and_kubelet_metrics() -> None:
    rendered = {
        kpi.name: render_query(kpi.query, service="search", service_label="app", rate_window="2m")
        for kpi in usage_kpis()
    }
    assert rendered == {
        "usage_compute": 'sum(rate(container_cpu_usage_seconds_total{app="search",'
        'container!="",container!="POD"}[2m]))',
        "usage_memory": 'sum(container_memory_working_set_bytes{app="search",container!="",'
        'container!="POD"}) / 1073741824',
        "usage_storage": 'sum(kubelet_volume_stats_capacity_bytes{app="search"}) / 1073741824',
        "usage_network": 'sum(rate(container_network_transmit_bytes_total{app="search"}[2m]))'
        " * 3600 / 1073741824",
    }
    assert {kpi.resource_type: kpi.unit for kpi in usage_kpis()} == USAGE_UNITS


def test_a_usage_kpi_is_overridden_like_any_default_kpi(tmp_path: Path) -> None:
    query = 'sum(max_over_time(kube_pod_container_resource_requests{resource="cpu"}[5m]))'
    config = load(
        tmp_path,
        cost={"prices": PRICES},
        kpis=[{"name": "usage_compute", "query": query, "weight": 0}],
    )
    compute = config.kpi("usage_compute")
    assert compute.query == query and compute.weight == 0
    assert compute.unit == "cores" and compute.kind == "cost"
    assert [kpi.name for kpi in config.kpis].count("usage_compute") == 1


def test_basis_prices_takes_the_usd_per_hour_cost_kpis_out(tmp_path: Path) -> None:
    config = load(tmp_path, cost={"basis": "prices", "prices": PRICES})
    names = [kpi.name for kpi in config.kpis]
    assert not [name for name in names if name.startswith("cost_")]
    assert names[-4:] == ["usage_compute", "usage_memory", "usage_storage", "usage_network"]
    # Applying the table again changes nothing (a re-validated config is the same).
    assert priced_catalog(config.kpis, config.cost) == config.kpis


@pytest.mark.parametrize(
    ("cost", "expected"),
    [
        ({"prices": {"gpu": 1.2}}, "cost.prices: unknown resource type 'gpu'"),
        ({"prices": {"compute": -0.01}}, "cost.prices.compute: Input should be greater than"),
        (
            {"prices": {"services": {"search": {"memory": -1}}}},
            "cost.prices.services.search.memory: Input should be greater than",
        ),
        (
            {"prices": {"services": {"search": {"cpu": 1}}}},
            "cost.prices.services.search: unknown resource type 'cpu'",
        ),
        ({"prices": {"storage": float("nan")}}, "cost.prices.storage: Input should be a finite"),
        ({"prices": {"network": float("inf")}}, "cost.prices.network: Input should be a finite"),
        ({"prices": {}}, "cost.prices: the price table has no price"),
        ({"prices": {"currency": "EUR", "compute": 1}}, "cost.prices.currency: Input should be"),
        ({"basis": "prices"}, "cost: basis 'prices' needs a price table"),
        ({"basis": "usage", "prices": PRICES}, "cost.basis: Input should be 'auto' or 'prices'"),
    ],
)
def test_a_bad_price_table_names_the_field(tmp_path: Path, cost: dict, expected: str) -> None:
    assert expected in refused(tmp_path, cost=cost)


def test_usage_without_a_price_or_in_the_wrong_unit_is_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, cost={"prices": {"compute": 0.03}}, kpis=[{"name": "usage_memory"}])
    assert "kpis[usage_memory] measures memory usage" in message
    assert "set cost.prices.memory (per GiB-hour)" in message
    message = refused(tmp_path, kpis=[{"name": "usage_network"}])
    assert "cost.prices has no network price" in message
    message = refused(
        tmp_path, cost={"prices": PRICES}, kpis=[{"name": "usage_compute", "unit": "millicores"}]
    )
    assert "kpis[usage_compute].unit: 'millicores' does not fit a compute usage KPI" in message
    gib_of_cpu = {
        "name": "cost_gpu",
        "title": "GPU",
        "unit": "GiB",
        "direction": "lower_is_better",
        "kind": "cost",
        "resource_type": "gpu",
    }
    message = refused(tmp_path, cost={"prices": PRICES}, kpis=[gib_of_cpu])
    assert "kpis[cost_gpu].unit: 'GiB' does not fit a gpu usage KPI" in message


def test_a_usd_per_hour_cost_kpi_of_any_resource_type_keeps_working() -> None:
    gpu = default_kpis()[-1].model_copy(update={"name": "cost_gpu", "resource_type": "gpu"})
    catalog = priced_catalog((*default_kpis(), gpu), CostConfig())
    assert catalog[-1] == gpu
