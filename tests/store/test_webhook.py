"""Webhook actions against a real HTTP receiver on 127.0.0.1: down, then slow, then up —
every alert delivered once and detection never waits; dead letters after the attempts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.store.factory import sequence_docs, single_doc
from vigil.store import SqliteStore, StoreError, WebhookNotifier, open_store, webhook_payload


class Receiver:
    """A webhook receiver whose behaviour the test switches: ``down`` (port bound but not
    listening: connection refused), ``slow`` (answers after ``delay``, too late, and keeps
    nothing), ``fail`` (500), ``reject`` (400), ``up`` (keeps the alert, 200)."""

    def __init__(self) -> None:
        self.mode = "down"
        self.delay = 0.0
        self.lock = threading.Lock()
        self.received: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.requests = 0
        self.missing_for = 0  # "missing" answers 404 this many times, then is "up"
        self.slow_started = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests += 1
                    mode = receiver.mode
                if mode == "slow":
                    receiver.slow_started.set()
                    time.sleep(receiver.delay)
                    self._answer(503)
                    return
                if mode in ("fail", "reject", "missing"):
                    self._answer({"fail": 500, "reject": 400, "missing": 404}[mode])
                    if mode == "missing" and receiver.requests >= receiver.missing_for:
                        receiver.mode = "up"  # the receiver is back after a redeploy
                    return
                with receiver.lock:
                    receiver.received.append(json.loads(body))
                    receiver.keys.append(self.headers.get("Idempotency-Key", ""))
                self._answer(200)

            def _answer(self, status: int) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client gave up waiting: that is the point of "slow"

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.server.daemon_threads = True
        self.server.server_bind()  # the port is ours, but nothing listens yet
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread: threading.Thread | None = None

    def listen(self, mode: str) -> None:
        self.mode = mode
        if self.thread is None:
            self.server.server_activate()
            self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
            self.thread.start()

    def close(self) -> None:
        if self.thread is not None:
            self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _wait(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.02)


def _shells(docs: list[dict[str, Any]]) -> list[str]:
    return [d["kibana.alert.uuid"] for d in docs if "kibana.alert.building_block_type" not in d]


def test_down_then_slow_then_up_delivers_each_alert_once(store: SqliteStore,
                                                         receiver: Receiver) -> None:
    timeout, delay = 0.5, 2.5
    notifier = WebhookNotifier(store, receiver.url, timeout=timeout, max_attempts=100,
                               backoff_base=0.05, backoff_max=0.4, use_env_proxy=False,
                               poll_interval=0.2, report_link="https://soc.example/report.html",
                               seed=7)
    notifier.start()
    try:
        # Down: connections refused; the attempts are recorded and retried.
        batch_a = [d for k in range(5) for d in sequence_docs(f"a{k}")]
        store.insert_alerts(batch_a, notify=True)
        watcher = store.reopen()
        try:
            _wait(lambda: any(d.attempts >= 2 for d in watcher.list_deliveries()))
        finally:
            watcher.close()
        # Slow: the receiver answers after the client's timeout. Detection stores a batch
        # while the worker is stuck in such a request: storing must not wait for it.
        receiver.delay = delay
        receiver.listen("slow")
        assert receiver.slow_started.wait(20)
        batch_b = [d for k in range(5) for d in sequence_docs(f"b{k}")] + [single_doc("b")]
        began = time.monotonic()
        with store.transaction():
            new = store.insert_alerts(batch_b)
            notifier.enqueue(new)
        stored_in = time.monotonic() - began
        assert stored_in < delay / 5, f"storing took {stored_in:.3f}s, receiver delay {delay}s"
        _wait(lambda: receiver.requests >= 3)  # several slow attempts timed out
        # Up: everything arrives, once.
        receiver.listen("up")
        assert notifier.drain(timeout=60)
    finally:
        assert notifier.stop(timeout=timeout + 5)
    expected = _shells(batch_a) + _shells(batch_b)
    got = [p["id"] for p in receiver.received]
    assert sorted(got) == sorted(expected)
    assert len(got) == len(set(got))
    assert receiver.keys == got  # Idempotency-Key is the alert id
    deliveries = store.list_deliveries()
    assert {d.state for d in deliveries} == {"delivered"} and len(deliveries) == len(expected)
    assert all(d.attempts >= 2 for d in deliveries if d.alert_id in _shells(batch_a))
    assert store.list_dead_letters() == []
    first = next(p for p in receiver.received if p["id"] == expected[0])
    assert first["link"] == f"https://soc.example/report.html#alert-{expected[0]}"
    assert first["summary"]["source_ip"] == "10.0.0.5"
    assert (first["rule_name"], first["severity"], first["risk_score"]) == \
        ("Remote Windows Service Installed", "medium", 47)


def test_dead_letter_after_max_attempts(store: SqliteStore, receiver: Receiver) -> None:
    receiver.listen("fail")
    notifier = WebhookNotifier(store, receiver.url, timeout=2, max_attempts=3,
                               backoff_base=0.01, backoff_max=0.05, use_env_proxy=False)
    docs = sequence_docs("x")
    store.insert_alerts(docs, notify=True)
    assert notifier.drain(timeout=20)  # in this thread: no worker started
    [dead] = store.list_dead_letters()
    assert (dead.alert_id, dead.attempts, dead.last_status) == (_shells(docs)[0], 3, 500)
    assert "HTTP 500" in dead.last_error
    assert receiver.requests == 3
    # An operator fixes the receiver and replays the dead letters.
    receiver.listen("up")
    assert store.requeue_dead_letters() == 1
    assert notifier.drain(timeout=20)
    assert [p["id"] for p in receiver.received] == _shells(docs)


def test_rejected_request_is_not_retried(store: SqliteStore, receiver: Receiver) -> None:
    receiver.listen("reject")
    notifier = WebhookNotifier(store, receiver.url, max_attempts=5, backoff_base=0.01,
                               use_env_proxy=False)
    store.insert_alerts([single_doc("r")], notify=True)
    assert notifier.drain(timeout=20)
    [dead] = store.list_dead_letters()
    assert (dead.attempts, dead.last_status, receiver.requests) == (1, 400, 1)


def test_outbox_survives_a_restart(db_path: Path, receiver: Receiver) -> None:
    docs = sequence_docs("r1") + sequence_docs("r2")
    with open_store(db_path) as store:
        store.insert_alerts(docs, notify=True)  # the process then stops before sending
    receiver.listen("up")
    with open_store(db_path) as store:
        notifier = WebhookNotifier(store, receiver.url, use_env_proxy=False,
                                   poll_interval=0.1)
        with notifier:
            assert notifier.drain(timeout=20)
    assert sorted(p["id"] for p in receiver.received) == sorted(_shells(docs))


def test_stop_returns_while_receiver_is_slow(store: SqliteStore, receiver: Receiver) -> None:
    receiver.delay = 3.0
    receiver.listen("slow")
    notifier = WebhookNotifier(store, receiver.url, timeout=0.3, use_env_proxy=False)
    notifier.start()
    store.insert_alerts([single_doc("s")], notify=True)
    assert receiver.slow_started.wait(20)
    began = time.monotonic()
    assert notifier.stop(timeout=10)
    # Bounded by the request timeout, not by the receiver's delay.
    assert time.monotonic() - began < receiver.delay
    assert store.pending_notifications() == 1  # still queued for the next start


def test_payload_and_bad_urls() -> None:
    doc = single_doc("p", host="WS7", user="<!channel>")
    payload = webhook_payload(doc)
    assert payload["link"] == f"report.html#alert-{doc['kibana.alert.uuid']}"
    assert payload["summary"]["host"] == "WS7"
    assert "<!channel>" not in payload["text"] and "&lt;!channel&gt;" in payload["text"]
    with open_store(":memory:") as store:
        for url in ("file:///etc/passwd", "ftp://x/", "http://", "localhost:8080"):
            with pytest.raises(StoreError, match="webhook URL"):
                WebhookNotifier(store, url)
        notifier = WebhookNotifier(store, "http://127.0.0.1:9/")
        notifier.start()  # the worker needs its own connection: in-memory cannot
        _wait(lambda: not notifier.running)
        assert isinstance(notifier.error, StoreError)
        assert notifier.stop(1)


# Issue 13, items 9 and 22: a 404 is retried (a receiver being redeployed), a notification
# given up says so on stderr and is listed and requeued by `vigil alerts webhook`, and chat
# text never renders log content as Markdown or mentions.


def test_a_404_is_retried_until_the_receiver_is_back(store: SqliteStore,
                                                     receiver: Receiver) -> None:
    receiver.missing_for = 3
    receiver.listen("missing")
    notifier = WebhookNotifier(store, receiver.url, backoff_base=0.01, backoff_max=0.05,
                               use_env_proxy=False)
    docs = sequence_docs("m")
    store.insert_alerts(docs, notify=True)
    assert notifier.drain(timeout=20)
    assert store.list_dead_letters() == []
    assert [p["id"] for p in receiver.received] == _shells(docs)
    assert receiver.requests == 4


def test_giving_up_is_said_and_the_cli_lists_and_requeues(db_path: Path, receiver: Receiver,
                                                          capfd: pytest.CaptureFixture[str],
                                                          ) -> None:
    from tests.test_cli import vigil

    receiver.listen("fail")
    docs = sequence_docs("d")
    with open_store(db_path) as store:
        notifier = WebhookNotifier(store, receiver.url, max_attempts=2, backoff_base=0.01,
                                   backoff_max=0.02, use_env_proxy=False)
        store.insert_alerts(docs, notify=True)
        assert notifier.drain(timeout=20)
    said = capfd.readouterr().err
    assert f"webhook gave up on alert {_shells(docs)[0][:12]} after 2 attempt(s)" in said
    listed = vigil("alerts", "webhook", "list", "--store", db_path)
    assert listed.returncode == 0 and "1 dead letter(s)" in listed.stdout
    assert _shells(docs)[0][:12] in listed.stdout and "HTTP 500" in listed.stdout
    retried = vigil("alerts", "webhook", "retry", "--store", db_path)
    assert retried.returncode == 0 and "queued 1 notification(s) again" in retried.stderr
    with open_store(db_path) as store:
        assert store.list_dead_letters() == [] and store.pending_notifications() == 1


def test_chat_text_renders_no_log_markdown_or_mentions() -> None:
    hostile = "@channel ![x](http://evil.example/i.png) [click](http://evil.example) *b*"
    payload = webhook_payload(single_doc("h", host=hostile, user="`@here`\n@everyone"))
    text = payload["text"]
    outside = text.split("`")[0::2]  # the text outside inline code spans
    assert all("@" not in part and "](" not in part and "*" not in part for part in outside)
    assert "`@channel ![x](http://evil.example/i.png) [click](http://evil.example) *b*`" in text
    assert "\n" not in text
