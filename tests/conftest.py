"""Shared test set-up: the repository root is importable as the project's top level."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Real pose files of peer projects (shared/fixtures beside the checkout, as CI lays it out).
PEER_POSES = ROOT.parent / "shared" / "fixtures" / "peer_poses"
if not PEER_POSES.is_dir():  # a worktree elsewhere on the development machine
    PEER_POSES = Path("/work/shared/fixtures/peer_poses")
