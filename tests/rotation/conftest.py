from __future__ import annotations

import pytest

from rotation import aws
from rotation.models import RotationSettings
from tests.conftest import make_configuration, make_pam_user


@pytest.fixture(autouse=True)
def _fresh_aws_caches():
    aws.clear_caches()
    yield
    aws.clear_caches()


def make_settings(record, config, schedule=None, **kw) -> RotationSettings:
    return RotationSettings.objects.create(
        pam_user=record,
        configuration=config,
        schedule=schedule or {"type": "ON_DEMAND"},
        length=kw.pop("length", 24),
        min_upper=kw.pop("min_upper", 2),
        min_lower=kw.pop("min_lower", 2),
        min_digits=kw.pop("min_digits", 2),
        min_symbols=kw.pop("min_symbols", 2),
        **kw,
    )


class AwsWorld:
    """A configuration pointing at the emulator and PAM Users that exist there."""

    def __init__(self, personas, emulator, endpoint: str | None = None) -> None:
        self.personas = personas
        self.emulator = emulator
        self.config = make_configuration(
            personas.folder, personas.gateway, endpoint=endpoint or emulator.endpoint
        )

    def user(self, login: str = "TestUser", console: bool = True, schedule=None, **kw):
        self.emulator.create_user(login, password="Initial-Passw0rd!" if console else None)
        record = make_pam_user(self.personas.folder, login, password="Initial-Passw0rd!")
        make_settings(record, self.config, schedule=schedule, **kw)
        return record

    def aws_password(self, login: str) -> str | None:
        return self.emulator.passwords().get(login)


@pytest.fixture
def world(personas, emulator) -> AwsWorld:
    return AwsWorld(personas, emulator)
