"""`bot participants import`: every row checked first, then all or nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from sqlmodel import Session, select

from bot.store.models import AuditEntry, ConsentChange, Participant

Cli = Callable[..., Result]
HEADER = "code,phone,language,timezone,channel,checkin_time\n"


def _csv(tmp_path: Path, text: str, name: str = "people.csv", bom: bool = False) -> str:
    path = tmp_path / name
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return str(path)


def test_a_valid_file_is_enrolled_in_full(cli: Cli, db: Session, tmp_path: Path) -> None:
    path = _csv(tmp_path, HEADER
                + "P1,+14155552671,es-MX,America/Chicago,whatsapp,9:00\n"
                + "P2,(415) 555-2672,,,,\n"
                + ",,,,,\n"  # blank lines at the end of exported sheets are ignored
                , bom=True)
    result = cli("participants", "import", path, "--region", "US", "--actor", "ana")
    assert result.exit_code == 0, result.output
    assert result.output == "imported 2 participants from people.csv\n"
    rows = db.exec(select(Participant).order_by(Participant.id)).all()  # type: ignore[arg-type]
    assert [(p.code, p.phone, p.language, p.timezone, p.channel, p.checkin_time)
            for p in rows] == [
        ("P1", "+14155552671", "es", "America/Chicago", "whatsapp", "09:00"),
        ("P2", "+14155552672", "en", "UTC", "sms", None)]
    assert len(db.exec(select(ConsentChange)).all()) == 2
    actions = db.exec(select(AuditEntry.action, AuditEntry.actor)).all()
    assert [a for a, _ in actions] == ["participant.add", "participant.add",
                                       "participant.import"]
    assert {actor for _, actor in actions} == {"staff:ana"}


def test_every_problem_is_reported_and_nothing_written(cli: Cli, db: Session,
                                                       tmp_path: Path) -> None:
    cli("participants", "add", "--phone", "+14155552690", "--code", "OLD1")
    path = _csv(tmp_path, HEADER
                + "P1,+14155552671,en,UTC,sms,08:00\n"          # row 2: fine
                + "P2,+14155552672,xx,Mars/Base,fax,25:00\n"     # row 3
                + "P3,+14155552673,,,,\n"                        # row 4: fine
                + "P1,+14155552674,,,,\n"                        # row 5: code of row 2
                + "P5,+1 415 555 2671,,,,\n"                     # row 6: phone of row 2
                + "P6,555-01,,,,\n"                              # row 7
                + "OLD1,+14155552690,,,,\n"                      # row 8: already enrolled
                + ",+14155552699,,,,\n")                         # row 9
    result = cli("participants", "import", path)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        'error: row 3: language "xx" is not supported (use one of en, es, fr, pt, sw, ar, zh, '
        "vi, ht)",
        'error: row 3: timezone "Mars/Base" is not an IANA time zone (like America/Chicago)',
        'error: row 3: channel "fax" must be sms or whatsapp',
        'error: row 3: check-in time "25:00" must be HH:MM, 00:00 to 23:59',
        'error: row 5: code "P1" is also on row 2',
        'error: row 6: phone "+1 415 555 2671" is also on row 2',
        'error: row 7: phone "555-01" is not a valid phone number',
        'error: row 8: code "OLD1" is already enrolled',
        'error: row 8: phone "+14155552690" is already enrolled',
        "error: row 9: code is missing",
        "Nothing was imported (10 problems).",
        "Numbers without a +country code need --region (for example --region US).",
    ]
    assert [p.code for p in db.exec(select(Participant))] == ["OLD1"]
    assert [a.action for a in db.exec(select(AuditEntry))] == ["participant.add"]


def test_columns_are_checked(cli: Cli, tmp_path: Path) -> None:
    result = cli("participants", "import", _csv(tmp_path, "code,mobile\nP1,+14155552671\n"))
    assert result.exit_code == 1
    assert 'error: unknown column "mobile"' in result.stderr
    assert 'error: column "phone" is missing' in result.stderr


def test_an_empty_file_or_one_with_only_a_header(cli: Cli, tmp_path: Path) -> None:
    result = cli("participants", "import", _csv(tmp_path, ""))
    assert result.exit_code == 1 and "the file is empty" in result.stderr
    result = cli("participants", "import", _csv(tmp_path, HEADER))
    assert result.exit_code == 1 and "the file has no participants" in result.stderr


def test_only_some_columns_and_extra_values(cli: Cli, db: Session, tmp_path: Path) -> None:
    result = cli("participants", "import",
                 _csv(tmp_path, "Phone,Code\n+14155552671,P1\n+14155552672,P2,extra\n"))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == "error: row 3: more values than columns"
    result = cli("participants", "import",
                 _csv(tmp_path, "Phone,Code\n+14155552671,P1\n", name="ok.csv"))
    assert result.exit_code == 0
    assert db.exec(select(Participant.code)).all() == ["P1"]


def test_a_file_that_is_not_utf8(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("code,phone\nJosé,+14155552671\n".encode("latin-1"))
    result = cli("participants", "import", str(path))
    assert result.exit_code == 1 and "not UTF-8" in result.stderr
