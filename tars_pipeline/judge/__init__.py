"""The judgement: pure functions over DataFrames and arrays. Never imports Dagster.

Each module owns one method (stats, drift, seasonality, maintenance, anomaly, nab, health,
slo, regression, cost, recommendations); the Dagster assets only read inputs, call these
and store the results.
"""
