"""`lifecycle suppress add|remove|list|import` as a user runs them, on a real store in a temporary folder."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from test_cli import digest, run, workdir  # noqa: F401 - workdir is a fixture

from runner.models import Customer, Suppression, SuppressionHistory
from runner.store import Store


@pytest.fixture
def store(workdir: Path, capsys) -> Store:  # noqa: F811 - the imported fixture
    assert run(capsys, "init")[0] == 0
    opened = Store(f"sqlite:///{workdir / 'lifecycle.db'}")
    with opened.session() as session:
        session.add(Customer(email="ada@example.com", accepts_marketing=True, created_at=dt.datetime(2026, 1, 1)))
        session.commit()
    yield opened
    opened.close()


def rows(store: Store, model: type) -> list:
    with store.session() as session:
        return list(session.execute(select(model).order_by(model.id)).scalars())


def suppressed(store: Store) -> dict[str, str]:
    return {row.email: row.reason for row in rows(store, Suppression)}


def test_add_normalises_validates_and_is_idempotent(store: Store, capsys):
    code, out, _ = run(capsys, "suppress", "add", " Ada@Example.com ", "--reason", "bounced")
    assert code == 0 and out.strip() == "ada@example.com: suppressed"
    assert run(capsys, "suppress", "add", "ada@example.com")[1].strip() == "ada@example.com: already suppressed"
    assert suppressed(store) == {"ada@example.com": "bounced"}
    (history,) = rows(store, SuppressionHistory)
    assert (history.action, history.reason, history.source) == ("added", "bounced", "manual")
    with store.session() as session:
        assert session.execute(select(Customer.accepts_marketing)).scalar() is False


@pytest.mark.parametrize("address", ["ada", "ada@example", "ada@@example.com", "a b@example.com", ""])
def test_add_refuses_what_is_not_an_address(store: Store, capsys, address: str):
    code, _, err = run(capsys, "suppress", "add", address)
    assert code == 1 and ("is not an email address" in err or "is empty" in err)
    assert "Hint: check the address; nothing was changed" in err
    assert suppressed(store) == {}


def test_remove_is_recorded_and_does_not_give_consent_back(store: Store, capsys):
    run(capsys, "suppress", "add", "ada@example.com", "--reason", "complained")
    code, out, _ = run(capsys, "suppress", "remove", "ADA@example.com")
    assert code == 0 and "ada@example.com: removed (was complained)" in out
    assert suppressed(store) == {}
    assert [(h.action, h.reason, h.source) for h in rows(store, SuppressionHistory)] == [
        ("added", "complained", "manual"), ("removed", "complained", "manual")]
    with store.session() as session:
        assert session.execute(select(Customer.accepts_marketing)).scalar() is False
    code, _, err = run(capsys, "suppress", "remove", "ada@example.com")
    assert code == 1 and "Error: ada@example.com is not on the suppression list" in err
    assert len(rows(store, SuppressionHistory)) == 2


def test_list_as_table_and_json_filtered_by_reason(store: Store, capsys):
    run(capsys, "suppress", "add", "b@example.com", "--reason", "bounced")
    run(capsys, "suppress", "add", "c@example.com", "--reason", "complained")
    code, out, _ = run(capsys, "suppress", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["email", "reason", "since", "(UTC)", "source"]
    assert lines[1].split()[:2] == ["b@example.com", "bounced"] and lines[1].split()[-1] == "manual"
    assert lines[-1] == "2 suppressed address(es)"
    code, out, _ = run(capsys, "suppress", "list", "--reason", "complained", "--json")
    (entry,) = json.loads(out)
    assert entry["email"] == "c@example.com" and entry["reason"] == "complained" and entry["source"] == "manual"
    assert json.loads(run(capsys, "suppress", "list", "--reason", "unsubscribed", "--json")[1]) == []


# ---------------------------------------------------------------- import

def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_import_postmark_resend_and_plain_lists(store: Store, workdir: Path, capsys):  # noqa: F811
    postmark = write(workdir, "postmark.csv", "EmailAddress,SuppressionReason,Origin,CreatedAt\n"
                     "hard@example.com,HardBounce,Recipient,2026-03-01T10:00:00-05:00\n"
                     "spam@example.com,SpamComplaint,Recipient,2026-03-02T10:00:00Z\n"
                     "Ada@Example.com,ManualSuppression,Customer,\n")
    code, out, _ = run(capsys, "suppress", "import", str(postmark))
    assert code == 0 and "3 rows read; 3 address(es) newly suppressed (bounced 1, complained 1, manual 1)" in out
    resend = write(workdir, "resend.csv", "id,email,origin,source_id,created_at\n"
                   "e169aa45,gone@example.com,bounce,479e3145,2023-10-06 23:47:56.678+00\n"
                   "e169aa46,hard@example.com,complaint,,2023-10-06 23:47:56.678+00\n")
    assert "1 already suppressed or repeated" in run(capsys, "suppress", "import", str(resend))[1]
    plain = write(workdir, "list.txt", "one@example.com\n\ntwo@example.com\n")
    run(capsys, "suppress", "import", str(plain), "--reason", "unsubscribed")
    found = {row.email: row for row in rows(store, Suppression)}
    assert {email: row.reason for email, row in found.items()} == {
        "hard@example.com": "bounced", "spam@example.com": "complained", "ada@example.com": "manual",
        "gone@example.com": "bounced", "one@example.com": "unsubscribed", "two@example.com": "unsubscribed"}
    assert found["hard@example.com"].created_at == dt.datetime(2026, 3, 1, 15, 0)
    assert found["gone@example.com"].created_at == dt.datetime(2023, 10, 6, 23, 47, 56, 678000)
    assert found["hard@example.com"].source == "import:postmark.csv"


def test_import_free_text_reasons_need_a_reason_for_the_file(store: Store, workdir: Path, capsys):  # noqa: F811
    sendgrid = write(workdir, "bounces.csv", "email,created,reason,status\n"
                     "a@example.com,1764000000,550 5.1.1 The email account does not exist,5.1.1\n")
    before = digest(workdir / "lifecycle.db")
    code, _, err = run(capsys, "suppress", "import", str(sendgrid))
    assert code == 1
    assert ("Error: " + str(sendgrid) + ": row 2, column 'reason': '550 5.1.1 The email account does not exist' "
            "is not a suppression reason; nothing was imported") in err
    assert "--reason bounced" in err and digest(workdir / "lifecycle.db") == before
    assert run(capsys, "suppress", "import", str(sendgrid), "--reason", "bounced")[0] == 0
    (row,) = rows(store, Suppression)
    assert (row.reason, row.detail) == ("bounced", "550 5.1.1 The email account does not exist")
    assert row.created_at == dt.datetime(2025, 11, 24, 16, 0)


def test_import_mailgun_bounces_keep_the_error(store: Store, workdir: Path, capsys):  # noqa: F811
    mailgun = write(workdir, "mg.csv", "address,code,error,created_at\n"
                    "a@example.com,550,No such user,\"Tue, 24 Nov 2026 09:00:00 +0000\"\n")
    assert run(capsys, "suppress", "import", str(mailgun), "--reason", "bounced")[0] == 0
    (row,) = rows(store, Suppression)
    assert (row.reason, row.detail, row.created_at) == ("bounced", "No such user", dt.datetime(2026, 11, 24, 9))


@pytest.mark.parametrize(("text", "where"), [
    ("email,reason\na@example.com,bounced\nnot-an-address,bounced\n", "row 3, column 'email'"),
    ("email,created_at\na@example.com,yesterday\n", "row 2, column 'created_at'"),
    ("name,phone\nAda,123\n", "row 1"),
    ("a@example.com\nb@example\n", "row 2, column '1'"),
])
def test_a_bad_row_stops_the_import_and_changes_nothing(store: Store, workdir: Path, capsys, text: str,  # noqa: F811
                                                        where: str):
    path = write(workdir, "bad.csv", text)
    code, _, err = run(capsys, "suppress", "import", str(path))
    assert code == 1 and f"{path}: {where}" in err and "nothing was imported" in err
    assert suppressed(store) == {}


def test_a_bad_row_after_many_chunks_leaves_the_store_untouched(store: Store, workdir: Path, capsys):  # noqa: F811
    lines = [f"user{n}@example.com" for n in range(2500)] + ["broken@"]
    path = write(workdir, "big.csv", "email\n" + "\n".join(lines) + "\n")
    before = digest(workdir / "lifecycle.db")
    code, _, err = run(capsys, "suppress", "import", str(path))
    assert code == 1 and "row 2502, column 'email'" in err
    assert suppressed(store) == {} and rows(store, SuppressionHistory) == []
    assert digest(workdir / "lifecycle.db") == before
    path = write(workdir, "big.csv", "email\n" + "\n".join(lines[:-1]) + "\n")
    assert "2500 address(es) newly suppressed (manual 2500)" in run(capsys, "suppress", "import", str(path))[1]
