"""Lessons: the course's 13 observations in course order, each a seeded one-click experiment with the
measured number that proves its effect (``genlib.lessons``). ``?lesson=<slug>`` opens one directly
(a bookmark for a lecture); "Open in <page>" takes its settings to the page that explores it."""
from __future__ import annotations

from typing import Any

import streamlit as st
import torch

import genlib
from dashboard import context, figures, images, lesson_figures, session, ui
from genlib.lessons import BY_SLUG, LESSONS, Effect, Lesson, LessonResult, format_value
from genlib.lessons import live_training

# Settings a page may run a lesson with instead of the lesson's own (tests: cheap ones), per slug.
OVERRIDES_KEY = "genlib_lesson_settings"
PAGE_TITLES = {"overview.py": "Overview / compare", "train.py": "Train live",
               "conditional.py": "Conditional generation", "latent.py": "Latent space",
               "interpolate.py": "Interpolate & traverse", "ood.py": "Out-of-distribution",
               "mode_collapse.py": "Mode collapse lab"}

ctx = context.context()
q = st.query_params


def open_lesson(slug: str | None) -> None:
    """Show lesson ``slug`` (None: the list); the other query parameters stay as they are."""
    if slug is None:
        if "lesson" in st.query_params:
            del st.query_params["lesson"]
    else:
        st.query_params["lesson"] = slug


def overrides(x: Lesson) -> dict[str, Any]:
    return dict((st.session_state.get(OVERRIDES_KEY) or {}).get(x.slug, {}))


# --- "Open in <page>": the page's own widgets, set to the lesson's settings --------------------------
def handoff(x: Lesson, r: LessonResult | None, seed: int) -> dict[str, Any]:
    """Session-state values that load the lesson's settings into its page's widgets (only widgets the
    page has, with values they offer): dataset and model in the sidebar, class, seed, toy, loss…"""
    s = dict(r.settings) if r is not None else dict(x.settings)
    data = r.data if r is not None else {}
    ds = data.get("dataset") or data.get("race_dataset") or s.get("dataset")
    out: dict[str, Any] = {}
    model = {"all-eights": "cgan", "smooth-interpolation": "cgan", "ood-latents": s.get("model", "gan"),
             "latent-clusters": "vae-2d", "concept-vectors": "conv-vae",
             "vae-blurry-gan-sharp": "dcgan"}.get(x.slug)
    if ds in genlib.DATASETS and ds != "folder":
        out["dataset"] = ds
        if model is not None:
            name = "digits-vae" if (ds, model) == ("digits", "conv-vae") else f"{ds}-{model}"
            out[context.model_key(ds)] = f"{name} (pretrained)"
    if x.slug == "all-eights":
        out[ui.wkey("cond_class", ds)] = int(s["cls"])
        out["cond_seed"] = seed
    elif x.slug == "ood-latents":
        out["ood_kind"] = s["kind"]
        for p, v in (s.get("params") or {}).items():
            out[f"ood_{s['kind']}_{p}"] = float(v)
        out["ood_seed"] = seed
    elif x.slug in ("mode-collapse", "nonsaturating-vs-minimax"):
        out["dataset"] = s["toy"]
        out["mc_toy"] = s["toy"]
        out["mc_steps"] = 1000
        if x.slug == "nonsaturating-vs-minimax":
            out["mc_loss"] = "minimax"
    elif x.slug in ("vae-blurry-gan-sharp", "family-race"):
        out["ov_seed"] = seed
    elif x.slug == "critic-tracks-quality":
        out["tr_preset"] = "wgan-gp"
    elif x.slug == "train-from-scratch":
        out["tr_preset"] = live_training.PRESET
        run = st.session_state.get("lesson_live_run")
        if run:
            out["tr_run"] = run
    return out


def go_to_page(values: dict[str, Any]) -> None:
    for k, v in values.items():
        st.session_state[k] = v


