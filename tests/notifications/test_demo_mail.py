"""`make run`: a rotation that fails in the demo (legacy-svc has no console access) is mailed to
the demo login, in run/mail.log (an mbox file), and sent, signed, to the demo folder's webhook
(its receiver logs run/webhooks.log), by the gateway's worker."""

from __future__ import annotations

import json
import mailbox
import re
import time
from email.header import decode_header, make_header

from tests.rotation.test_runlocal import DEMO_PASSWORD, Demo, browser

RECORD_LINK = re.compile(r'href="/records/([^/"]+)/">AWS user: legacy-svc')


def _wait_for_mail(path, timeout: float = 120.0) -> list:
    # The outbox is delivered at the gateway's tick: once a minute.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size:
            found = list(mailbox.mbox(path))
            if found:
                return found
        time.sleep(1)
    raise AssertionError(f"no mail in {path} after {timeout:g} s")


def _wait_for_line(path, text: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in (path.read_text() if path.exists() else "").splitlines()]
        found = [line for line in found if text in line]
        if found:
            return found[0]
        time.sleep(1)
    raise AssertionError(f"no line with {text!r} in {path} after {timeout:g} s")


def test_a_failed_rotation_in_the_demo_is_mailed_and_sent_to_the_webhook(tmp_path):
    demo = Demo(tmp_path)
    demo.start()
    try:
        base = f"http://127.0.0.1:{demo.web}"
        get, post = browser(base)
        get("/login/")
        home = post("/login/", {"username": "demo", "password": DEMO_PASSWORD})
        folder_uid = re.search(r'href="/folders/([^/"]+)/"', home).group(1)
        record_uid = RECORD_LINK.search(get(f"/folders/{folder_uid}/")).group(1)
        post(f"/records/{record_uid}/rotate/", {}, accept="application/json")
        deadline = time.monotonic() + 60
        while True:
            status = json.loads(get(f"/records/{record_uid}/rotation/status/"))
            if not status["active"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert status["label"] == "Failed", status
        [message] = _wait_for_mail(tmp_path / "run" / "mail.log")
        # Delivered in the same gateway tick; the receiver checks the signature itself.
        delivery = _wait_for_line(tmp_path / "run" / "webhooks.log", "rotation.failed")
    finally:
        demo.ctrl_c()
    assert message["To"] == "demo@localhost"
    subject = " ".join(str(make_header(decode_header(message["Subject"]))).split())
    assert "legacy-svc" in subject and "failed" in subject, subject
    body = message.get_payload(decode=True).decode()
    assert f"{base}/records/{record_uid}/" in body
    assert DEMO_PASSWORD not in message.as_string()
    assert "signature verified" in delivery and record_uid in delivery, delivery
    assert DEMO_PASSWORD not in delivery
