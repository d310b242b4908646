"""Personas and fixtures shared by every test.

Personas (as in healthchecks' hc/test.py): in the folder "Team" the editor has `can_edit`, the
viewer has no permission beyond viewing, the manager has `manage_records` and `manage_users`;
the outsider is a member of another folder only. `anonymous` is a client with no login.
"""

from __future__ import annotations

import logging
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.emulator import ACCOUNT_ID, Emulator
from vault.models import (
    Application,
    ApplicationFolder,
    FolderMember,
    Gateway,
    PamConfiguration,
    PamUser,
    SharedFolder,
)

PASSWORD = "persona-password-1"


def make_user(username: str, **extra) -> User:
    return User.objects.create_user(username=username, password=PASSWORD, **extra)


def make_member(folder: SharedFolder, user: User, **perms) -> FolderMember:
    return FolderMember.objects.create(folder=folder, user=user, **perms)


def rotate_all_confirmed(client: Client, folder, **extra):
    """Press a folder's Rotate all and confirm it, as a browser does: the confirmation page's
    number is posted back (refused personas get no page, and post nothing confirmed)."""
    url = f"/folders/{folder.uid}/rotate-all/"
    page = client.get(url)
    found = (
        re.search(r'name="confirm" value="(\d+)"', page.content.decode())
        if page.status_code == 200
        else None
    )
    return client.post(url, {"confirm": found[1] if found else "0"}, **extra)


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def login_verified(user: User) -> Client:
    """A client signed in as after password and authenticator code (a verified session)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    client = login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def make_pam_user(folder: SharedFolder, login_name: str = "TestUser", password: str = "", **kw):
    record = PamUser(
        folder=folder,
        title=kw.pop("title", f"AWS user: {login_name}"),
        login=login_name,
        distinguished_name=kw.pop(
            "distinguished_name", f"arn:aws:iam::{ACCOUNT_ID}:user/{login_name}"
        ),
        **kw,
    )
    record.set_secret("password", password)
    record.save()
    return record


def make_configuration(folder: SharedFolder, gateway: Gateway, endpoint: str = "", **kw):
    secret = kw.pop("access_secret_key", "testing-secret")
    config = PamConfiguration(
        folder=folder,
        title=kw.pop("title", "AWS IAM Configuration"),
        gateway=gateway,
        aws_id="AWS-Dept",
        access_key_id=kw.pop("access_key_id", "testing"),
        region_names=["us-east-1"],
        endpoint_url=endpoint,
        default_rotation_schedule={"type": "ON_DEMAND"},
        **kw,
    )
    config.save()  # the uid exists before a secret is bound to it
    config.set_secret("access_secret_key", secret)
    config.save()
    return config


class Personas:
    def __init__(self) -> None:
        self.folder = SharedFolder.objects.create(name="Team")
        self.other_folder = SharedFolder.objects.create(name="Elsewhere")
        self.editor = make_user("editor")
        self.viewer = make_user("viewer")
        self.manager = make_user("manager")
        self.outsider = make_user("outsider")
        self.superuser = make_user("root", is_superuser=True, is_staff=True)
        make_member(self.folder, self.editor, can_edit=True, manage_records=True)
        make_member(self.folder, self.viewer)
        make_member(self.folder, self.manager, manage_users=True, manage_records=True)
        make_member(self.other_folder, self.outsider, can_edit=True, manage_users=True)
        self.application = Application.objects.create(name="Rotation App")
        ApplicationFolder.objects.create(application=self.application, folder=self.folder)
        self.gateway = Gateway.objects.create(name="default", application=self.application)


@pytest.fixture
def personas(db) -> Personas:
    return Personas()


@pytest.fixture
def record(personas):
    return make_pam_user(personas.folder, password="Old-Passw0rd!")


@pytest.fixture(scope="session")
def emulator_server():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = Emulator()
    yield server
    server.stop()


@pytest.fixture
def emulator(emulator_server):
    emulator_server.reset()
    return emulator_server