# --- lesson 13: the live run -------------------------------------------------------------------------
def live_lesson(x: Lesson, seed: int) -> LessonResult | None:
    """The Train page's GAN preset trained here as a session run (it also shows on the Train page):
    loss curves and the newest grid update while it trains, pause / step / resume, and after the
    budget the same measurement as ``genlib.lessons.live_training.run``."""
    s = x.merged_settings(overrides(x))
    runs = session.session_runs()
    run = runs.runs.get(st.session_state.get("lesson_live_run", ""))
    try:
        name = live_training.C.pick_dataset(s["dataset"], live_training.models_for)
    except live_training.C.MissingAsset as e:
        st.warning(str(e))
        return None
    if run is None or not run.alive:
        label = "Start training from scratch" if run is None else "Train a new one from scratch"
        busy = runs.start_problem()            # per-session limits (session.MAX_RUNS_AT_ONCE, SESSION_MB)
        if busy:
            st.warning(f"Start is off: {busy}")
        if st.button(f"{label} ({s['budget_s']:g} s on {name})", type="primary", key="lesson_live_start",
                     disabled=bool(busy), help=busy):
            data = context.dataset(name)
            torch.manual_seed(seed)
            model = genlib.make_model(live_training.PRESET, data)
            cfg = genlib.TrainConfig(**live_training.train_config(seed, int(s["batch_size"]), float(s["budget_s"]),
                                                                  threads=0))
            try:                               # in the server's pool, as the Train page's runs
                run = session.start_run(runs, live_training.PRESET, name, model, data, cfg, ctx.device,
                                        label=f"{live_training.PRESET} · {name} · lesson 13")
            except (session.LimitError, session.PoolLimitError) as e:
                st.error(str(e))
                return None
            st.session_state["lesson_live_run"] = run.name
            st.rerun()                         # draw the controls of a running run
    if run is None:
        st.info(f"Press the button: a vanilla MLP GAN starts from random weights and trains for {s['budget_s']:g} s "
                f"on {name}; its loss curves and newest samples update as it goes. Afterwards the classifier reads "
                f"{int(s['n']):,} of its samples.")
        return None
    phase = run.phase
    snap = run.snapshot()
    b = st.columns(4)
    b[0].button("Pause", on_click=run.pause, disabled=phase != "running", key="lesson_live_pause")
    b[1].button("Resume", on_click=run.start, disabled=phase == "running" or snap.state in ("done", "error"),
                key="lesson_live_resume")
    b[2].button("Step once", on_click=run.step_once, disabled=phase == "running" or snap.state == "error",
                key="lesson_live_step")
    b[3].button("Stop", on_click=run.stop, disabled=phase == "ended", key="lesson_live_stop")

    @st.fragment(run_every=ui.LIVE_REFRESH_S if phase != "ended" else None)
    def live(drawn: str) -> None:
        snap = run.snapshot()
        budget = float(s["budget_s"])
        st.progress(min(1.0, snap.elapsed / budget),
                    text=ui.progress_text(snap) if snap.state in ("queued", "starting") else  # its place, its wait
                    f"{snap.state} · step {snap.step:,} · {snap.elapsed:.0f} s of {budget:g} s trained · "
                    f"{snap.images_per_s:,.0f} examples/s")
        left, right = st.columns([3, 2])
        left.plotly_chart(ui.memo("lesson_live_loss", (run.name, len(snap.history.get("step", [])),
                                                       (snap.history.get("step") or [None])[-1]),
                                  lambda: figures.loss_figure(snap.history, "gan", "nonsaturating")),
                          key=f"lesson_live_loss@{run.name}")
        if snap.samples:
            step, grid = snap.samples[-1]
            right.image(ui.memo("lesson_live_grid", (run.name, step), lambda: images.png_bytes(
                images.image_grid(grid, nrow=8, min_side=ui.grid_px(320, 640)))),
                caption=f"The newest grid: the same {len(grid)} noise vectors at step {step:,}")
        if run.phase != drawn:
            st.rerun()

    live(phase)
    if run.alive:
        return None
    model = run.frozen_model()
    m = ui.memo("lesson_live_measure", (run.name, model.steps, seed, int(s["n"])),
                lambda: live_training.measure(model, name, int(s["n"]), seed))
    snap = run.snapshot()
    k = run.trainer.data.num_classes
    checks = live_training.checks(m)
    holds = x.judge(m["confidence"]) and all(c.holds for c in checks)
    note = live_training.describe(name, snap.step, snap.elapsed, m, k, seed)
    return LessonResult(slug=x.slug, number=x.number, seed=seed, settings=s,
                        effect=Effect(x.effect, m["confidence"], x.unit), threshold=x.threshold,
                        direction=x.direction, holds=holds, seconds=snap.elapsed, note=note,
                        data={"grid": m["grid"], "dataset": name},
                        figures={"confidence": m["confidence"], "classes": m["classes"], "steps": snap.step},
                        checks=checks)


