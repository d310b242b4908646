"""`make run` (manage.py runlocal --demo): the demo works, Ctrl-C leaves nothing running, and a
second run works and duplicates nothing."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import User

from rotation.management.commands import runlocal

ROOT = Path(__file__).resolve().parents[2]
DEMO_PASSWORD = "demo-login-Passw0rd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Demo:
    def __init__(self, tmp_path: Path) -> None:
        self.web, self.aws, self.webhooks = free_port(), free_port(), free_port()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "vault.settings",
            "DEBUG": "1",
            "SECRET_KEY": "runlocal-test",
            "VAULT_ENCRYPTION_KEYS": "dGVzdC1vbmx5LWtleS0wMDAwMDAwMDAwMDAwMDAwMDA=",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
            "VAULT_DEMO_PASSWORD": DEMO_PASSWORD,
            "VAULT_RUN_DIR": str(tmp_path / "run"),
            # collectstatic writes here, not into the checkout another run may share.
            "STATIC_ROOT": str(tmp_path / "static"),
            "PORT": str(self.web),
            "AWS_EMULATOR_PORT": str(self.aws),
            "DEMO_WEBHOOK_PORT": str(self.webhooks),
            "PYTHONUNBUFFERED": "1",
        }
        self.out = tmp_path / "console.log"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runlocal", "--demo"],
            cwd=ROOT,
            env=self.env,
            stdout=self.out.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while "PAM Vault is running." not in self.console():
            assert self.proc.poll() is None, self.console()
            assert time.monotonic() < deadline, self.console()
            time.sleep(0.3)

    def console(self) -> str:
        return self.out.read_text(errors="replace")

    def ctrl_c(self) -> int:
        os.killpg(self.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        return self.proc.wait(30)


def browser(base: str):
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def csrf() -> str:
        return next(c.value for c in jar if c.name == "csrftoken")

    def get(path: str) -> str:
        return opener.open(base + path, timeout=10).read().decode()

    def post(path: str, data: dict, accept: str = "text/html") -> str:
        body = urlencode({**data, "csrfmiddlewaretoken": csrf()}).encode()
        request = urllib.request.Request(
            base + path, data=body, headers={"Referer": base + path, "Accept": accept}
        )
        return opener.open(request, timeout=10).read().decode()

    return get, post


def status_getter(base: str, get):
    """(status, body) of a GET in the browser's session, error statuses included."""

    def get_status(path: str) -> tuple[int, str]:
        try:
            return 200, get(path)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    return get_status


