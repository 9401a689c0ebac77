"""Excel workbooks (.xlsx) in and out: read through the CSV checks, refused with advice when they cannot be."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from tests.conftest import Riskreg
from tests.pilot_fixtures import LONG, registered, write
from tests.risk_fixtures import risk_add

LONG_ROWS = [line.split(",") for line in LONG.strip().splitlines()]


def book(path: Path, *sheets: tuple[str, list[list[Any]]]) -> str:
    """Write a workbook of the given (title, rows) sheets; return its path as text."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets:
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return str(path)


def typed(rows: list[list[str]]) -> list[list[Any]]:
    """The CSV rows as a spreadsheet holds them: numbers as numbers, empty cells empty."""

    def cell(text: str) -> Any:
        if text == "":
            return None
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            return text

    return [rows[0], *([cell(t) for t in row] for row in rows[1:])]


def refused(result: Any, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.output == f"Error: {message}\n"


def test_an_outcome_sheet_imports_as_its_csv_does(rr, tmp_path):
    registered(rr, tmp_path)
    csv = rr.json(
        "pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility", "--dry-run"
    )
    path = book(tmp_path / "d.xlsx", ("Data", typed(LONG_ROWS)))
    imported = rr.json("pilot", "data", "P-1", path, "--stage", "feasibility")
    assert {k: v for k, v in imported.items() if k not in ("file", "dry_run")} == {
        k: v for k, v in csv.items() if k not in ("file", "dry_run")
    }
    assert imported["observations"] == 9 and imported["missing"] == 2


def test_wide_form_booleans_and_exact_floats(rr, tmp_path):
    registered(rr, tmp_path)
    rows = [
        ["unit_id", "arm", "wellbeing", "readmitted", "incidents", "exposure"],
        ["u1", "comparison", 40.1, True, 0, 8],
        ["u2", "pilot", 0.1 + 0.2, False, 2, 7.5],
        ["u3", "pilot", None, None, None, None],
    ]
    result = rr.json(
        "pilot", "data", "P-1", book(tmp_path / "w.xlsx", ("Sheet1", rows)), "--stage", "feasibility"
    )
    assert (result["form"], result["rows"], result["observations"], result["missing"]) == ("wide", 3, 9, 3)
    data = rr.json("pilot", "show", "P-1")["data"]
    assert data["readmitted"]["comparison"]["n"] == 1 and data["readmitted"]["pilot"]["n"] == 1


def test_sheet_option_picks_a_sheet_and_an_unknown_one_is_named(rr, tmp_path):
    registered(rr, tmp_path)
    path = book(tmp_path / "d.xlsx", ("Notes", [["read me"]]), ("Data", typed(LONG_ROWS)))
    refused(
        rr("pilot", "data", "P-1", path, "--stage", "feasibility", "--sheet", "Outcomes"),
        f"{path}: no sheet named 'Outcomes' (sheets: Notes, Data)",
    )
    # the first sheet by default: its header is not an outcome header
    assert rr("pilot", "data", "P-1", path, "--stage", "feasibility").exit_code == 1
    result = rr.json("pilot", "data", "P-1", path, "--stage", "feasibility", "--sheet", "Data")
    assert result["rows"] == 9
    refused(
        rr(
            "pilot",
            "data",
            "P-1",
            write(tmp_path, "d.csv", LONG),
            "--stage",
            "feasibility",
            "--sheet",
            "Data",
        ),
        f"{tmp_path / 'd.csv'}: --sheet is only for Excel workbooks (.xlsx); this is read as CSV",
    )


def test_rejected_rows_give_sheet_row_numbers_and_nothing_is_written(rr, tmp_path):
    registered(rr, tmp_path)
    events = rr.json("audit", "verify")["events"]
    rows = [
        ["unit_id", "arm", "metric", "value"],
        ["u1", "pilot", "wellbeing", 40],
        [],
        [],
        ["u2", "nowhere", "wellbeing", 41],
        ["u3", "pilot", "wellbeing", "lots"],
    ]
    path = book(tmp_path / "bad.xlsx", ("Sheet1", rows))
    result = rr("pilot", "data", "P-1", path, "--stage", "feasibility")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}: 2 rows rejected, nothing was imported\n  line 5: ")
    assert re.search(r"\n  line 6: .*value must be a number, got 'lots'\n", result.output)
    assert rr.json("audit", "verify")["events"] == events


