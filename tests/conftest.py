"""Shared pytest fixtures, and the helpers of the AppTest files (``from conftest import APP, assert_clean``)."""
from __future__ import annotations

from pathlib import Path

import pytest

import genlib

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")   # the dashboard's entry, for AppTest


def assert_clean(at) -> None:
    """The AppTest ``at`` shows no exception and no st.error."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]

# torch's default (one thread per core) oversubscribes a 2-core CI box running small models;
# genlib's own choice is what the app and CLI use, so the tests run with it too.
genlib.configure_threads()


@pytest.fixture(scope="session")
def digits() -> genlib.Dataset:
    """The offline 8x8 digits (train split), loaded once for every test file that uses it."""
    return genlib.load_dataset("digits")


@pytest.fixture
def shared_data() -> Path:
    """The lab's read-only real datasets (`<repo>/../shared/data`); skip where a machine lacks them."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} not found (real MNIST / Fashion-MNIST live there)")
    return path


# --- the robustness tally: every hostile or bad input a test feeds in, and whether it was handled ---
_BAD_INPUTS: list[tuple[str, bool]] = []


class _BadInput:
    """``with bad_input("truncated checkpoint", CheckpointError, match="corrupt"): load(...)``.

    Counts the input as handled only when exactly the expected error (with a clear message) is
    raised; anything else fails the test and is counted as not handled.
    """

    def __call__(self, what: str, error: type[BaseException] = Exception, match: str | None = None):
        return _Expect(what, error, match)

    @staticmethod
    def record(what: str, handled: bool) -> None:
        _BAD_INPUTS.append((what, handled))


class _Expect:
    def __init__(self, what, error, match):
        self.what, self.ctx = what, pytest.raises(error, match=match)

    def __enter__(self):
        return self.ctx.__enter__()

    def __exit__(self, *exc):
        try:
            suppressed = self.ctx.__exit__(*exc)
        except BaseException:
            _BAD_INPUTS.append((self.what, False))
            raise
        _BAD_INPUTS.append((self.what, True))
        return suppressed


@pytest.fixture
def bad_input() -> _BadInput:
    return _BadInput()


def pytest_terminal_summary(terminalreporter):
    if _BAD_INPUTS:
        handled = sum(ok for _, ok in _BAD_INPUTS)
        terminalreporter.write_line(
            f"robustness: {len(_BAD_INPUTS)} bad inputs tried, {handled} handled with a clear error"
            + ("" if handled == len(_BAD_INPUTS) else
               "; NOT handled: " + "; ".join(w for w, ok in _BAD_INPUTS if not ok)))
