"""Export files: the umask decides who may read them, they reach the disk before they replace an
earlier file, and a failure of any kind leaves no temporary file behind."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from riskreg.errors import InvalidInput
from riskreg.outfile import current_umask, replaced_whole
from tests.risk_fixtures import risk_add


@pytest.fixture
def umask() -> Iterator[None]:
    """Put the process's umask back as it was after the test."""
    before = os.umask(0o022)
    os.umask(before)
    yield
    os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize(("mask", "mode"), [(0o077, 0o600), (0o027, 0o640), (0o022, 0o644), (0o002, 0o664)])
def test_export_gets_the_mode_the_umask_gives_a_new_file(rr, tmp_path, umask, mask, mode):
    rr(*risk_add("Dumped"))
    os.umask(mask)
    result = rr("export", str(tmp_path / "out" / "dump.json"))
    assert result.exit_code == 0, result.output
    assert _mode(tmp_path / "out" / "dump.json") == mode
    assert _leftovers(tmp_path / "out") == []


def test_a_private_umask_keeps_a_replaced_export_private(rr, tmp_path, umask):
    target = tmp_path / "dump.json"
    target.write_text("old")
    target.chmod(0o644)
    os.umask(0o077)
    assert rr("export", str(target)).exit_code == 0
    assert _mode(target) == 0o600
    assert target.read_text().startswith("{")


def test_reading_the_umask_does_not_change_it(umask):
    os.umask(0o037)
    assert current_umask() == 0o037
    assert current_umask() == 0o037
    assert os.umask(0o022) == 0o037


def test_the_file_is_synced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    calls: list[tuple[str, object]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        kind = "folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        calls.append(("fsync", kind))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        calls.append(("replace", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with replaced_whole(tmp_path / "a.json") as out:
        out.write("{}")
    assert calls == [("fsync", "file"), ("replace", "a.json"), ("fsync", "folder")]
    assert (tmp_path / "a.json").read_text() == "{}"


class Boom(Exception):
    """An error raised while the file is written."""


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
def test_an_error_or_interrupt_while_writing_removes_the_temporary_file(tmp_path, error):
    target = tmp_path / "dump.json"
    target.write_text("earlier")
    with pytest.raises(error), replaced_whole(target) as out:
        out.write("partial")
        raise error()
    assert target.read_text() == "earlier"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_sync_or_rename_is_one_error_and_removes_the_temporary_file(tmp_path, monkeypatch, failing):
    target = tmp_path / "dump.json"
    target.write_text("earlier")

    def refuse(*_args: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, failing, refuse)
    with pytest.raises(InvalidInput) as caught, replaced_whole(target) as out:
        out.write("new")
    assert str(caught.value) == f"cannot write {target}: Input/output error"
    assert target.read_text() == "earlier"
    assert _leftovers(tmp_path) == []


def test_an_interrupted_export_keeps_the_earlier_file_and_leaves_nothing_behind(rr, tmp_path, monkeypatch):
    import riskreg.backup

    rr(*risk_add("Kept"))
    target = tmp_path / "dump.json"
    target.write_text("earlier")

    def interrupted(_session: object, out) -> dict[str, int]:  # type: ignore[no-untyped-def]
        out.write('{"partial": ')
        raise KeyboardInterrupt

    monkeypatch.setattr(riskreg.backup, "export_all", interrupted)
    result = rr("export", str(target))
    assert (result.exit_code, result.stderr) == (1, "Error: interrupted; the current change was not saved\n")
    assert target.read_text() == "earlier"
    assert _leftovers(tmp_path) == []
