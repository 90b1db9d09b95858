"""Which way is bad: one sign rule for drift, the rank test, SLOs and the charts."""

from __future__ import annotations

import numpy as np

from tars_pipeline.judge.direction import adverse_sign, adverse_signs, beyond, good_sign


def test_up_is_bad_for_lower_is_better_and_down_for_higher_is_better():
    assert adverse_sign("lower_is_better") == 1.0
    assert adverse_sign("higher_is_better") == -1.0
    assert adverse_sign("neutral") == 0.0 and adverse_sign(None) == 0.0
    assert good_sign("lower_is_better") == -1.0 and good_sign("higher_is_better") == 1.0
    signs = adverse_signs(["lower_is_better", "neutral", "higher_is_better"])
    assert signs.tolist() == [1.0, 0.0, -1.0]


def test_beyond_is_the_bad_side_of_an_objective_and_never_for_nan_or_neutral():
    values = np.array([150.0, 200.0, 250.0, np.nan])
    assert beyond(values, 200.0, "lower_is_better").tolist() == [False, False, True, False]
    assert beyond(values, 200.0, "higher_is_better").tolist() == [True, False, False, False]
    assert not beyond(values, 200.0, "neutral").any()
