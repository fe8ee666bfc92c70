import numpy as np
import pytest

from distill import DataError
from distill.deploy.filters import OneEuroFilter


def run(f, frames):
    return np.stack([f(x) for x in frames])


def test_reduces_jitter_on_a_noisy_constant():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 64, size=(68, 2))
    frames = truth + rng.normal(0, 1.0, size=(300, 68, 2))
    out = run(OneEuroFilter(min_cutoff=1.0, beta=0.01), frames)
    raw_jitter = np.abs(np.diff(frames[100:], axis=0)).mean()
    out_jitter = np.abs(np.diff(out[100:], axis=0)).mean()
    assert out_jitter < 0.3 * raw_jitter
    # and it stays centred on the truth (no drift)
    assert np.abs(out[100:].mean(0) - truth).max() < 0.3


@pytest.mark.parametrize("min_cutoff,freq", [(1.0, 30.0), (3.0, 60.0)])
def test_step_reaches_90_percent_exactly_at_documented_lag(min_cutoff, freq):
    f = OneEuroFilter(min_cutoff=min_cutoff, beta=0.0, freq=freq)
    lag = f.lag_frames(0.9)
    out = run(f, [np.zeros((5, 2))] + [np.full((5, 2), 10.0)] * (lag + 1))[1:, 0, 0]  # frames after the step
    assert out[lag - 1] >= 9.0 - 1e-6
    assert out[lag - 2] < 9.0                 # and not before: the bound is tight for beta = 0
    assert OneEuroFilter().lag_frames(0.9) == 13


def test_speed_term_only_shortens_the_lag():
    slow, fast = OneEuroFilter(beta=0.0), OneEuroFilter(beta=0.05)
    lag = slow.lag_frames(0.9)
    frames = [np.zeros((1, 2))] + [np.full((1, 2), 10.0)] * lag
    out_slow, out_fast = run(slow, frames)[1:, 0, 0], run(fast, frames)[1:, 0, 0]
    assert np.all(out_fast >= out_slow - 1e-9)
    assert np.argmax(out_fast >= 9.0) < lag - 4


def test_reset_timestamps_and_errors():
    f = OneEuroFilter()
    first = f(np.ones((3, 2)), t=0.0)
    np.testing.assert_array_equal(first, np.ones((3, 2)))       # a new track passes through
    f(np.zeros((3, 2)), t=0.1)
    with pytest.raises(DataError, match="increase"):
        f(np.zeros((3, 2)), t=0.1)
    f.reset()
    np.testing.assert_array_equal(f(np.full((3, 2), 7.0)), np.full((3, 2), 7.0))
    # a different point count starts a new track rather than broadcasting
    np.testing.assert_array_equal(f(np.full((5, 2), 2.0)), np.full((5, 2), 2.0))
    with pytest.raises(DataError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0)
