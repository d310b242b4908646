"""The admin console names the vault's models as the vault's pages do ("PAM Users", not
"Pam users")."""

from __future__ import annotations

import pytest

from tests.conftest import login_verified

pytestmark = pytest.mark.django_db


def test_admin_index_says_pam_users_and_configurations(personas):
    html = login_verified(personas.superuser).get("/admin/").content.decode()
    for label in ("PAM Users", "PAM Configurations", "Shared Folders", "Password history"):
        assert f">{label}<" in html, label
    for bad in ("Pam users", "Pam configurations", "Password versions"):
        assert bad not in html, bad
