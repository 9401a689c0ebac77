"""A built wheel carries the migrations and the report templates, and works outside the repo."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # builds take turns (pytest-xdist workers, other runs in this checkout): they share its
    # build/ and egg-info
    with open(ROOT / "setup.cfg", "rb") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX)
        subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
            check=True,
            capture_output=True,
        )
    return next(out.glob("riskreg-*.whl"))


def test_wheel_contains_templates_and_migrations(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {"riskreg/" + str(p.relative_to(ROOT)) for p in (ROOT / "templates").rglob("*.j2")}
    assert templates
    assert templates <= names
    assert {
        "riskreg/migrations/env.py",
        "riskreg/migrations/script.py.mako",
        "riskreg/migrations/versions/0001_initial.py",
    } <= names


def test_installed_wheel_runs_outside_the_repo(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    # no pip of its own (seeding one takes 3 s): this environment's pip installs into it; and
    # compiles nothing ahead (6 s, mostly scipy's modules the demo never imports): the demo's
    # first commands compile what it uses (see _outside_the_repo)
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-compile"]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True)
    env = _outside_the_repo(env_dir)

    def run(*args: str) -> str:
        command = [str(env_dir / "bin" / "riskreg"), "--db", f"sqlite:///{tmp_path}/w.db", *args]
        return subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, check=True
        ).stdout

    assert run("init").startswith("created a register at ")
    assert run(
        "risk",
        "add",
        "Installed",
        "--side",
        "shared",
        "--mode",
        "design",
        "--likelihood",
        "2",
        "--impact",
        "2",
    ).startswith("added R-1")
    verified = run("audit", "verify").splitlines()
    assert verified[0] == "audit chain intact: 1 event"
    assert re.fullmatch(r"head: RR-1-[0-9a-f]{12} \(event 1, hash [0-9a-f]{64}\)", verified[1])
    assert verified[2:] == [
        "register matches the trail: 1 risk, 0 controls, 0 pilots, 0 data files",
        "and so do 0 protocol texts, 0 risk links, 0 gate decisions, 0 reviews, 0 evidence records",
    ]
    _run_demo_from_the_wheel(env, tmp_path)
    probe = "import importlib.resources as r, riskreg; print(r.files('riskreg.templates').joinpath('base.html.j2').is_file(), riskreg.__file__)"
    out = subprocess.run(
        [str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("True ")
    assert str(env_dir) in out


def _outside_the_repo(env_dir: Path) -> dict[str, str]:
    """The environment of a user's shell with the installed package first on PATH and nothing of the checkout."""
    env = {**os.environ, "PATH": f"{env_dir / 'bin'}:/usr/bin:/bin"}
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the wheel went in uncompiled: keep what each command compiles
    return env


def _run_demo_from_the_wheel(env: dict[str, str], tmp_path: Path) -> None:
    """Run pilots/demo.sh on a copy of pilots/ with only the installed package on PATH."""
    copy = tmp_path / "project"
    shutil.copytree(ROOT / "pilots", copy / "pilots", ignore=shutil.ignore_patterns("riskreg.db*"))
    result = subprocess.run(["sh", "pilots/demo.sh"], cwd=copy, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    reports = sorted(p.name for p in (copy / "build" / "reports").glob("*.html"))
    assert reports == ["board.html", "pilot-P-1.html", "pilot-P-2.html", "pilot-P-3.html", "qa.html"]
    assert "audit chain intact" in result.stdout


def test_every_subpackage_is_listed_in_setup_cfg():
    import configparser

    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    listed = set(parser["options"]["packages"].split())
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "riskreg").rglob("__init__.py")}
    assert found | {"riskreg.templates"} == listed