def test_a_date_where_a_number_is_expected_is_refused_with_its_cell(rr, tmp_path):
    registered(rr, tmp_path)
    rows = [["unit_id", "arm", "metric", "value"], *[["u1", "pilot", "wellbeing", 40]] * 12]
    rows.append(["u14", "pilot", "wellbeing", dt.date(2024, 3, 1)])
    path = book(tmp_path / "dates.xlsx", ("Sheet1", rows))
    refused(
        rr("pilot", "data", "P-1", path, "--stage", "feasibility"),
        f"{path}: line 14: Sheet1!D14: a date where a number is expected; nothing was imported",
    )
    # a date in a text column is its ISO text
    rows = [["unit_id", "arm", "metric", "value"], [dt.date(2024, 3, 1), "pilot", "wellbeing", 40]]
    assert (
        rr.json(
            "pilot", "data", "P-1", book(tmp_path / "ok.xlsx", ("Sheet1", rows)), "--stage", "feasibility"
        )["rows"]
        == 1
    )


def _replace(path: Path, part: str, pattern: str, replacement: str) -> None:
    """Change one part of a saved workbook, as another program might have written it."""
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    parts[part] = re.sub(pattern, replacement, parts[part].decode()).encode()
    with zipfile.ZipFile(path, "w") as target:
        for name, content in parts.items():
            target.writestr(name, content)


def _with_cached_value(path: Path, value: str) -> None:
    """Give every formula of the first sheet a cached value, as Excel saves them (openpyxl saves none)."""
    _replace(path, "xl/worksheets/sheet1.xml", r"(<f>[^<]*</f>)(<v\s*/>|<v></v>)?", rf"\1<v>{value}</v>")


def test_formulas_use_their_cached_values_and_without_them_are_refused(rr, tmp_path):
    registered(rr, tmp_path)
    rows = [["unit_id", "arm", "metric", "value"], ["u1", "pilot", "wellbeing", "=40+2"]]
    path = book(tmp_path / "f.xlsx", ("Sheet1", rows))
    refused(
        rr("pilot", "data", "P-1", path, "--stage", "feasibility"),
        f"{path}: line 2: Sheet1!D2: a formula without a saved value (the workbook was saved without "
        "calculating it); open it in Excel and save it again, or export CSV; nothing was imported",
    )
    _with_cached_value(tmp_path / "f.xlsx", "42")
    assert rr.json("pilot", "data", "P-1", path, "--stage", "feasibility")["observations"] == 1
    assert rr.json("pilot", "show", "P-1")["data"]["wellbeing"]["pilot"]["n"] == 1


