"""Every command explains itself, and register commands stay light (no scipy, no jinja2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from riskreg.cli import cli

PROTOCOL = Path(__file__).resolve().parent.parent / "pilots" / "hospital-befriending.toml"


def all_commands(group: click.Group = cli, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        path = (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, path)
        else:
            yield path, command


@pytest.mark.parametrize(
    ("path", "command"), list(all_commands()), ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_every_command_has_help_with_an_example(path, command):
    assert command.help and command.help.strip().splitlines()[0]
    assert "Example:" in command.help, f"riskreg {' '.join(path)} has no Example"


def all_groups(group: click.Group = cli, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield (*prefix, name), command
            yield from all_groups(command, (*prefix, name))


@pytest.mark.parametrize(
    ("path", "group"), list(all_groups()), ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_every_command_group_has_help_with_an_example(path, group):
    assert group.help and "Example:" in group.help, f"riskreg {' '.join(path)} has no Example"


@pytest.mark.parametrize(
    ("path", "command"), list(all_commands()), ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_every_command_that_shows_data_has_json(path, command):
    if path == ("risk", "export"):
        return  # JSON by default (--csv for the other form)
    assert any(p.name == "as_json" for p in command.params), f"riskreg {' '.join(path)} has no --json"


def test_python_dash_m_riskreg_works():
    result = subprocess.run(
        [sys.executable, "-m", "riskreg", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("riskreg, version ")


def test_register_and_pilot_bookkeeping_commands_import_neither_scipy_nor_jinja2(tmp_path):
    # a superiority protocol: registering a non-inferiority one checks its power, which needs scipy
    protocol = PROTOCOL.parent / "housing-repairs.toml"
    script = (
        "import sys\n"
        "from riskreg.cli import main\n"
        "for args in (['init'], ['risk', 'add', 'A', '--side', 'citizen', '--mode', 'design', '--likelihood', '2', '--impact', '2'],\n"
        "             ['risk', 'list', '--json'], ['risk', 'show', 'R-1'], ['risk', 'history', 'R-1'], ['audit', 'verify'],\n"
        f"             ['pilot', 'register', '{protocol}'], ['pilot', 'list'], ['pilot', 'show', 'P-1'], ['pilot', 'link', 'P-1', 'R-1']):\n"
        f"    try:\n        main(['--db', 'sqlite:///{tmp_path}/r.db', *args])\n"
        "    except SystemExit as e:\n        assert e.code in (0, None), e.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('scipy', 'jinja2', 'numpy'))\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_register_commands_leave_asyncio_and_importlib_metadata_unloaded(tmp_path):
    """Issue 19: SQLAlchemy imports both, riskreg defers them (riskreg.lazy), and these commands never touch them."""
    subprocess.run(
        [sys.executable, "-m", "riskreg", "--db", f"sqlite:///{tmp_path}/r.db", "init"], check=True
    )
    script = (
        "import sys\n"
        "from riskreg.cli import main\n"
        "for args in (['risk', 'add', 'A', '--side', 'citizen', '--mode', 'design', '--likelihood', '2', '--impact', '2'],\n"
        "             ['risk', 'list', '--json'], ['risk', 'show', 'R-1'], ['review', 'due']):\n"
        f"    try:\n        main(['--db', 'sqlite:///{tmp_path}/r.db', '--actor', 'a', *args])\n"
        "    except SystemExit as e:\n        assert e.code in (0, None), e.code\n"
        "from riskreg.lazy import Deferred\n"
        "loaded = [name for name in ('asyncio', 'importlib.metadata') if not isinstance(sys.modules.get(name), Deferred)]\n"
        "print(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_a_deferred_module_is_the_real_module_when_used():
    script = (
        "import riskreg.cli, sys, asyncio\n"
        "from importlib import metadata\n"
        "print(type(metadata).__name__, type(asyncio).__name__)\n"
        "import sqlalchemy.util.concurrency as c\n"
        "print(c.iscoroutine is sys.modules['asyncio.coroutines'].iscoroutine)\n"
        "print(asyncio.run(asyncio.sleep(0, result='ran')))\n"
        "print(sys.modules['asyncio'].iscoroutine is c.iscoroutine)\n"
        "print(metadata.version('click') != '')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["Deferred", "Deferred", "True", "ran", "True", "True"]


def test_a_deferred_package_runs_before_a_submodule_imported_first():
    """``import asyncio.events`` after the CLI once ran that submodule alone, and crashed the interpreter."""
    script = (
        "import riskreg.cli, sys\n"
        "import asyncio.events\n"
        "from importlib.metadata import _meta\n"
        "import asyncio\n"
        "events = sys.modules['asyncio.events']\n"
        "print(asyncio.run(asyncio.sleep(0, result='ran')), type(asyncio).__name__)\n"
        "print(asyncio.events is events, sys.modules['asyncio.base_events'].events is events,\n"
        "      type(events.__spec__.loader).__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == ["ran module", "True True SourceFileLoader"]


def test_analyses_and_reports_leave_scipy_stats_unloaded(tmp_path):
    """scipy.special serves every tail area (riskreg.stats.tails): scipy.stats alone took 0.35 s to import."""
    pilots = PROTOCOL.parent
    db = f"sqlite:///{tmp_path}/r.db"
    setup = (
        ["init"],
        ["pilot", "register", str(PROTOCOL)],
        [
            "pilot",
            "data",
            "P-1",
            str(pilots / "data" / "hospital-befriending-feasibility.csv"),
            "--stage",
            "feasibility",
        ],
        ["pilot", "register", str(pilots / "community-hubs.toml")],
        [
            "pilot",
            "data",
            "P-2",
            str(pilots / "data" / "community-hubs-feasibility.csv"),
            "--stage",
            "feasibility",
        ],
    )
    for args in setup:
        subprocess.run(
            [sys.executable, "-m", "riskreg", "--db", db, "--actor", "a", *args],
            check=True,
            capture_output=True,
        )
    script = (
        "import sys\n"
        "from riskreg.cli import main\n"
        f"for args in (['pilot', 'analyse', 'P-1'], ['pilot', 'analyse', 'P-2'], ['report', 'board', '-o', '{tmp_path}/b.html'],\n"
        f"             ['report', 'pilot', 'P-2', '-o', '{tmp_path}/p.html']):\n"
        f"    try:\n        main(['--db', '{db}', '--actor', 'a', *args])\n"
        "    except SystemExit as e:\n        assert e.code in (0, None), e.code\n"
        "print(sorted(m for m in sys.modules if m.startswith('scipy.stats')))\n"
        "print([m for m in ('numpy.testing', 'numpy.ma', 'numpy.f2py', 'scipy.spatial') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    # and neither scipy's array-API layer nor scipy.optimize imports what no analysis uses (riskreg.lazy)
    assert result.stdout.strip().splitlines()[-2:] == ["[]", "[]"]


DEFERRED_NUMPY_IN_USE = (
    "import sys, importlib.resources, numpy\n"
    "from scipy import special\n"
    "print(*(type(vars(numpy)[m]).__name__ for m in ('testing', 'ma', 'polynomial')))\n"
    "numpy.testing.assert_allclose(special.ndtr(0.0), 0.5)\n"
    "from numpy.testing import assert_equal\n"
    "assert_equal(int(numpy.ma.masked_array([1, 2, 3], mask=[0, 1, 0]).sum()), 4)\n"
    "from numpy.polynomial import Polynomial\n"
    "import numpy.random as random\n"
    "print(Polynomial([1, 2])(1), random.default_rng(7).integers(1, 2))\n"
    "print(*(sys.modules[m] is getattr(numpy, m.split('.')[1]) and type(sys.modules[m]).__name__\n"
    "        for m in ('numpy.testing', 'numpy.ma', 'numpy.polynomial')))\n"
    "print(importlib.resources.files('numpy').joinpath('__init__.py').is_file())\n"
    "import scipy\n"
    "from scipy.optimize import brentq\n"
    "print(type(vars(scipy)['spatial']).__name__, 'scipy.spatial' in sys.modules)\n"
    # a deferred package's submodule first: the package runs first, once, as without riskreg
    "from scipy.spatial.distance import euclidean\n"
    "spatial = sys.modules['scipy.spatial']\n"
    "print(type(spatial).__name__, scipy.spatial is spatial, euclidean([0, 0], [3, 4]),\n"
    "      spatial.distance.euclidean is euclidean,\n"
    "      sys.modules['scipy.spatial._geometric_slerp'].euclidean is euclidean)  # distance ran once\n"
)


@pytest.mark.parametrize("first", ["riskreg.cli, numpy", "numpy, riskreg.cli"])
def test_deferred_numpy_submodules_are_the_real_ones_when_used(first):
    """Whether numpy is imported before riskreg's CLI or after it, its deferred submodules work when used."""
    script = f"import {first}\n" + DEFERRED_NUMPY_IN_USE
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == [
        "Deferred Deferred Deferred",
        "3.0 1",
        "module module module",
        "True",
        "Deferred False",
        "module True 5.0 True True",
    ]