def processes_of(run_dir: Path) -> list[int]:
    """Processes started for this demo (they inherit its VAULT_RUN_DIR)."""
    marker = f"VAULT_RUN_DIR={run_dir}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def test_demo_rotates_and_ctrl_c_leaves_nothing_running(tmp_path):
    demo = Demo(tmp_path)
    demo.start()
    console = demo.console()
    assert console.rstrip().splitlines()[-1].strip().startswith("Stop:")  # the banner is last
    assert f"demo / {DEMO_PASSWORD}" in console
    # The demo application, the folder shared to it and how to get a secrets API credential.
    assert "“default” reads “AWS IAM Users”" in console
    assert "/aws/secretsmanager/" in console
    command = next(line for line in console.splitlines() if "API key:" in line)
    assert "pam app credential create --app default" in command

    base = f"http://127.0.0.1:{demo.web}"
    get, post = browser(base)
    get("/login/")
    home = post("/login/", {"username": "demo", "password": DEMO_PASSWORD})
    get_status = status_getter(base, get)
    folder_uid = re.search(r'href="/folders/([^/"]+)/"', home).group(1)
    folder = get(f"/folders/{folder_uid}/")
    record_uid = re.search(r'href="/records/([^/"]+)/">AWS user: bob\.deploy', folder).group(1)
    post(f"/records/{record_uid}/rotate/", {}, accept="application/json")
    deadline = time.monotonic() + 60
    while True:
        status = json.loads(get(f"/records/{record_uid}/rotation/status/"))
        if not status["active"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status["label"] == "Succeeded", status
    aws = json.load(urllib.request.urlopen(f"http://127.0.0.1:{demo.aws}/moto-api/data.json"))
    held = {u["name"]: u.get("password") for u in aws["iam"]["User"]}
    revealed = json.loads(post(f"/records/{record_uid}/reveal/", {}, accept="application/json"))
    assert revealed["password"] == held["bob.deploy"] != "Demo-Initial-Passw0rd!"

    # The banner's command gives a credential of the demo application; with it, boto3 reads
    # the rotated password from the web port's Secrets Manager endpoint.
    words = shlex.split(command.split("API key:", 1)[1])
    assigned = [w for w in words if re.fullmatch(r"[A-Z_]+=\S+", w)]  # VAULT_BASE_URL=...
    env = {**demo.env, **dict(w.split("=", 1) for w in assigned)}
    argv = [sys.executable, *words[len(assigned) + 1 :]]  # after .venv/bin/python
    made = json.loads(
        subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, check=True).stdout
    )
    assert made["endpoint_url"] == f"{base}/aws/secretsmanager/"
    import boto3

    secretsmanager = boto3.client(
        "secretsmanager",
        endpoint_url=made["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id=made["access_key_id"],
        aws_secret_access_key=made["secret_access_key"],
    )
    value = secretsmanager.get_secret_value(SecretId="AWS user: bob.deploy")
    assert json.loads(value["SecretString"])["password"] == revealed["password"]

    # The product as production runs it (DEBUG off): its own 404 page, not Django's debug page
    # listing every URL pattern; its static files served (collected, whitenoise).
    status, page = get_status("/no-such-page/")
    assert status == 404
    assert "<h1>Not found</h1>" in page and "URLconf" not in page and "tried these" not in page
    stylesheet = re.search(r'href="(/static/css/vault\.[0-9a-f]+\.css)"', page).group(1)
    assert get_status(stylesheet)[0] == 200

    assert demo.ctrl_c() == 0
    assert not listening(demo.web) and not listening(demo.aws)
    assert processes_of(tmp_path / "run") == []

    # A second run works, duplicates nothing, and gives the emulator the vault's passwords.
    demo.start()
    get, post = browser(base)
    get("/login/")
    home = post("/login/", {"username": "demo", "password": DEMO_PASSWORD})
    assert home.count(f'href="/folders/{folder_uid}/"') >= 1
    folder = get(f"/folders/{folder_uid}/")
    assert folder.count("AWS user: bob.deploy<") == 1
    aws = json.load(urllib.request.urlopen(f"http://127.0.0.1:{demo.aws}/moto-api/data.json"))
    held = {u["name"]: u.get("password") for u in aws["iam"]["User"]}
    assert held["bob.deploy"] == revealed["password"]
    assert demo.ctrl_c() == 0
    assert not listening(demo.web) and not listening(demo.aws)


# --- files that hold secrets are readable by their owner only ----------------------------------


@pytest.fixture
def loose_umask():
    """The usual umask (0644 files), so a file made private by chance would not pass."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_make_writes_env_readable_by_its_owner_only(tmp_path, loose_umask):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    result = subprocess.run(
        ["make", "--no-print-directory", ".env"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    env = (tmp_path / ".env").read_text()
    assert "VAULT_KEY_FILE=" in env
    # DEBUG stays off (the product's own error pages); a generated signing key instead.
    assert "DEBUG" not in env
    assert len(re.search(r"^SECRET_KEY=(\S+)$", env, re.M).group(1)) >= 50
    assert mode_of(tmp_path / ".env") == 0o600


@pytest.mark.django_db
def test_demo_import_file_is_readable_by_its_owner_only(tmp_path, emulator, loose_umask):
    User.objects.create_user("demo")
    command = runlocal.Command()
    command.run_dir = tmp_path / "run"
    command._import_demo(emulator.endpoint)
    demo_file = tmp_path / "run" / "demo-import.json"
    assert json.loads(demo_file.read_text())["users"]  # it holds the demo passwords
    assert mode_of(demo_file) == 0o600


@pytest.mark.django_db
def test_demo_import_file_left_readable_by_an_earlier_run_is_made_private(
    tmp_path, emulator, loose_umask
):
    User.objects.create_user("demo")
    (tmp_path / "run").mkdir()
    demo_file = tmp_path / "run" / "demo-import.json"
    demo_file.write_text("{}")
    demo_file.chmod(0o644)
    command = runlocal.Command()
    command.run_dir = tmp_path / "run"
    command._import_demo(emulator.endpoint)
    assert mode_of(demo_file) == 0o600


@pytest.mark.django_db
def test_generated_demo_password_is_kept_in_a_private_env_file(
    tmp_path, settings, monkeypatch, loose_umask
):
    settings.BASE_DIR = tmp_path
    monkeypatch.setenv("VAULT_DEMO_PASSWORD", "")  # generate one; restored afterwards
    command = runlocal.Command(stdout=io.StringIO())
    password = command._demo_login()
    env_file = tmp_path / ".env"
    assert f"VAULT_DEMO_PASSWORD={password}\n" in env_file.read_text()
    assert mode_of(env_file) == 0o600


# --- `make run` runs the product with DEBUG off -----------------------------------------------


def test_the_local_run_turns_debug_off_and_serves_plain_http_on_this_machine(tmp_path, settings):
    settings.BASE_DIR = tmp_path
    environ = {"DEBUG": "1", "VAULT_KEY_FILE": "/keys/.vault-key", "SECRET_KEY": "kept"}
    runlocal.production_environment(environ)
    assert environ == {
        "DEBUG": "0",
        "VAULT_KEY_FILE": "/keys/.vault-key",
        "SECRET_KEY": "kept",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
    }
    assert not (tmp_path / ".env").exists()


def test_the_local_run_keeps_what_the_person_set(tmp_path, settings):
    settings.BASE_DIR = tmp_path
    environ = {"SECRET_KEY": "mine", "ALLOWED_HOSTS": "vault.lan", "VAULT_ENCRYPTION_KEYS": "k"}
    runlocal.production_environment(environ)
    assert environ["ALLOWED_HOSTS"] == "vault.lan" and environ["SECRET_KEY"] == "mine"
    assert "VAULT_KEY_FILE" not in environ  # the keys given are the keys used


def test_an_env_file_from_before_gets_a_signing_key_and_keeps_its_key_file(
    tmp_path, settings, loose_umask
):
    # An .env written by an earlier `make` had DEBUG=1 and no SECRET_KEY; with DEBUG off the
    # app needs one, and the local key file DEBUG used to imply.
    settings.BASE_DIR = tmp_path
    (tmp_path / ".env").write_text("DEBUG=1\n")
    environ = {"DEBUG": "1"}
    runlocal.production_environment(environ)
    assert environ["VAULT_KEY_FILE"] == str(tmp_path / ".vault-key")
    key = environ["SECRET_KEY"]
    assert len(key) >= 50
    assert (tmp_path / ".env").read_text() == f"DEBUG=1\nSECRET_KEY={key}\n"
    assert mode_of(tmp_path / ".env") == 0o600
