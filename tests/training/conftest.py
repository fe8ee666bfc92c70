"""Session fixtures: one tiny SynthFace set shared by every training test."""

from __future__ import annotations

import pytest

from tests.training.helpers import make_tiny_set


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """24 training + 8 test faces at 64 px (the data every training test reads)."""
    return make_tiny_set(tmp_path_factory.mktemp("synthface") / "set", num=24, num_test=8, size=64)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: multi-process or longer tests (deselect with -m 'not slow')")
