"""The judgement: pure functions over DataFrames and arrays. Never imports Dagster.

Each module owns one method; the Dagster assets only read inputs, call these and store
the results.

- A day (`day.analyse_day`): `stats` (pre-filter, baseline summaries), `maintenance`
  (windows left out), `seasonality` (hour-of-day and weekday matching), `drift`, `slo`,
  `cost`, `anomaly`, `health`; `nab` scores the anomaly detector on the NAB corpus.
- The window (`window.judge_window`), shaped like Kayenta's canary judge, one step per
  module, each returning a frozen dataclass that carries the numbers behind it:

  1. pre-filter: `severity.crosses_threshold` keeps the KPI-days whose adverse drift
     crossed the degradation threshold;
  2. compare: `compare.compare_samples`, Mann-Whitney U + Cliff's delta of GA day vs the
     day → `Comparison`, whose outcome is "no_data", "no_change" or "ranked";
  3. classify: `degradations.find_degradations` → `Degradation`,
     `drifts.find_unexpected_drifts` (`classify_trend`, `potential_causes`) →
     `UnexpectedDrift`, `successes.find_successes` → `Success`;
  4. score: `severity.severity_of` → `Severity`, the rules that fired and their numbers;
     `recommendations` turns the findings into P0-P3 recommendations;
  5. explain: `explain` writes every sentence of a finding; `formatting` every number.

  `direction` owns which way a KPI's move is bad (`adverse_sign`); `finding.KpiFinding`
  is what a finding is about. Each result's `as_record()` is its JSON record.
"""
