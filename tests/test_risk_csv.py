"""Risk CSV import and export: atomic, with line numbers, and a lossless round trip."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Riskreg
from tests.risk_fixtures import risk_add

HEADER = "title,side,mode,likelihood,impact,category,owner,treatment\n"


def write(tmp_path: Path, text: str, name: str = "risks.csv", encoding: str = "utf-8") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def test_import_adds_every_row(rr, tmp_path):
    path = write(
        tmp_path,
        HEADER
        + "Volunteer burnout,citizen,delivery,3,3,wellbeing,Lead,treat\nSurveyor backlog,professional,assessment,4,3,,,\n",
    )
    assert rr.json("risk", "import", path) == {
        "file": path,
        "rows": 2,
        "ids": ["R-1", "R-2"],
        "dry_run": False,
        "likely_duplicates": [],
    }
    risks = rr.json("risk", "list")
    assert [(r["title"], r["category"], r["treatment"]) for r in risks] == [
        ("Volunteer burnout", "wellbeing", "treat"),
        ("Surveyor backlog", "general", None),
    ]


def test_a_bad_row_rejects_the_whole_file_with_its_line_number(rr, tmp_path):
    path = write(tmp_path, HEADER + "Good,citizen,delivery,3,3,,,\nBad,citizen,delivery,6,3,,,\n")
    result = rr("risk", "import", path)
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {path}: line 3: likelihood: expected a whole number from 1 to 5, got '6'; nothing was imported\n",
    )
    assert rr.json("risk", "list") == []
    assert rr.json("audit", "verify")["events"] == 0


def test_a_row_with_more_fields_than_the_header_is_named_by_its_line(rr, tmp_path):
    path = write(tmp_path, HEADER + "Good,citizen,delivery,3,3,,,\nLong,citizen,delivery,3,3,,,,extra\n")
    result = rr("risk", "import", path)
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {path}: line 3: the row has 9 fields but the header has 8; nothing was imported\n",
    )
    assert rr.json("risk", "list") == []


def test_many_bad_rows_are_listed_and_counted(rr, tmp_path):
    rows = "".join(f"Risk {i},citizen,delivery,{'x' if i % 2 else 3},3,,,\n" for i in range(50))
    result = rr("risk", "import", write(tmp_path, HEADER + rows))
    lines = result.stderr.splitlines()
    assert lines[0].endswith("risks.csv: 25 rows rejected, nothing was imported")
    assert lines[1] == "  line 3: likelihood: expected a whole number from 1 to 5, got 'x'"
    assert lines[-1] == "  ... and 5 more"
    assert len(lines) == 22


def test_dry_run_checks_and_writes_nothing(rr, tmp_path):
    path = write(tmp_path, HEADER + "A,shared,design,2,2,,,\n")
    assert rr.json("risk", "import", path, "--dry-run")["dry_run"] is True
    assert rr.json("risk", "list") == []


def test_semicolons_and_bom_are_accepted(rr, tmp_path):
    path = write(
        tmp_path, "\ufefftitle;side;mode;likelihood;impact\nRisg gwirfoddolwyr;citizen;delivery;2;5\n"
    )
    assert rr.json("risk", "import", path)["ids"] == ["R-1"]
    assert rr.json("risk", "show", "R-1")["title"] == "Risg gwirfoddolwyr"


def test_wrong_encoding_is_refused(rr, tmp_path):
    path = write(tmp_path, HEADER + "Café,citizen,delivery,2,2,,,\n", encoding="latin-1")
    result = rr("risk", "import", path)
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {path}: not UTF-8 text (byte 0xe9 cannot be decoded); save the file as 'CSV UTF-8' and try again\n",
    )


def test_missing_and_unknown_columns(rr, tmp_path):
    result = rr("risk", "import", write(tmp_path, "title,side,mode,likelihood\nA,citizen,design,1\n"))
    assert result.stderr.endswith("risks.csv: line 1: missing column impact\n")
    result = rr("risk", "import", write(tmp_path, HEADER.strip() + ",likelyhood\n"))
    assert "line 1: unknown column 'likelyhood'" in result.stderr


def test_empty_file(rr, tmp_path):
    path = write(tmp_path, "")
    assert rr("risk", "import", path).stderr == f"Error: {path}: the file is empty (expected a header line)\n"


def test_ids_that_exist_are_refused(rr, tmp_path):
    rr(*risk_add("Existing"))
    path = write(tmp_path, "id," + HEADER + "R-1,A,citizen,design,2,2,,,\n")
    result = rr("risk", "import", path)
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {path}: line 2: id: R-1 already exists; import never overwrites risks; nothing was imported\n",
    )


def test_export_then_import_into_an_empty_database_round_trips(rr, runner, tmp_path, empty_db_url):
    rr(
        "risk",
        "add",
        'Quotes "here", commas',
        "--side",
        "citizen",
        "--mode",
        "design",
        "--likelihood",
        "4",
        "--impact",
        "4",
        "--target-likelihood",
        "2",
        "--target-impact",
        "2",
        "--owner",
        "Ana",
    )
    rr(
        "risk",
        "add",
        "مخاطر 🔥",
        "--side",
        "professional",
        "--mode",
        "delivery",
        "--likelihood",
        "2",
        "--impact",
        "3",
        "--review-days",
        "45",
    )
    rr(
        "risk",
        "add",
        "Third",
        "--side",
        "shared",
        "--mode",
        "commissioning",
        "--likelihood",
        "1",
        "--impact",
        "1",
    )
    rr("risk", "rescore", "R-1", "--likelihood", "3", "--impact", "4", "--reason", "controls")
    rr("risk", "close", "R-3", "--reason", "done")
    exported = rr("risk", "export", "--csv").stdout
    path = write(tmp_path, exported, "export.csv")
    other = Riskreg(runner, empty_db_url)
    other("init")
    assert other.json("risk", "import", path)["ids"] == ["R-1", "R-2", "R-3"]
    keep = (
        "id",
        "title",
        "side",
        "mode",
        "category",
        "owner",
        "status",
        "treatment",
        "likelihood",
        "impact",
        "inherent",
        "target",
        "review_days",
        "score",
        "rating",
    )
    original = [{k: r[k] for k in keep} for r in rr.json("risk", "list")]
    copied = [{k: r[k] for k in keep} for r in other.json("risk", "list")]
    assert copied == original
    assert other.json(*risk_add("New"))["id"] == "R-4"


def test_export_neutralises_formulas_and_import_restores_them(rr, runner, tmp_path, empty_db_url):
    titles = ['=HYPERLINK("http://x")', "+44 helpline", "-5 staff", "@SUM(A1)", "Plain"]
    for title in titles:
        # "--" ends the options, so a title may start with "-"
        rr(
            "risk",
            "add",
            "--side",
            "citizen",
            "--mode",
            "design",
            "--likelihood",
            "1",
            "--impact",
            "1",
            "--",
            title,
        )
    exported = rr("risk", "export", "--csv").stdout
    cells = [line.split(",")[1] for line in exported.splitlines()[1:]]
    assert cells[:4] == ['"\'=HYPERLINK(""http://x"")"', "'+44 helpline", "'-5 staff", "'@SUM(A1)"]
    other = Riskreg(runner, empty_db_url)
    other("init")
    other("risk", "import", write(tmp_path, exported, "export.csv"))
    assert [r["title"] for r in other.json("risk", "list")] == titles


def test_a_closed_risk_is_exported_without_a_next_review(rr):
    rr(*risk_add("Open one"))
    rr(*risk_add("Closed one"))
    rr("risk", "close", "R-2", "--reason", "Service ended")
    header, first, second = rr("risk", "export", "--csv").stdout.splitlines()[:3]
    column = header.split(",").index("next_review")
    assert first.split(",")[column] != ""
    assert second.split(",")[column] == ""
