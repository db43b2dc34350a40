"""Webhook actions: a POST per new shell alert, never in detection's way (issue 6 part 5).

Detection only writes outbox rows, in the transaction that stores the alerts (so a crash
cannot store an alert and forget its notification, or notify an alert that was not stored).
A worker thread with its own connection sends them: one request at a time, each with a
timeout; a failure is retried with exponential backoff (with jitter, capped) until it succeeds
or ``max_attempts`` is spent, then it goes to the dead letters. The outbox is in the store, so
pending notifications survive a restart.

Delivery is at-least-once at the HTTP level: a receiver that handled a request but whose
answer never arrived (slow, connection cut) gets it again. Each request carries the alert
id as ``Idempotency-Key`` so such a receiver can drop the repeat.
"""

from __future__ import annotations

import http.client
import random
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from email.message import Message
from typing import Any

import orjson

from vigil import __version__
from vigil.store.model import AlertStore, Delivery, StoreError, alert_summary, field_text

# Answers that say the request itself is wrong (sending it again cannot help): given up at
# once. Every other failure is retried: a 404 or 403 is often a receiver being redeployed or
# a token being rotated, a 5xx or a refused connection an outage.
_PERMANENT = frozenset({400, 405, 411, 413, 414, 415, 422})
# Attempts before giving up: with the backoff capped at 10 minutes, about 18 hours.
DEFAULT_ATTEMPTS = 120
_MAX_BODY_READ = 64 * 1024


def _slack_escape(text: str) -> str:
    # Slack-style receivers read <...> as links and mentions: log text must not make any.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _chat_value(value: object) -> str:
    """A value from the logs as chat text can hold it: an inline code span, in which no
    receiver renders Markdown (``![x](http://...)`` images, ``[x](...)`` links, ``*bold*``)
    or expands mentions (``@channel``, ``@here``, ``@everyone``); backticks and line breaks
    that would end the span are replaced."""
    text = str(value).replace("`", "'").replace("\r", " ").replace("\n", " ")
    return f"`{text}`"


def webhook_payload(document: Mapping[str, Any], report_link: str = "report.html") -> dict[str, Any]:
    """The JSON body for one alert: what a responder needs to decide whether to look, and
    where to look (the alert's anchor in the HTML report). ``text`` makes the body usable as
    is by Slack/Mattermost-style incoming webhooks."""
    alert_id = str(document.get("kibana.alert.uuid", ""))
    summary = alert_summary(document)
    link = f"{report_link}#alert-{alert_id}"
    rule_name = field_text(document.get("kibana.alert.rule.name")) or ""
    severity = field_text(document.get("kibana.alert.severity")) or ""
    where = [f"on {_chat_value(summary['host'])}"] if summary.get("host") else []
    if summary.get("user"):
        where.append(f"user {_chat_value(summary['user'])}")
    if summary.get("source_ip"):
        where.append(f"from {_chat_value(summary['source_ip'])}")
    text = f"[{severity}] {_chat_value(rule_name)}"
    if where:
        text += " " + ", ".join(where)
    return {
        "id": alert_id,
        "rule_id": document.get("kibana.alert.rule.rule_id"),
        "rule_name": rule_name,
        "rule_uuid": document.get("kibana.alert.rule.uuid"),
        "severity": severity,
        "risk_score": document.get("kibana.alert.risk_score"),
        "original_time": document.get("kibana.alert.original_time"),
        "timestamp": document.get("@timestamp"),
        "reason": document.get("kibana.alert.reason"),
        "workflow_status": document.get("kibana.alert.workflow_status"),
        "summary": summary,
        "link": link,
        "text": _slack_escape(f"{text} at {document.get('kibana.alert.original_time')} "
                              f"({link})"),
    }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected POST would be replayed as a GET by urllib: treat it as a failure."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Message, newurl: str) -> urllib.request.Request | None:
        return None


