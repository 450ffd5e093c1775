"""Latency: what a student waits for. App cold start to first render, page switches, sampling 64
images from each pretrained model, t-SNE of 2,000 latents, one genlib.metrics.evaluate of 5k samples.

    python bench/latency.py [--starts 2] [--rounds 2] [--repeats 20] [--tsne-n 2000] [--eval-n 5000]
                            [--device auto] [--skip-browser] [--only-cold] [--breakdown N]

- Where a cold start goes (--breakdown N: N fresh processes, median): import streamlit, torch,
  genlib, the dashboard modules; the default dataset chosen and loaded; its pretrained checkpoints
  loaded (the first one also pays torch's lazy imports, see dashboard/startup.py); the Overview's
  first figures (25 samples per model as PNG grids). The same steps the first page run takes, in
  one process, without the server and the browser.

- Cold start: from launching `python -m streamlit run dashboard/app.py --server.headless true` until
  the default page's main content is visible in headless chromium (Playwright, Debian's
  /usr/bin/chromium, already open): its first heading, and its first script run finished. Also the
  time until the HTTP health endpoint /_stcore/health answers. Without chromium or playwright only
  the health time is measured, and the output says so.
- Page switch: click each page in the sidebar; time until the new page's heading is there and its
  script run has finished. Round 1 is each page's first visit in the session, later rounds are
  revisits.
- Sampling: model.sample(64) of every pretrained/*.pt on --device, median of --repeats after 2
  warm-up calls, synchronised on CUDA.
- t-SNE: genlib.latent.project_2d(z, 'tsne') of --tsne-n latents (cache off; genlib's default
  threads): posterior means of real images under a pretrained VAE with a latent of more than 2
  dimensions when its dataset has that many images, else bench/tsne.py's 20-D mixture of 10 Gaussians.
- evaluate: genlib.metrics.evaluate(model, 'mnist', n=--eval-n) of a pretrained MNIST GAN (else an
  untrained dcgan; the time hardly depends on training), first call (classifier and reference
  statistics loaded) and second call (cached).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import (CHROMIUM, REPO, free_port, machine, median, start_streamlit, stop_process, sync,
                    wait_healthy)

import genlib
import torch

TARGET_SAMPLE_MS, TARGET_TSNE_S, TARGET_COLD_S = 50.0, 10.0, 5.0
SHOTS = REPO / "artifacts" / "bench"


def have_browser() -> str:
    """'' when chromium and playwright are here, else why not."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install playwright)"
    return "" if Path(CHROMIUM).is_file() else f"no chromium at {CHROMIUM} (set $CHROMIUM)"


# --- the app in a browser -------------------------------------------------------------------------

HEADING_JS = """() => { const h = document.querySelector('[data-testid="stMain"] h1');
                        return h ? h.innerText.trim() : ''; }"""
SETTLED_JS = """([old]) => { const h = document.querySelector('[data-testid="stMain"] h1');
    const app = document.querySelector('[data-testid="stApp"]');
    return !!h && h.innerText.trim() !== '' && h.innerText.trim() !== old
           && app && app.getAttribute('data-test-script-state') === 'notRunning'; }"""


LAUNCHERS = {"module": ["-m", "dashboard"], "streamlit": ["-m", "streamlit"]}


def browser_latency(starts: int, rounds: int, work: Path, launcher: str = "module") -> dict:
    """Cold starts (each a fresh server) and, on the last server, page switches. ``launcher``:
    'module' = ``python -m dashboard`` (imports torch while the server starts: dashboard/__main__.py),
    'streamlit' = ``python -m streamlit run dashboard/app.py``."""
    from playwright.sync_api import sync_playwright

    out: dict = {"cold": [], "switch": {}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto("about:blank")
        for i in range(starts):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            t0 = time.perf_counter()
            proc = start_streamlit(port, work / f"server-{i}.log", launcher=LAUNCHERS[launcher])
            try:
                t_health = wait_healthy(url, proc) - t0
                page.goto(url)
                page.locator('[data-testid="stMain"] h1').first.wait_for(state="visible", timeout=120_000)
                t_heading = time.perf_counter() - t0
                page.wait_for_function(SETTLED_JS, arg=[""], timeout=120_000, polling=20)
                t_done = time.perf_counter() - t0
                out["cold"].append((t_health, t_heading, t_done, page.evaluate(HEADING_JS)))
                if i == starts - 1:
                    out["switch"] = page_switches(page, rounds)
            except Exception:
                SHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SHOTS / "latency-failure.png"))
                raise
            finally:
                stop_process(proc)
        browser.close()
    return out


