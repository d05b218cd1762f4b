"""The options tests' helpers (`ib_replay`) are importable as top-level modules."""

import sys
from pathlib import Path

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
