"""Virtual environments for the peers: one per peer under ``var/peers/<name>/``, created on first use with
pinned versions (``python -m venv`` + pip) and reused afterwards. These are benchmark-only dependencies: they
never enter the project's own environment (the peer's code runs in a subprocess of the venv's interpreter and
reports JSON on its last line of output).

A venv is reused when its marker file ``var/peers/<name>/.pins`` names the same pins; otherwise it is built
again from scratch. Building prints a progress line to stderr and records the seconds it took and the venv's
size (MB) in ``.pins``, which :func:`install_stats` reads back for the report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from flows.settings import REPO_ROOT

ROOT = REPO_ROOT / "var" / "peers"
SCRIPTS = Path(__file__).resolve().parent / "scripts"

#: the pinned packages of each peer (nautilus-trader 1.222 and later need Python >= 3.12; this interpreter is 3.11)
PINS: dict[str, tuple[str, ...]] = {
    "quix": ("quixstreams==3.28.1",),
    "nautilus": ("nautilus-trader==1.221.0",),
    "vectorbt": ("vectorbt==1.2.0",),
}


def _du_mb(path: Path) -> float:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total / 1e6


def _marker(name: str) -> Path:
    return ROOT / name / ".pins"


def python(name: str) -> Path:
    return ROOT / name / "bin" / "python"


def is_ready(name: str) -> bool:
    """True when the peer's venv exists with the current pins (no install needed)."""
    m = _marker(name)
    if not m.exists() or not python(name).exists():
        return False
    try:
        return json.loads(m.read_text()).get("pins") == list(PINS[name])
    except (OSError, ValueError):
        return False


def ensure(name: str) -> Path:
    """The interpreter of ``name``'s venv, building the venv first if it is missing or has other pins."""
    if name not in PINS:
        raise KeyError(f"unknown peer {name!r} (known: {', '.join(PINS)})")
    if is_ready(name):
        return python(name)
    d = ROOT / name
    if d.exists():
        shutil.rmtree(d)
    d.parent.mkdir(parents=True, exist_ok=True)
    pins = PINS[name]
    print(
        f"peers: installing {' '.join(pins)} into {d.relative_to(REPO_ROOT)} (first use only; "
        "a few minutes and a few hundred MB)...",
        file=sys.stderr,
        flush=True,
    )
    t = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(d)], check=True)
    res = subprocess.run(
        [str(python(name)), "-m", "pip", "install", "--disable-pip-version-check", "-q", *pins],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"installing {' '.join(pins)} failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
    secs = time.monotonic() - t
    mb = _du_mb(d)
    _marker(name).write_text(json.dumps({"pins": list(pins), "install_s": secs, "size_mb": mb}))
    print(f"peers: {name} ready in {secs:.0f} s, {mb:.0f} MB", file=sys.stderr, flush=True)
    return python(name)


def install_stats(name: str) -> dict[str, float]:
    """Seconds the venv took to build and its size (MB), as recorded when it was built (empty if not built)."""
    try:
        got = json.loads(_marker(name).read_text())
    except (OSError, ValueError):
        return {}
    return {f"{name}_install_s": float(got["install_s"]), f"{name}_venv_mb": float(got["size_mb"])}


def run_script(name: str, script: str, args: list[str], timeout: float = 1800.0) -> dict:
    """Run ``scripts/<script>`` with the peer's interpreter (venv built on first use); the JSON of its last line."""
    py = ensure(name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    res = subprocess.run(
        [str(py), str(SCRIPTS / script), *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if res.returncode != 0:
        raise RuntimeError(f"peer {name} ({script}) failed:\n{res.stderr[-4000:]}")
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    if not lines:
        raise RuntimeError(f"peer {name} ({script}) printed nothing:\n{res.stderr[-2000:]}")
    return json.loads(lines[-1])
