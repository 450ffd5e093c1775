"""Shared pytest fixtures, and the helpers of the AppTest files (``from conftest import APP, assert_clean``)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pytest
import torch

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


# --- the robustness tally: every test marked ``hostile`` feeds bad input and must get a clear error ---
# Counted from pytest's own reports, so a failing hostile test is counted as failed (each case of a
# parametrised test on its own). ``@pytest.mark.hostile(n)``: one test that feeds n bad inputs in a row
# (an AppTest session); all n count as failed when it fails.
_HOSTILE: dict[str, int] = {}          # nodeid -> bad inputs it feeds
_OUTCOME: dict[str, str] = {}          # nodeid -> passed / failed / skipped


def pytest_configure(config):
    config.addinivalue_line("markers", "hostile(n=1): feeds n bad or hostile inputs that must be refused "
                                       "with a clear error; tallied at the end of the run")


def pytest_collection_modifyitems(items):
    for item in items:
        mark = item.get_closest_marker("hostile")
        if mark is not None:
            _HOSTILE[item.nodeid] = int(mark.args[0]) if mark.args else 1


def pytest_runtest_logreport(report):
    if report.nodeid not in _HOSTILE:
        return
    if report.failed:
        _OUTCOME[report.nodeid] = "failed"
    elif report.skipped and _OUTCOME.get(report.nodeid) != "failed":
        _OUTCOME[report.nodeid] = "skipped"
    elif report.when == "call" and report.passed:
        _OUTCOME.setdefault(report.nodeid, "passed")


def pytest_terminal_summary(terminalreporter):
    ran = {k: v for k, v in _OUTCOME.items() if v != "skipped"}
    if not ran:
        return
    tried = sum(_HOSTILE[k] for k in ran)
    failed = [k for k, v in ran.items() if v == "failed"]
    n_failed = sum(_HOSTILE[k] for k in failed)
    terminalreporter.write_line(
        f"robustness: {tried} bad inputs tried, {tried - n_failed} handled, {n_failed} failed"
        + ("" if not failed else " (" + "; ".join(failed) + ")"))


@pytest.fixture
def one_torch_thread():
    """One torch thread for a test, as the lessons page and bench run; the previous count restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def wait_until(cond: Callable[[], object], timeout: float = 20.0, poll: float = 0.05) -> bool:
    """Poll ``cond`` until it holds or ``timeout`` seconds pass; its last value, as a bool (a bound, not a speed)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(poll)
    return bool(cond())