def page_switches(page, rounds: int) -> dict[str, list[float]]:
    links = page.locator('[data-testid="stSidebarNav"] a')
    # a link's text is its icon's ligature name, then the title: keep the last line
    titles = [links.nth(i).inner_text().strip().splitlines()[-1].strip() for i in range(links.count())]
    times: dict[str, list[float]] = {t: [] for t in titles}
    order = list(range(1, len(titles))) + [0]    # the app opens on the first page: visit the others first
    for _ in range(rounds):
        for i in order:
            old = page.evaluate(HEADING_JS)
            t = time.perf_counter()
            links.nth(i).click()
            page.wait_for_function(SETTLED_JS, arg=[old], timeout=120_000, polling=20)
            times[titles[i]].append(time.perf_counter() - t)
    return times


BREAKDOWN = r"""
import json, sys, time
t0 = time.perf_counter(); marks = []
def mark(what): marks.append((what, time.perf_counter()))
import streamlit; mark("import streamlit")
import torch; mark("import torch")
import genlib; mark("import genlib")
from dashboard import startup; skipped = startup.skip_dynamo_marking() if "--keep-dynamo" not in sys.argv else []
from dashboard import context, figures, images, sidebar, ui; mark("import dashboard (plotly)")
name = context.default_dataset(); data = genlib.load_dataset(name, download=False); mark("default dataset loaded")
from genlib.pretrained import list_pretrained
ckpts = [genlib.load_checkpoint(e.path) for e in list_pretrained(name)]; mark("pretrained checkpoints loaded")
for c in ckpts: images.png_bytes(images.image_grid(ui.draw(c.model, 25, 0), nrow=5))
mark("first figures (grids)")
print(json.dumps({"dataset": name, "models": len(ckpts), "steps": [(w, t - t0) for w, t in marks]}))
"""


def startup_breakdown(runs: int, keep_dynamo: bool = False) -> tuple[str, int, list[tuple[str, float]]]:
    """(dataset, models, [(step, median seconds)]) over ``runs`` fresh processes (``BREAKDOWN``)."""
    import json
    import subprocess
    import sys

    per: list[list[tuple[str, float]]] = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", BREAKDOWN] + (["--keep-dynamo"] if keep_dynamo else []),
                             cwd=REPO, capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
        res = json.loads(out.stdout.strip().splitlines()[-1])
        marks = res["steps"]
        per.append([(w, t - (marks[i - 1][1] if i else 0.0)) for i, (w, t) in enumerate(marks)])
    steps = [(w, median([run[i][1] for run in per])) for i, (w, _) in enumerate(per[0])]
    return res["dataset"], res["models"], steps


def health_only(starts: int, work: Path) -> list[float]:
    out = []
    for i in range(starts):
        port = free_port()
        t0 = time.perf_counter()
        proc = start_streamlit(port, work / f"server-{i}.log")
        try:
            out.append(wait_healthy(f"http://127.0.0.1:{port}", proc) - t0)
        finally:
            stop_process(proc)
    return out


# --- models ---------------------------------------------------------------------------------------

def pretrained(device) -> list[tuple[str, object]]:
    """(name, Checkpoint or the error text) of every pretrained/*.pt, sorted by name."""
    out = []
    for path in sorted((REPO / "pretrained").glob("*.pt")):
        try:
            out.append((path.stem, genlib.load_checkpoint(path, device=device)))
        except genlib.CheckpointError as e:
            out.append((path.stem, f"unreadable: {e}"))
    return out


