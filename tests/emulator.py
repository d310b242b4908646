"""A real AWS-compatible HTTP endpoint for tests: moto's server, plus helpers to seed it.

Tests (not the app) may use boto3 directly to arrange the emulator; the app reaches AWS only
through rotation/aws.py.
"""

from __future__ import annotations

import json
import urllib.request

import boto3
from moto.server import ThreadedMotoServer

ACCOUNT_ID = "123456789012"


class Emulator:
    def __init__(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self._iam = None

    def stop(self) -> None:
        self.server.stop()

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).read()

    def iam(self):
        # One client per emulator: making one costs about 15 ms, and tests ask for it often.
        if self._iam is None:
            self._iam = self._new_iam()
        return self._iam

    def _new_iam(self):
        return boto3.client(
            "iam",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def create_user(self, name: str, password: str | None = "Initial-Passw0rd!") -> str:
        iam = self.iam()
        arn = iam.create_user(UserName=name)["User"]["Arn"]
        if password is not None:
            iam.create_login_profile(UserName=name, Password=password)
        return arn

    def passwords(self) -> dict[str, str | None]:
        """The console password AWS really holds, per user name."""
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=10) as resp:
            data = json.load(resp)
        return {user["name"]: user.get("password") for user in data["iam"].get("User", [])}