def _bad_files(tmp_path: Path) -> list[tuple[str, str]]:
    """(path, message) of each workbook that cannot be read."""
    cases = []
    encrypted = tmp_path / "locked.xlsx"
    # an encrypted .xlsx is an OLE2 compound file holding EncryptionInfo and EncryptedPackage streams
    encrypted.write_bytes(
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\0" * 504
        + "EncryptionInfo".encode("utf-16-le")
        + b"\0" * 1000
    )
    cases.append(
        (
            str(encrypted),
            "a password-protected (encrypted) workbook, which riskreg cannot read; remove the password in "
            "Excel (File > Info > Protect Workbook) and save it again, or export CSV",
        )
    )
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 2000)
    cases.append(
        (
            str(old),
            "an old Excel 97-2003 workbook (.xls), which riskreg does not read; save it as Excel Workbook "
            "(.xlsx) or CSV UTF-8 and try again",
        )
    )
    corrupt = tmp_path / "corrupt.xlsx"
    good = Path(book(tmp_path / "good.xlsx", ("Sheet1", typed(LONG_ROWS)))).read_bytes()
    corrupt.write_bytes(good[: len(good) // 2])
    cases.append((str(corrupt), "not a readable .xlsx workbook (damaged or not from a spreadsheet: "))
    cases.append(
        (book(tmp_path / "empty.xlsx", ("Sheet1", [])), "sheet 'Sheet1' is empty (expected a header row)")
    )
    merged = Workbook()
    merged.active.append(["unit_id", None, "metric", "value"])
    merged.active.append(["u1", "pilot", "wellbeing", 40])
    merged.active.merge_cells("A1:B1")
    merged.save(tmp_path / "merged.xlsx")
    cases.append(
        (
            str(tmp_path / "merged.xlsx"),
            "merged cells in the header (Sheet!A1:B1); unmerge them so that every column has its own name "
            "and every row its own values, or export CSV",
        )
    )
    huge = ["u1", "pilot", "wellbeing", 40, "PLACEHOLDER"]
    path = book(tmp_path / "huge.xlsx", ("Sheet1", [["unit_id", "arm", "metric", "value", "site"], huge]))
    _replace(
        Path(path), "xl/worksheets/sheet1.xml", "PLACEHOLDER", "x" * 10_000_000
    )  # openpyxl cuts at 32,767
    cases.append(
        (path, "line 2: Sheet1!E2: a cell of 10,000,000 characters (Excel holds at most 32,767 in a cell)")
    )
    errors = book(
        tmp_path / "errors.xlsx",
        ("Sheet1", [["unit_id", "arm", "metric", "value"], ["u1", "pilot", "wellbeing", "#DIV/0!"]]),
    )
    cases.append(
        (
            errors,
            "line 2: Sheet1!D2: the cell holds the error #DIV/0!; correct it in Excel, or leave it empty",
        )
    )
    return cases


def test_unreadable_workbooks_are_refused_with_advice_and_nothing_is_written(rr, tmp_path):
    registered(rr, tmp_path)
    events = rr.json("audit", "verify")["events"]
    for path, message in _bad_files(tmp_path):
        commands = [("pilot", "data", "P-1", path, "--stage", "feasibility")]
        if not message.startswith("line "):  # a whole-file refusal comes before any header check
            commands += [("pilot", "resources", "P-1", path), ("risk", "import", path)]
        for command in commands:
            result = rr(*command)
            assert result.exit_code == 1, (command, result.output)
            assert result.output.startswith(f"Error: {path}: {message}"), (command, result.output)
            assert result.output.count("\n") == 1
    assert rr.json("audit", "verify")["events"] == events


def test_resources_from_a_workbook_and_the_same_rows_again_are_refused(rr, tmp_path):
    registered(rr, tmp_path)
    rows = [
        ["stage", "side", "kind", "hours", "amount", "arm", "note"],
        ["feasibility", "public", "staff_time", 10, 300, "comparison", "calls"],
        ["feasibility", "citizen", "volunteer_time", 20, None, "pilot", "befriending"],
    ]
    path = book(tmp_path / "r.xlsx", ("Costs", rows))
    totals = rr.json("pilot", "resources", "P-1", path)["totals"]["total"]
    assert totals["public"] == {"hours": 10.0, "cash": 300.0, "valued": 0.0}
    # the same rows saved again (another file, other bytes) are the same resources
    again = book(tmp_path / "r2.xlsx", ("Other", [["x"]]), ("Costs", rows))
    result = rr("pilot", "resources", "P-1", again, "--sheet", "Costs")
    assert result.exit_code == 1 and "P-1 already has these resources" in result.output


def test_risk_export_xlsx_is_typed_frozen_neutralised_and_round_trips(rr, runner, tmp_path, empty_db_url):
    titles = ['=HYPERLINK("http://x")', "+44 helpline", "\uff1dSUM(A1)", "Plain"]
    for title in titles:
        assert rr(*risk_add("x")[:2], *risk_add("x")[3:], "--owner", "Ana", "--", title).exit_code == 0
    rr("risk", "add", "Targets", "--side", "shared", "--mode", "delivery", "--likelihood", "4", "--impact", "4",
       "--target-likelihood", "2", "--target-impact", "2", "--review-days", "45")  # fmt: skip
    rr("risk", "rescore", "R-1", "--likelihood", "3", "--impact", "4", "--reason", "controls")
    rr("risk", "close", "R-3", "--reason", "done")
    target = tmp_path / "out" / "register.xlsx"
    result = rr("risk", "export", "--xlsx", str(target))
    assert result.output == f"wrote 5 risks to {target}\n"
    sheet = load_workbook(target).active
    assert sheet.freeze_panes == "A2"
    header = [c.value for c in sheet[1]]
    first = dict(zip(header, [c.value for c in sheet[2]], strict=True))
    assert first["id"] == "R-1" and first["title"] == '\'=HYPERLINK("http://x")'
    assert isinstance(first["likelihood"], int) and isinstance(first["score"], int)
    assert isinstance(first["next_review"], dt.datetime) and first["review_days"] is None
    assert [c.value for c in sheet["B"][1:4]] == [
        '\'=HYPERLINK("http://x")',
        "'+44 helpline",
        "'\uff1dSUM(A1)",
    ]
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)

    other = Riskreg(runner, empty_db_url)
    other("init")
    assert other.json("risk", "import", str(target))["ids"] == ["R-1", "R-2", "R-3", "R-4", "R-5"]
    keep = ("id", "title", "side", "mode", "category", "owner", "status", "treatment", "likelihood", "impact",
            "inherent", "target", "review_days", "score", "rating")  # fmt: skip
    original = [{k: r[k] for k in keep} for r in rr.json("risk", "list")]
    copied = [{k: r[k] for k in keep} for r in other.json("risk", "list")]
    assert copied == original
    assert [r["title"] for r in copied][:4] == titles
    assert rr("risk", "export", "--csv", "--xlsx", str(target)).exit_code == 2


# --- fuzz ------------------------------------------------------------------------------------

HEADERS = [
    "unit_id",
    "arm",
    "metric",
    "value",
    "exposure",
    "site",
    "wellbeing",
    "readmitted",
    "incidents",
    "other",
    "",
]
CELLS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**18), max_value=10**18),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        ["pilot", "comparison", "wellbeing", "readmitted", "incidents", "u1", "NA", "yes", "", "=1+1"]
    ),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
    st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(2100, 1, 1)),
)
SHEETS = st.tuples(
    st.lists(st.sampled_from(HEADERS), min_size=0, max_size=6),
    st.lists(st.lists(CELLS, max_size=7), max_size=6),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sheet=SHEETS)
