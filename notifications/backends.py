"""An email backend that appends each mail to one mbox file (`EMAIL_URL=mbox:///path/mail.log`):
what `make run` uses for run/mail.log, readable with any mail reader or Python's `mailbox`.

Django's own file backend (`filemail://DIR`) writes one file per connection into a directory;
a single growing file is easier to follow with `tail -f`.
"""

from __future__ import annotations

import mailbox
import threading
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend

_lock = threading.Lock()


class MboxBackend(BaseEmailBackend):
    def __init__(self, *args, file_path: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.path = Path(file_path or settings.EMAIL_FILE_PATH)

    def send_messages(self, email_messages) -> int:
        if not email_messages:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _lock:
            box = mailbox.mbox(self.path)
            # Another process (a second gateway) may append at the same time: mbox's lock.
            box.lock()
            try:
                for message in email_messages:
                    box.add(message.message())
                box.flush()
            finally:
                box.unlock()
                box.close()
        return len(email_messages)