class WebhookNotifier:
    """Sends the store's webhook outbox to ``url`` from a background thread.

    ``store`` is the caller's store (its thread): ``enqueue`` writes through it, joining the
    caller's open transaction if any, and the worker is woken when that commits. The worker
    opens its own connection (``store.reopen()``).
    """

    def __init__(self, store: AlertStore, url: str, *, timeout: float = 10.0,
                 max_attempts: int = DEFAULT_ATTEMPTS, backoff_base: float = 2.0,
                 backoff_max: float = 600.0,
                 report_link: str = "report.html", headers: Mapping[str, str] | None = None,
                 use_env_proxy: bool = True, poll_interval: float = 1.0,
                 seed: int | None = None) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise StoreError(f"webhook URL {url!r}: expected http:// or https://host/...")
        if timeout <= 0 or max_attempts < 1 or backoff_base < 0 or backoff_max < 0:
            raise StoreError("webhook: timeout must be > 0, max_attempts >= 1, backoff >= 0")
        self.url = url
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.report_link = report_link
        self.poll_interval = poll_interval
        self._headers = dict(headers or {})
        self._store = store
        self._random = random.Random(seed)
        # A lease longer than one request: another worker on the store waits it out.
        self._lease = timeout * 2 + 5.0
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if not use_env_proxy:
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # ------------------------------------------------------------ caller's side

    def enqueue(self, alerts: Iterable[Mapping[str, Any] | str]) -> int:
        """Queue notifications for these alerts (documents or ids); building blocks and
        alerts already queued once are skipped. Returns at once: nothing is sent here."""
        ids = [a if isinstance(a, str) else str(a.get("kibana.alert.uuid", "")) for a in alerts]
        return self._store.enqueue_notifications([i for i in ids if i])

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._error = None
        # Woken when the caller's transactions commit: new outbox rows are sent at once.
        self._store.add_commit_listener(self.wake)
        self._thread = threading.Thread(target=self._run, name="vigil-webhook", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Ask the worker to stop after the request in flight; True if it has stopped.
        What it has not sent stays in the outbox for the next start."""
        self._stop.set()
        self._wake.set()
        self._store.remove_commit_listener(self.wake)
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def error(self) -> BaseException | None:
        """What stopped the worker, if it died (a store error, say)."""
        return self._error

    def drain(self, timeout: float) -> bool:
        """Wait until no notification is pending (all delivered or dead-lettered), at most
        ``timeout`` seconds; True if the outbox emptied. Without a started worker, does the
        work in this thread (a one-shot run: detect, notify, exit)."""
        deadline = time.monotonic() + timeout
        if self.running:
            self._wake.set()
            while self._store.pending_notifications():
                if time.monotonic() >= deadline or not self.running:
                    return False
                time.sleep(0.02)
            return True
        while True:
            if self._step(self._store):
                continue
            due = self._store.next_notification_due()
            if due is None:
                return True
            pause = due - time.time()
            if time.monotonic() + max(pause, 0) >= deadline:
                return False
            if pause > 0:
                time.sleep(pause)

    def __enter__(self) -> WebhookNotifier:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(self.timeout + 5.0)

    # ------------------------------------------------------------ worker

    def _run(self) -> None:
        try:
            store = self._store.reopen()
        except BaseException as error:  # recorded for the owner; the thread ends
            self._error = error
            return
        try:
            while not self._stop.is_set():
                # Clear before looking, so a wake during the look is not lost.
                self._wake.clear()
                if self._step(store):
                    continue
                due = store.next_notification_due()
                pause = self.poll_interval if due is None else due - time.time()
                self._wake.wait(min(max(pause, 0.0), self.poll_interval))
        except BaseException as error:
            self._error = error
        finally:
            store.close()

    def _step(self, store: AlertStore) -> bool:
        """Send one due notification; False when none is due."""
        claimed = store.claim_notifications(1, self._lease)
        if not claimed:
            return False
        self._deliver(store, claimed[0])
        return True

    def _retry_at(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.backoff_base * 2.0 ** min(attempt - 1, 60), self.backoff_max)
        delay *= self._random.uniform(0.5, 1.0)  # jitter: many alerts do not retry in step
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max))
        return time.time() + delay

    def _deliver(self, store: AlertStore, delivery: Delivery) -> None:
        alert = store.get_alert(delivery.alert_id)
        if alert is None:
            store.record_failure(delivery.id, "the alert is no longer in the store", None,
                                 retry_at=None)
            return
        body = orjson.dumps(webhook_payload(alert.document, self.report_link), default=str)
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json",
            "User-Agent": f"vigil/{__version__}",
            "Idempotency-Key": delivery.alert_id,
            **self._headers,
        })
        status: int | None = None
        retry_after: float | None = None
        permanent = False
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = int(response.status)
                response.read(_MAX_BODY_READ)
            store.record_delivery(delivery.id, status)
            return
        except urllib.error.HTTPError as failure:
            status = failure.code
            error = f"HTTP {failure.code} {failure.reason}"
            retry_after = _retry_after(failure.headers.get("Retry-After"))
            permanent = status in _PERMANENT
            failure.close()
        except (OSError, http.client.HTTPException, ValueError) as failure:
            reason = failure.reason if isinstance(failure, urllib.error.URLError) else failure
            error = f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
        attempt = delivery.attempts + 1
        give_up = permanent or attempt >= self.max_attempts
        store.record_failure(delivery.id, error[:500], status,
                             retry_at=None if give_up else self._retry_at(attempt, retry_after))
        if give_up:
            # Never silent: the operator learns at once, and `vigil alerts webhook retry`
            # queues it again.
            print(f"vigil: webhook gave up on alert {delivery.alert_id[:12]} after {attempt} "
                  f"attempt(s): {error[:200]} (see: vigil alerts webhook list)",
                  file=sys.stderr, flush=True)


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare for webhooks and ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
