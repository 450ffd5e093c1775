"""The Dockerfile, checked without a container engine (none here): it is parsed, and the steps that can
run on this machine do: the runtime requirements it installs resolve against what is installed, its
import check passes, the files it copies exist and are not dropped by .dockerignore, and its CMD
names the dashboard's entry with the server flags."""
from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    out, buf = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line.rstrip()
        if buf.endswith("\\"):
            buf = buf[:-1] + " "
            continue
        op, _, args = buf.strip().partition(" ")
        out.append((op.upper(), args.strip()))
        buf = ""
    return out


def _one(op: str) -> str:
    found = [a for o, a in instructions() if o == op]
    assert len(found) == 1, f"expected one {op}, found {found}"
    return found[0]


def test_base_image_and_variants():
    assert _one("FROM") == "python:3.11-slim"
    assert _one("ARG") == "TORCH_INDEX=https://download.pytorch.org/whl/cpu"
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"--build-arg TORCH_INDEX=https://download\.pytorch\.org/whl/cu\d+", text)   # the CUDA variant
    assert "--gpus all" in text


def _run_steps() -> list[str]:
    return [a for o, a in instructions() if o == "RUN"]


def test_the_runtime_requirements_resolve_here():
    """The image installs torch from the variant's index, then requirements.txt up to '# tests':
    run that same sed command, and check each line against the installed distributions."""
    install = _run_steps()[0]
    sed = next(part.strip() for part in install.split("&&") if part.strip().startswith("sed "))
    cmd = shlex.split(sed.split(">")[0])
    runtime = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    reqs = [Requirement(line.split("#")[0].strip()) for line in runtime.splitlines() if line.split("#")[0].strip()]
    names = {r.name for r in reqs}
    assert {"streamlit", "plotly", "numpy"} <= names and not names & {"pytest", "playwright"}
    for r in reqs + [Requirement(s) for s in re.findall(r'"((?:torch|torchvision)[^"]*)"', install)]:
        version = metadata.version(r.name)
        assert r.specifier.contains(version, prereleases=True), f"{r} not met by the installed {version}"


def test_the_import_check_passes_here():
    check = next(a for a in _run_steps() if a.startswith("python -c"))
    code = shlex.split(check)[2]
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]


def _ignored(path: str) -> bool:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    parts = Path(path).parts
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(parts[0], p) or
               (p.startswith("**/") and any(fnmatch.fnmatch(q, p[3:]) for q in parts)) for p in patterns)


def test_copied_files_exist_and_reach_the_build():
    copies = [a.split() for o, a in instructions() if o == "COPY"]
    sources = [s for args in copies for s in args[:-1]]
    assert {"genlib", "dashboard", "requirements.txt", ".streamlit"} <= set(sources)
    for s in sources:
        assert (ROOT / s).exists(), s
        assert not _ignored(s), f"{s} is copied but .dockerignore drops it"
    for needed in ("dashboard/app.py", "genlib/cli.py", "pretrained", ".streamlit/config.toml"):
        assert not _ignored(needed), needed
    for heavy in (".git", "artifacts", "tests/test_pool.py", "genlib/__pycache__/x.pyc"):
        assert _ignored(heavy), heavy


def test_cmd_serves_the_dashboard_on_all_interfaces():
    cmd = json.loads(_one("CMD"))                        # exec form: signals reach streamlit
    assert cmd[:3] == ["streamlit", "run", "dashboard/app.py"]
    assert cmd[cmd.index("--server.address") + 1] == "0.0.0.0"
    port = cmd[cmd.index("--server.port") + 1]
    assert _one("EXPOSE") == port
    assert (ROOT / cmd[2]).is_file()
    assert f"localhost:{port}/_stcore/health" in _one("HEALTHCHECK")
    import streamlit  # noqa: F401  (the entry point the CMD runs is installed)
