"""User-facing errors must survive a process-pool boundary (datagen workers pickle them)."""

import pickle

from engine.errors import DivergenceError, ScenarioError


def test_scenario_error_pickles_with_its_field() -> None:
    err = pickle.loads(pickle.dumps(ScenarioError("obstacles[1].radius", "must be positive")))
    assert isinstance(err, ScenarioError)
    assert err.field == "obstacles[1].radius"
    assert str(err) == "obstacles[1].radius: must be positive"


def test_divergence_error_pickles_with_its_step() -> None:
    err = pickle.loads(pickle.dumps(DivergenceError(42, "NaN in velocity")))
    assert err.step == 42
    assert "step 42" in str(err)