# --- the page ----------------------------------------------------------------------------------------
def verdict(x: Lesson, r: LessonResult) -> None:
    main = x.judge(r.effect.value)
    st.metric(r.effect.name or "measured effect", f"{format_value(r.effect.value)}{(' ' + x.unit) if x.unit else ''}",
              delta=f"bar {r.bar}: {'holds' if main else 'does not hold'}", delta_color="normal" if main else "inverse")
    for c in r.checks:
        mark = ":green[:material/check_circle:]" if c.holds else ":red[:material/cancel:]"
        st.markdown(f"{mark} {c.name} = **{format_value(c.value)}**{(' ' + c.unit) if c.unit else ''} "
                    f"(bar {c.direction} {format_value(c.threshold)})")
    if r.holds:
        st.success("The effect holds in this run.")
    else:
        st.warning("The effect does NOT hold in this run (the numbers above say which bar it misses).")
    st.caption(f"seed {r.seed} · {r.seconds:.1f} s")


def lesson_list(current: str | None) -> None:
    for x in LESSONS:
        c = st.columns([1, 12, 2])
        c[0].markdown(f"**{x.number}**")
        c[1].markdown(f"**{x.title}**  \n{x.see}" if current is None else f"{x.title}")
        c[2].button("Open" if x.slug != current else "Open ✓", key=f"lesson_open_{x.slug}", on_click=open_lesson,
                    args=(x.slug,), disabled=x.slug == current, type="primary" if current is None else "secondary")


st.title("Lessons")
slug = q.get("lesson")
if slug is not None and slug not in BY_SLUG:
    st.warning(f"There is no lesson “{slug}” (from the link). Pick one below.")
    slug = None
if slug is None:
    ui.explain("""
Each lesson is one experiment of the course, seeded so it gives the same result in a rehearsal and in
class, with the number that shows its effect and the bar that number must clear. **Open** runs it
(the first time: up to a minute; then it is kept) and shows what to look at beside the measurement.
**Open in …** takes its settings to the page where you can explore further. A lesson's link (the
address bar, `?lesson=…`) opens it directly: bookmark it for a lecture.
""", "How the lessons work")
    lesson_list(None)
    st.stop()

x = BY_SLUG[slug]
top = st.columns([1, 6])
top[0].button("← All lessons", on_click=open_lesson, args=(None,), key="lesson_back")
st.header(f"Lesson {x.number}: {x.title}")
st.markdown(f"**What to see.** {x.see}")
st.caption(f"Bookmark this lesson: the Lessons page with `?lesson={x.slug}` (the address bar has it now).")
c = st.columns([1, 1, 4])
seed = int(c[0].number_input("Seed", 0, 1_000_000, 0, key=ui.wkey("lesson_seed", x.slug), disabled=not x.seeded,
                             help="The same seed gives the same result; another seed repeats the experiment."
                             if x.seeded else "This lesson replays what was recorded: there is nothing to seed."))

if x.slug == "train-from-scratch":
    result = live_lesson(x, seed)
else:
    try:
        result = lesson_figures.run_with_progress(x.slug, seed, overrides(x), f"Running lesson {x.number}")
    except Exception as e:  # noqa: BLE001 - a lesson that cannot run says why, the page stays up
        st.error(f"Lesson {x.number} could not run: {type(e).__name__}: {e}")
        result = None

if result is not None:
    view, side = st.columns([3, 1]) if not ctx.present else (st.container(), st.container())
    with side:
        verdict(x, result)
    with view:
        if x.slug != "train-from-scratch":
            lesson_figures.VIEWS.get(x.slug, lesson_figures.generic_view)(result)
        else:
            lesson_figures.grid_image(result.data["grid"], 5, f"25 of the {int(result.settings['n']):,} samples "
                                      "the classifier read")
    st.markdown(f"**In plain words.** {result.note}")

page_title = PAGE_TITLES.get(x.page) or x.page.removesuffix(".py").replace("_", " ").capitalize()
if st.button(f"Open in {page_title}", key="lesson_handoff", on_click=go_to_page,
             args=(handoff(x, result, seed),)):
    open_lesson(None)
    st.switch_page(f"app_pages/{x.page}")

st.divider()
with st.expander("All lessons"):
    lesson_list(x.slug)
