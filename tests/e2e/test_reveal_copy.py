"""Reveal and Copy on a PAM User page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import make_pam_user
from tests.e2e.conftest import log_in
from vault.models import PamUser

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "Old-Passw0rd!"

# The page's main content with the copy confirmation left out: what copying must not change.
MAIN_WITHOUT_COPY_NOTE = """() => {
  const main = document.querySelector("main").cloneNode(true);
  main.querySelectorAll(".copy-status").forEach((el) => { el.textContent = ""; });
  // The auto-hide countdown (static/js/reveal.js) ticks on its own.
  main.querySelectorAll(".auto-hide-note").forEach((el) => { el.textContent = ""; });
  return main.innerHTML;
}"""


def _copy(page: Page) -> None:
    before = page.evaluate(MAIN_WITHOUT_COPY_NOTE)
    page.get_by_role("button", name="Copy", exact=True).click()
    note = page.locator(".secret-actions .copy-status")
    expect(note).to_have_text("Copied")
    expect(note).to_be_visible()
    expect(page.get_by_role("button", name="Copy", exact=True)).to_be_enabled()
    assert page.evaluate(MAIN_WITHOUT_COPY_NOTE) == before
    assert page.evaluate("() => navigator.clipboard.readText()") == PASSWORD


def test_copy_confirms_visibly_and_changes_nothing_else_then_reveal_shows_the_same(
    browsing, live_server, personas
):
    record = make_pam_user(personas.folder, "CopiedUser", password=PASSWORD)
    page = browsing.new_page(permissions=["clipboard-read", "clipboard-write"])
    log_in(page, "editor")
    page.goto(f"/records/{record.uid}/")

    _copy(page)
    expect(page.locator("#password-value")).to_have_text("••••••••")

    page.get_by_role("button", name="Reveal", exact=True).click()
    expect(page.locator("#password-value")).to_have_text(PASSWORD)

    _copy(page)
    expect(page.locator("#password-value")).to_have_text(PASSWORD)


def test_copy_of_an_undecryptable_password_says_why(browsing, live_server, personas):
    record = make_pam_user(personas.folder, "TamperedUser", password=PASSWORD)
    # Another valid-looking ciphertext under the same key id, sealed for nothing: AES-GCM
    # refuses it, as it would a tampered value.
    other = make_pam_user(personas.other_folder, "Elsewhere", password=PASSWORD)
    PamUser.objects.filter(pk=record.pk).update(password_enc=other.password_enc)
    page = browsing.new_page(permissions=["clipboard-read", "clipboard-write"])
    log_in(page, "editor")
    page.goto(f"/records/{record.uid}/")
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.locator(".secret-actions .copy-status")).to_have_text(
        re.compile("^The stored password cannot be decrypted, so it was not revealed.")
    )
