"""Shared pieces for tests that run real BIRD daemons in network namespaces (root only).

The lab code lives in bench/bgp_lab (the scale lab uses the same code at N = 1,000); these
helpers (bench/ is on pytest.ini's pythonpath) skip cleanly where namespaces or BIRD are not available.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

needs_bird_netns = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("bird") or not shutil.which("ip") or not shutil.which("nsenter"),
    reason="needs root (network namespaces), bird2 (bird, birdc), iproute2 and util-linux nsenter",
)
