"""The course's lessons: one seeded, one-click experiment each, with the number that proves its effect.

A ``Lesson`` is data (course number, URL slug, title, what the learner must see, the dashboard page it
opens and that page's settings, the bar its effect must clear) plus a runner. ``lesson.run(seed,
**settings)`` runs the experiment the page runs (same seed, same settings) and returns a
``LessonResult``: the measured effect (name, value, unit), the bar, whether it holds, the seconds it
took, a short note written from the measurement, and the data a page needs to draw it.

Writing a lesson: a module in this package defines ``LESSON = Lesson(...)`` whose ``runner(seed,
**settings)`` returns an ``Outcome`` (the measured value, the note made from the numbers, the data to
draw, secondary figures). Add the module's name to ``_MODULES`` below. ``Lesson.run`` merges the
settings, times the runner and judges the bar, so a runner never decides by itself that it holds.

    from genlib.lessons import LESSONS, lesson
    result = lesson("all-eights").run(seed=0)
    print(result.effect, result.holds, result.note)

Lessons without a runner yet (they need recorded runs or live training from elsewhere) are
registered as data only (``Lesson.ready`` is False; ``run`` raises NotImplementedError).
"""
from __future__ import annotations

import dataclasses
import importlib
import math
import re
import time
from types import MappingProxyType
from typing import Any, Callable, Literal, Mapping

Direction = Literal[">=", "<="]
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclasses.dataclass(frozen=True)
class Effect:
    """The measured number behind a lesson, e.g. Effect("label accuracy for 8", 0.98, "share")."""

    name: str
    value: float
    unit: str = ""

    def __str__(self) -> str:
        return f"{self.name} = {format_value(self.value)}{(' ' + self.unit) if self.unit else ''}"


@dataclasses.dataclass(frozen=True)
class Check:
    """A further bar a lesson's effect needs (e.g. the in-between digit besides the 8s), judged by
    ``Lesson.run`` like the main one: ``value`` against ``threshold`` in ``direction``."""

    name: str
    value: float
    threshold: float
    direction: Direction = ">="
    unit: str = ""

    @property
    def holds(self) -> bool:
        return judge(self.value, self.threshold, self.direction)

    def __str__(self) -> str:
        return (f"{self.name} = {format_value(self.value)}{(' ' + self.unit) if self.unit else ''} "
                f"(bar {self.direction} {format_value(self.threshold)}: {'holds' if self.holds else 'does NOT hold'})")


def judge(value: float, threshold: float, direction: Direction) -> bool:
    """value >= threshold (or <=); never for NaN or infinity."""
    if not math.isfinite(value):
        return False
    return value >= threshold if direction == ">=" else value <= threshold


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a runner returns: the effect's value, a note written from the numbers, data to draw."""

    value: float
    note: str
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)     # tensors, arrays, curves, images
    figures: Mapping[str, float] = dataclasses.field(default_factory=dict)  # secondary numbers, for tables
    checks: tuple[Check, ...] = ()                                          # further bars, all must hold


@dataclasses.dataclass(frozen=True)
class LessonResult:
    """One run of a lesson: the effect measured against its bar, and what a page draws. Plain dicts
    and tensors / arrays, so it pickles (st.cache_data)."""

    slug: str
    number: int
    seed: int
    settings: Mapping[str, Any]
    effect: Effect
    threshold: float
    direction: Direction
    holds: bool
    seconds: float
    note: str
    data: Mapping[str, Any]
    figures: Mapping[str, float]
    checks: tuple[Check, ...] = ()

    @property
    def bar(self) -> str:
        return f"{self.direction} {format_value(self.threshold)}"


Runner = Callable[..., Outcome]


