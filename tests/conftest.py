"""Shared pytest fixtures."""

from pathlib import Path

import pytest


@pytest.fixture
def shared_data() -> Path:
    """The lab's read-only real datasets (`<repo>/../shared/data`); skip where a machine lacks them."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} not found (real MNIST / Fashion-MNIST live there)")
    return path
