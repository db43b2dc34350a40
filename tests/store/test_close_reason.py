"""Issue 14: close with a reason and a note. The reason is Kibana's: the set_alerts_status
route writes ``kibana.alert.workflow_reason`` when closing with one and removes it on any
other change (reopening removes it, as Elastic's "Close alerts" docs say); its values are the
close menu's keys (duplicate, false_positive, true_positive, benign_positive, other)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.store.factory import render, sequence_docs, single_doc
from vigil.store import SqliteStore, StoreError, open_store
from vigil.store.model import MAX_NOTE_CHARS, close_reason
from vigil.store.views import alert_view, change_status

REASON = "kibana.alert.workflow_reason"



def test_closing_reason_in_every_document_and_removed_on_reopen(store: SqliteStore) -> None:
    docs = sequence_docs("r")
    store.insert_alerts(docs)
    shell_id = docs[-1]["kibana.alert.uuid"]
    result = change_status(store, [shell_id[:8]], "close", who="ann", reason="false_positive",
                           note="admin's PsExec, ticket 4411")
    assert result.message == ("closed 1 alert(s) and 2 building block(s) as false positive; "
                              "note added to 1")
    shell = store.get_alert(shell_id)
    assert shell is not None
    assert [d.get(REASON) for d in shell.documents()] == ["false_positive"] * 3
    assert [(n.by, n.status, n.text) for n in shell.notes] == \
        [("ann", "closed", "admin's PsExec, ticket 4411")]
    shown = render(alert_view(shell))
    assert "closing reason" in shown and "false positive" in shown
    assert "1 note(s)" in shown and "ticket 4411" in shown

    change_status(store, [shell_id], "reopen", who="bob", note="not the admin after all")
    reopened = store.get_alert(shell_id)
    assert reopened is not None
    assert [REASON in d for d in reopened.documents()] == [False] * 3
    assert [n.text for n in reopened.notes] == ["admin's PsExec, ticket 4411",
                                                "not the admin after all"]
    assert reopened.notes[1].status == "open"
    assert "closing reason" not in render(alert_view(reopened))


def test_a_note_on_an_alert_already_closed_is_kept(store: SqliteStore) -> None:
    store.insert_alerts([single_doc("n")])
    alert_id = single_doc("n")["kibana.alert.uuid"]
    change_status(store, [alert_id], "close", who="ann", reason="duplicate")
    again = change_status(store, [alert_id], "close", who="ann", note="same as 93bbcb")
    assert again.message == "closed 0 alert(s); 1 already closed; note added to 1"
    alert = store.get_alert(alert_id)
    assert alert is not None and alert.document[REASON] == "duplicate"  # unchanged, as Kibana
    assert [n.text for n in alert.notes] == ["same as 93bbcb"]


def test_reasons_notes_and_their_bounds(store: SqliteStore) -> None:
    store.insert_alerts([single_doc("b")])
    alert_id = single_doc("b")["kibana.alert.uuid"]
    assert close_reason("False positive") == "false_positive"
    assert close_reason("benign-positive") == "benign_positive"
    with pytest.raises(StoreError, match="unknown closing reason 'resolved'"):
        close_reason("resolved")
    with pytest.raises(StoreError, match="closing alerts only"):
        store.set_workflow_status([alert_id], "acknowledged", "ann", reason="other")
    with pytest.raises(StoreError, match="at most 10000"):
        store.set_workflow_status([alert_id], "closed", "ann", note="x" * (MAX_NOTE_CHARS + 1))
    alert = store.get_alert(alert_id)
    assert alert is not None and alert.workflow_status == "open" and not alert.notes


def test_hostile_note_is_shown_as_text(store: SqliteStore) -> None:
    store.insert_alerts([single_doc("h")])
    alert_id = single_doc("h")["kibana.alert.uuid"]
    change_status(store, [alert_id], "ack", who="ann",
                  note="\x1b[2J[bold red]pwned[/]\u202eline\nsecond line")
    alert = store.get_alert(alert_id)
    assert alert is not None
    shown = render(alert_view(alert))
    assert "\x1b[2J" not in shown and "\u202e" not in shown
    assert "[bold red]pwned[/]" in shown and "second line" in shown


def test_cli_close_with_reason_and_note(tmp_path: Path) -> None:
    db = tmp_path / "alerts.db"
    with open_store(db) as store:
        store.insert_alerts([single_doc("c")])
    alert_id = single_doc("c")["kibana.alert.uuid"]

    def vigil(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vigil.cli", "alerts", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=120)

    bad = vigil("close", "--store", str(db), alert_id[:8], "--reason", "resolved")
    assert bad.returncode == 2 and "resolved" in bad.stderr
    done = vigil("close", "--store", str(db), alert_id[:8], "--reason", "true_positive",
                 "--note", "confirmed with the host owner")
    assert done.returncode == 0, done.stderr
    assert "closed 1 alert(s) as true positive; note added to 1" in done.stdout
    shown = vigil("show", "--store", str(db), alert_id[:8])
    assert "true positive" in shown.stdout and "confirmed with the host owner" in shown.stdout
    with open_store(db) as store:
        alert = store.get_alert(alert_id)
    assert alert is not None and alert.document[REASON] == "true_positive"