@torch.no_grad()
def sample_ms(model, n: int, repeats: int, device) -> float:
    model.eval()
    times = []
    for i in range(repeats + 2):
        sync(device)
        t = time.perf_counter()
        model.sample(n)
        sync(device)
        if i >= 2:
            times.append(1000 * (time.perf_counter() - t))
    return median(times)


def tsne_latents(ckpts, n: int) -> tuple[torch.Tensor, str]:
    from genlib.latent import encode_dataset

    for name, c in ckpts:
        if isinstance(c, str) or not c.model.supports(genlib.models.ENCODER) or c.model.config.latent_dim <= 2:
            continue
        try:
            data = genlib.load_dataset(c.card.get("dataset", ""), split="test", download=False)
        except (genlib.DataNotFoundError, ValueError):
            continue
        if len(data) >= n:
            z, _, _ = encode_dataset(c.model.cpu(), data, n=n)
            return z, f"posterior means of {n:,} {data.name} {data.split} images under pretrained/{name}.pt " \
                      f"({z.shape[1]}-D)"
    from tsne import mixture

    return torch.from_numpy(mixture(n, 20)), f"{n:,} points of bench/tsne.py's 20-D mixture of 10 Gaussians " \
                                              "(no pretrained VAE with that many images)"


def eval_model(ckpts, device) -> tuple[object, str]:
    mnist = [(n, c) for n, c in ckpts if not isinstance(c, str) and c.card.get("dataset") == "mnist"]
    mnist.sort(key=lambda nc: (nc[1].model.family != "gan", bool(getattr(nc[1].model.config, "conditional", False))))
    if mnist:
        return mnist[0][1].model.to(device), f"pretrained/{mnist[0][0]}.pt"
    data = genlib.load_dataset("mnist", download=False)
    return genlib.make_model("dcgan", data).to(device), "an untrained dcgan (no pretrained MNIST model)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--starts", type=int, default=2, help="cold starts (a fresh server each)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds over every page")
    ap.add_argument("--repeats", type=int, default=20, help="sampling repeats per model")
    ap.add_argument("--tsne-n", type=int, default=2000)
    ap.add_argument("--eval-n", type=int, default=5000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--skip-browser", action="store_true", help="no app start / page switches")
    ap.add_argument("--launcher", choices=sorted(LAUNCHERS), default="module",
                    help="module: python -m dashboard (the README's command); streamlit: streamlit run dashboard/app.py")
    ap.add_argument("--only-cold", action="store_true", help="only the app's cold start (and --breakdown)")
    ap.add_argument("--breakdown", type=int, default=0, metavar="N",
                    help="where a cold start goes: N fresh processes, median per step")
    args = ap.parse_args()
    device = genlib.pick_device(args.device)
    t_start = time.perf_counter()
    threads = genlib.configure_threads()
    print(machine(device, f"torch threads for sampling, t-SNE and evaluate: {threads} (genlib's default)"))

    # 1. the app (it is measured first, on an otherwise idle process)
    if not args.skip_browser:
        with tempfile.TemporaryDirectory(prefix="genlib-bench-") as tmp:
            why = have_browser()
            if why:
                print(f"\n# app cold start, HTTP health endpoint ONLY ({why}): launch of `streamlit run "
                      "dashboard/app.py` until /_stcore/health answers; no page switch times")
                cold = health_only(args.starts, Path(tmp))
                print(f"{'start':>5} {'health s':>9} {'target':>8}")
                for i, h in enumerate(cold, 1):
                    print(f"{i:>5} {h:>9.2f} {'<= ' + format(TARGET_COLD_S, 'g'):>8}")
            else:
                res = browser_latency(args.starts, args.rounds, Path(tmp), args.launcher)
                command = {"module": "python -m dashboard", "streamlit": "streamlit run dashboard/app.py"}[args.launcher]
                print(f"\n# app cold start: launch of `{command}` until, in headless chromium, "
                      "the first page's heading shows / its first script run has finished (health: /_stcore/health)")
                print(f"{'start':>5} {'health s':>9} {'heading s':>10} {'rendered s':>11} {'target':>8}  page")
                for i, (h, hd, done, title) in enumerate(res["cold"], 1):
                    print(f"{i:>5} {h:>9.2f} {hd:>10.2f} {done:>11.2f} {'<= ' + format(TARGET_COLD_S, 'g'):>8}  "
                          f"{title}  {'(met)' if done <= TARGET_COLD_S else '(missed)'}")
                print("\n# page switch: click in the sidebar until the page's heading is there and its run finished, "
                      "s; round 1 = first visit")
                print(f"{'page':<26} " + " ".join(f"{'round ' + str(r + 1):>8}" for r in range(args.rounds)))
                for title, ts in res["switch"].items():
                    print(f"{title:<26} " + " ".join(f"{t:>8.2f}" for t in ts))

    if args.breakdown:
        for keep in (False, True):
            name, k, steps = startup_breakdown(args.breakdown, keep_dynamo=keep)
            print(f"\n# where the first page's work goes, one fresh process each, median of {args.breakdown}"
                  + (" (torch's lazy _dynamo import left in, GENLIB_DASHBOARD_KEEP_DYNAMO)" if keep else
                     " (as the app runs: dashboard/startup.py)"))
            print(f"{'step':<32} {'s':>6} {'cumulative':>11}")
            total = 0.0
            for w, t in steps:
                total += t
                print(f"{w:<32} {t:>6.2f} {total:>11.2f}")
            print(f"(default dataset {name}, {k} pretrained models)")
    if args.only_cold:
        return

    # 2. sampling
    ckpts = pretrained(device)
    print(f"\n# sampling 64 images: model.sample(64) on {device}, median of {args.repeats} after 2 warm-up calls")
    print(f"{'model':<22} {'dataset':<14} {'family':<6} {'ms':>8} {'target':>8}")
    for name, c in ckpts:
        if isinstance(c, str):
            print(f"{name:<22} {c}")
            continue
        ms = sample_ms(c.model, 64, args.repeats, device)
        print(f"{name:<22} {c.card.get('dataset', '?'):<14} {c.model.family:<6} {ms:>8.1f} "
              f"{'<= ' + format(TARGET_SAMPLE_MS, 'g'):>8}  {'(met)' if ms <= TARGET_SAMPLE_MS else '(missed)'}",
              flush=True)
    if not ckpts:
        print("(no pretrained/*.pt)")

    # 3. t-SNE
    from genlib.latent import project_2d

    z, what = tsne_latents(ckpts, args.tsne_n)
    t = time.perf_counter()
    project_2d(z, "tsne", cache=None)
    tsne_s = time.perf_counter() - t
    print(f"\n# t-SNE: genlib.latent.project_2d(z, 'tsne', cache=None) of {what}")
    print(f"{'points':>6} {'dims':>4} {'seconds':>8} {'target':>8}")
    print(f"{len(z):>6} {z.shape[1]:>4} {tsne_s:>8.2f} {'<= ' + format(TARGET_TSNE_S, 'g'):>8}  "
          f"{'(met)' if tsne_s <= TARGET_TSNE_S else '(missed)'}", flush=True)

    # 4. evaluate
    from genlib import metrics

    model, what = eval_model(ckpts, device)
    print(f"\n# genlib.metrics.evaluate(model, 'mnist', n={args.eval_n}) of {what} on {device}: every metric "
          f"(classifier-FID (not Inception FID), KID, IS, coverage, PRDC...)")
    print(f"{'call':<31} {'seconds':>8} {'of which sampling':>18}")
    for call in ("first (loads, reference stats)", "second (cached)"):
        t = time.perf_counter()
        r = metrics.evaluate(model, "mnist", n=args.eval_n)
        sync(device)
        print(f"{call:<31} {time.perf_counter() - t:>8.2f} {r.get('sample_seconds', float('nan')):>18.2f}", flush=True)
    print(f"\n# total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
