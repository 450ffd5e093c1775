"""Start, pause, resume, step once and stop a training loop from any thread.

``RunControl`` holds the flags a loop reads between steps, guarded by one condition variable, and
the thread the loop runs on. The loop calls ``wait_turn`` before each step; everything else may be
called from any thread.
"""
from __future__ import annotations

import threading
from typing import Callable


class RunControl:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._paused = False
        self._stop = False
        self._budget = 0            # steps allowed while paused (step_once)
        self._thread: threading.Thread | None = None

    # --- from any thread ---------------------------------------------------------------------------
    def start(self, target: Callable[[], None]) -> threading.Thread:
        """Run ``target`` (the loop) on a background daemon thread."""
        if self.is_alive:
            raise RuntimeError("this trainer is already running")
        with self._cond:        # here, not in the loop: a stop given before the loop begins holds
            self._stop = False
        self._thread = threading.Thread(target=target, name="genlib-trainer", daemon=True)
        self._thread.start()
        return self._thread

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def step_once(self) -> None:
        """While paused, allow exactly one more step."""
        with self._cond:
            self._paused = True
            self._budget += 1
            self._cond.notify_all()

    def stop(self) -> int:
        """Stop after the current step. It also ends a pause, so a later run trains. Returns the steps
        a paused loop had been allowed (``step_once``) and not taken yet: dropped here."""
        with self._cond:
            dropped, self._budget = self._budget, 0
            self._stop = True
            self._paused = False
            self._cond.notify_all()
        return dropped

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def interrupted(self) -> bool:
        """A pause or stop was asked for: the loop reports progress at once instead of at log_every."""
        return self._paused or self._stop

    # --- from the loop -----------------------------------------------------------------------------
    def begin(self) -> None:
        """A blocking run starts: forget an earlier stop. On ``start``'s thread ``start`` did that
        already, so a stop given between ``start`` and the loop's first step is not lost (it was, in the
        worker pool, which starts a run and may be told to stop it at once)."""
        if threading.current_thread() is self._thread:
            return
        with self._cond:
            self._stop = False

    def wait_turn(self, on_pause: Callable[[], None], on_resume: Callable[[], None]) -> bool | None:
        """Block while paused (``on_pause`` / ``on_resume`` are called around the wait, under the lock).
        Returns None when the run should stop, else whether it waited."""
        waited = False
        with self._cond:
            if self._paused and self._budget == 0 and not self._stop:
                waited = True
                on_pause()
                while self._paused and self._budget == 0 and not self._stop:
                    self._cond.wait()
                if not self._stop:
                    on_resume()
            if self._stop:
                return None
            if self._paused:
                self._budget -= 1
            return waited
