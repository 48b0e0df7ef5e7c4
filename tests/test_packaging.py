"""The wheel a reader installs (on Colab, say) holds every module and data file bertlab needs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def modules() -> list[str]:
    names = []
    for path in sorted((ROOT / "bertlab").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.slow
def test_wheel_installs_and_imports_without_the_source_tree(tmp_path):
    # build from a copy, so the checkout gets no build/ folder
    source = tmp_path / "source"
    shutil.copytree(
        ROOT / "bertlab", source / "bertlab", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    (wheel,) = wheels.glob("bertlab-*.whl")
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=300)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # bertlab's dependencies (torch, ...) come from this environment's site-packages, put on
    # PYTHONPATH, where .pth files (the editable install of the checkout) are not read
    deps = sysconfig.get_paths()["purelib"]
    check = f"""
import importlib, pathlib, sys
import bertlab
where = pathlib.Path(bertlab.__file__).resolve()
assert str(where).startswith({str(env_dir.resolve())!r}), where
for name in {modules()!r}:
    importlib.import_module(name)
from bertlab import data, viz
assert "wikitext-2" in data.names(), data.names()
html = viz.param_counter().data
assert "bertlabCount" in html
print("ok", where)
"""
    done = subprocess.run(
        [str(python), "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": deps, "PYTHONNOUSERSITE": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok ")