@dataclasses.dataclass(frozen=True)
class Lesson:
    """One course observation: what to see, where, and the measured bar that says it landed."""

    number: int                                   # course order, 1..13
    slug: str                                     # URL-safe: ?lesson=<slug>
    title: str
    see: str                                      # what the learner must see, one sentence
    page: str                                     # dashboard page file in dashboard/app_pages/, e.g. "conditional.py"
    effect: str = ""                              # name of the measured effect
    unit: str = ""
    threshold: float = math.nan                   # the bar the effect must clear
    direction: Direction = ">="                   # holds when value >= threshold (or <=)
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)   # the page's settings = runner defaults
    runner: Runner | None = None                  # runner(seed, **settings) -> Outcome; None: not yet built
    seeded: bool = True                           # repeating with another seed means something
    budget_s: float = 60.0                        # the most a run may take on a 2-core CPU

    def __post_init__(self) -> None:
        if not SLUG_RE.match(self.slug):
            raise ValueError(f"lesson slug {self.slug!r} is not URL-safe (lower-case words joined by '-')")
        if not 1 <= self.number <= 99:
            raise ValueError(f"lesson number must be 1..99, got {self.number}")
        if self.direction not in (">=", "<="):
            raise ValueError(f"direction must be '>=' or '<=', got {self.direction!r}")
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))

    @property
    def ready(self) -> bool:
        return self.runner is not None

    def judge(self, value: float) -> bool:
        return judge(value, self.threshold, self.direction)

    def merged_settings(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(overrides) - set(self.settings))
        if unknown:
            raise ValueError(f"lesson {self.slug!r}: unknown setting(s) {unknown}; known: {sorted(self.settings)}")
        return {**self.settings, **overrides}

    def run(self, seed: int = 0, **settings: Any) -> LessonResult:
        if self.runner is None:
            raise NotImplementedError(f"lesson {self.number} ({self.slug}) is not built yet")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        merged = self.merged_settings(settings)
        t0 = time.perf_counter()
        out = self.runner(seed, **merged)
        seconds = time.perf_counter() - t0
        value = float(out.value)
        checks = tuple(out.checks)
        holds = self.judge(value) and all(c.holds for c in checks)
        verdict = (f"Measured {format_value(value)}{(' ' + self.unit) if self.unit else ''} against the bar "
                   f"{self.direction} {format_value(self.threshold)}"
                   + "".join(f"; {c}" for c in checks)
                   + f": {'the effect holds' if holds else 'the effect does NOT hold in this run'}.")
        return LessonResult(slug=self.slug, number=self.number, seed=seed, settings=merged,
                            effect=Effect(self.effect, value, self.unit), threshold=self.threshold,
                            direction=self.direction, holds=holds, seconds=seconds,
                            note=f"{out.note.strip()} {verdict}", data=dict(out.data),
                            figures=dict(out.figures), checks=checks)


def format_value(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    if v != 0 and (abs(v) >= 1e4 or abs(v) < 1e-3):
        return f"{v:.3g}"
    return f"{v:.3f}".rstrip("0").rstrip(".") if abs(v) < 10 else f"{v:.1f}"


# Placeholders: lessons registered as data only until their module exists (none now: 4, 5 and 13
# are wgan_critic, fixed_noise and live_training).
PLACEHOLDERS: tuple[Lesson, ...] = ()

# Modules of this package that define LESSON (or LESSONS). Lessons 3, 8 and 9 are written by another
# helper; while such a module is absent, its lesson is simply not listed.
_MODULES = ("side_by_side", "conditional", "nonsaturating", "latent_clusters", "family_race",
            "posterior_collapse", "mode_collapse", "smooth_paths", "ood", "concepts", "wgan_critic", "fixed_noise",
            "live_training", "flow_lessons")


def _collect() -> tuple[tuple[Lesson, ...], dict[str, str]]:
    """Every module's lessons in course order, and the modules that failed to import (module -> error):
    one broken lesson module must not take the whole Lessons page down; bench/lessons.py reports
    LOAD_ERRORS and tests/test_lessons.py fails on them."""
    found: list[Lesson] = list(PLACEHOLDERS)
    errors: dict[str, str] = {}
    for name in _MODULES:
        full = f"{__name__}.{name}"
        try:
            mod = importlib.import_module(full)
        except ModuleNotFoundError as e:
            if e.name != full:
                errors[name] = f"{type(e).__name__}: {e}"
            continue
        except Exception as e:  # noqa: BLE001 - reported, see the docstring
            errors[name] = f"{type(e).__name__}: {e}"
            continue
        found.extend(getattr(mod, "LESSONS", ()) or (getattr(mod, "LESSON"),))
    numbers = [x.number for x in found]
    slugs = [x.slug for x in found]
    if len(set(numbers)) != len(numbers) or len(set(slugs)) != len(slugs):
        raise RuntimeError(f"lesson numbers and slugs must be unique: {sorted(zip(numbers, slugs))}")
    return tuple(sorted(found, key=lambda x: x.number)), errors


LESSONS: tuple[Lesson, ...]
LOAD_ERRORS: Mapping[str, str]
LESSONS, _errors = _collect()
LOAD_ERRORS = MappingProxyType(_errors)
BY_SLUG: Mapping[str, Lesson] = MappingProxyType({x.slug: x for x in LESSONS})


def lesson(slug: str) -> Lesson:
    """The lesson with this slug (as in a URL ``?lesson=<slug>``); a clear KeyError otherwise."""
    try:
        return BY_SLUG[slug]
    except (KeyError, TypeError):
        raise KeyError(f"no lesson {slug!r}; known: {', '.join(BY_SLUG)}") from None


__all__ = ["Direction", "Check", "judge", "Effect", "Outcome", "LessonResult", "Lesson", "Runner", "LESSONS", "BY_SLUG",
           "PLACEHOLDERS", "LOAD_ERRORS", "lesson", "format_value"]
