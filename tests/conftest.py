"""Shared test setup.

The repository root goes on sys.path so tests can import their helpers as ``tests.<pkg>.helpers``
under any pytest invocation (bare ``pytest`` only adds the test file's own folder).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
