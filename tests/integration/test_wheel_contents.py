"""The wheel a user installs with ``pip install .`` is the whole product: the
``stunlike_tracker`` package with its browser page (served at /peer/), and
nothing from tests/, bench/ or the lab's agent scripts."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_holds_the_package_and_its_browser_page(tmp_path: Path) -> None:
    # Built from a copy: setuptools leaves build/ and *.egg-info beside the
    # sources, and a stale build/ would hide a missing package-data entry.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "stunlike_tracker",
        source / "stunlike_tracker",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    out = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = out.glob("stunlike_tracker-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.split("/")[0] for n in names}
    assert {n for n in shipped if not n.endswith(".dist-info")} == {"stunlike_tracker"}
    page = {Path(n).name for n in names if n.startswith("stunlike_tracker/http/static/peer/")}
    on_disk = {
        p.name for p in (ROOT / "stunlike_tracker/http/static/peer").iterdir() if p.is_file()
    }
    assert on_disk and page == on_disk
    assert "stunlike_tracker/py.typed" in names