def test_fuzzed_workbooks_never_give_a_traceback(rr, tmp_path, sheet):
    if not (tmp_path / "befriending.toml").exists():
        registered(rr, tmp_path)
    header, rows = sheet
    workbook = Workbook()
    for row in [header, *rows]:
        try:
            workbook.active.append(row)
        except (ValueError, TypeError):
            return  # openpyxl will not write it (an illegal character): not a workbook anyone has
    workbook.save(tmp_path / "fuzz.xlsx")
    result = rr("pilot", "data", "P-1", str(tmp_path / "fuzz.xlsx"), "--stage", "feasibility", "--dry-run")
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:
        assert result.output.startswith("Error: ")


def _padded(source: str, target: Path, padding: int) -> str:
    """Copy a workbook, its sheet's XML followed by ``padding`` spaces (which deflate to almost nothing)."""
    import zipfile

    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for part in old.infolist():
            data = old.read(part.filename)
            if part.filename.startswith("xl/worksheets/"):
                data += b" " * padding
            new.writestr(part, data, compress_type=zipfile.ZIP_DEFLATED)
    return str(target)


def test_a_zip_bomb_is_refused_from_the_zip_directory_before_reading(rr, tmp_path):
    rows = [
        ["title", "side", "mode", "likelihood", "impact"],
        ["Volunteer burnout", "citizen", "delivery", 3, 3],
    ]
    plain = book(tmp_path / "plain.xlsx", ("Risks", rows))
    bomb = _padded(plain, tmp_path / "bomb.xlsx", 30 << 20)
    before = rr.json("audit", "verify")["events"]
    result = rr("risk", "import", bomb)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: {bomb}: the workbook's part xl/worksheets/sheet1.xml would unpack "
    )
    assert result.stderr.endswith(
        "times larger than it is stored (at most 100 times for a part over 10 MB): not a spreadsheet's XML; "
        "export CSV UTF-8 instead\n"
    )
    assert rr.json("audit", "verify")["events"] == before
    # a small part may compress as it likes: the same padding under 10 MB is read
    assert rr.json("risk", "import", _padded(plain, tmp_path / "fine.xlsx", 1 << 20))["ids"] == ["R-1"]


def test_a_workbook_that_would_unpack_beyond_the_total_limit_is_refused(rr, tmp_path, monkeypatch):
    import riskreg.workbook as workbook

    monkeypatch.setattr(workbook, "MAX_UNPACKED_BYTES", 1 << 20)  # 1 MiB stands in for 2 GiB
    rows = [
        ["title", "side", "mode", "likelihood", "impact"],
        ["Volunteer burnout", "citizen", "delivery", 3, 3],
    ]
    big = _padded(book(tmp_path / "plain.xlsx", ("Risks", rows)), tmp_path / "big.xlsx", 2 << 20)
    result = rr("risk", "import", big)
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {big}: the workbook would unpack to 2 MiB of XML; at most 1 MiB is read (split it, or export "
        "CSV UTF-8)\n",
    )
