"""Shared test setup.

The repository root goes on sys.path so tests can import their helpers as ``tests.<pkg>.helpers``
under any pytest invocation (bare ``pytest`` only adds the test file's own folder).
"""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A tiny SynthFace set: 24 training + 8 test faces at 64 px (what the training and evaluation tests read)."""
    from distill.data.synthface import generate

    return generate(tmp_path_factory.mktemp("synthface") / "set", num=24, seed=0, size=64, workers=1, num_test=8,
                    progress=False)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: multi-process or longer tests (deselect with -m 'not slow')")
