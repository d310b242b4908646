"""`make run` / `make serve`: the whole product on one machine, stopped cleanly by Ctrl-C.

--demo also starts a local AWS emulator (moto's server), seeds it with demo IAM users, allows its
address in AWS_ENDPOINT_ALLOWLIST for this run and imports a demo folder pointing at it. Every child runs in its own process group and is stopped with
SIGTERM, then SIGKILL after a grace period (django-q2 can hang after "stopping").

The web app and the gateway run as production runs them, with DEBUG off (the product's own error
pages, collected static files served by whitenoise), over plain HTTP on 127.0.0.1: see
production_environment.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from rotation import aws
from vault.models import FolderMember, Gateway, PamUser, SharedFolder
from vault.services import FULL_PERMISSIONS, gateway_get_or_create

DEMO_FILE = Path(__file__).resolve().parents[2] / "fixtures" / "demo.json"
DEMO_FOLDER = "AWS IAM Users"
INITIAL_PASSWORD = "Demo-Initial-Passw0rd!"
# The demo account's password policy, as an administrator would set it.
DEMO_POLICY = {
    "MinimumPasswordLength": 20,
    "RequireUppercaseCharacters": True,
    "RequireLowercaseCharacters": True,
    "RequireNumbers": True,
    "RequireSymbols": True,
}


# The web app listens on 127.0.0.1 over plain HTTP: production's HTTPS-only defaults (secure
# cookies, the redirect to https, HSTS) would lock the browser out. A value set in the
# environment or .env wins.
LOCAL_HTTP = {
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "0",
    "SESSION_COOKIE_SECURE": "0",
    "CSRF_COOKIE_SECURE": "0",
    "SECURE_HSTS_SECONDS": "0",
}


def production_environment(environ) -> None:
    """Make `environ` (what the children inherit) run the product with DEBUG off, as production
    does, on this machine: never Django's debug pages, which list every URL pattern and show
    request data. What DEBUG gave a local run is given explicitly instead: plain HTTP on
    127.0.0.1 (LOCAL_HTTP), the local key file when no key is set, and a signing key, generated
    once and kept in .env (0600) when there is none (an .env from before had DEBUG=1 instead)."""
    environ["DEBUG"] = "0"
    for name, value in LOCAL_HTTP.items():
        environ.setdefault(name, value)
    if not environ.get("VAULT_ENCRYPTION_KEYS", "").strip() and not environ.get("VAULT_KEY_FILE"):
        environ["VAULT_KEY_FILE"] = str(Path(settings.BASE_DIR) / ".vault-key")
    if not environ.get("SECRET_KEY"):
        key = secrets.token_urlsafe(50)
        write_private(Path(settings.BASE_DIR) / ".env", f"SECRET_KEY={key}\n", append=True)
        environ["SECRET_KEY"] = key


def _interrupt(signum, frame) -> None:
    """SIGTERM stops the demo the same way Ctrl-C does."""
    raise KeyboardInterrupt


def _env_port(name: str, default: int) -> int:
    text = os.environ.get(name, "")
    if not text:
        return default
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise CommandError(f"{name}={text!r} is not a port number (1-65535)")
    return int(text)


def write_private(path: Path, text: str, *, append: bool = False) -> None:
    """Write `text` to a file only its owner may read or write (0600): these files hold
    passwords. The mode given to os.open applies only to a new file (and the umask cannot
    widen it); fchmod also tightens one an earlier version left readable by everyone."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fd, 0o600)
        fh.write(text)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Command(BaseCommand):
    help = "Run the web app and the default gateway (with --demo: also a local AWS emulator)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--demo", action="store_true", help="emulator and demo data")
        parser.add_argument("--port", type=int, help="web port (default: PORT or 8000)")
        parser.add_argument(
            "--emulator-port", type=int, help="emulator port (default: AWS_EMULATOR_PORT or 5055)"
        )

    def handle(self, *args, demo: bool, port: int, emulator_port: int, **options) -> None:
        port = port or _env_port("PORT", 8000)
        emulator_port = emulator_port or _env_port("AWS_EMULATOR_PORT", 5055)
        webhook_port = _env_port("DEMO_WEBHOOK_PORT", 5056)
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.run_dir = Path(os.environ.get("VAULT_RUN_DIR", Path(settings.BASE_DIR) / "run"))
        ports = {port: "PORT"}
        if demo:
            ports.update({emulator_port: "AWS_EMULATOR_PORT", webhook_port: "DEMO_WEBHOOK_PORT"})
        for busy, setting in ports.items():
            if _port_open(busy):
                raise CommandError(
                    f"port {busy} is already in use; stop what listens there or set "
                    f"{setting} to another port"
                )
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            call_command("migrate", interactive=False, verbosity=0)
            password = self._demo_login() if demo else None
            if demo:
                endpoint = self._start_emulator(emulator_port)
                self._allow_endpoint(endpoint)
                self._import_demo(endpoint)
                self._demo_webhook(webhook_port)
            production_environment(os.environ)
            self._mail_environment(port)
            self._collect_static()
            gateway_log = self._log("gateway-default.log")
            # `pam gateway run` refuses a gateway that does not exist (a fresh `make serve`).
            gateway_get_or_create(name="default")
            self._start(
                "gateway default",
                [sys.executable, "manage.py", "pam", "gateway", "run", "default"],
                log=gateway_log,
            )
            self._start(
                "web",
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "vault.wsgi",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "2",
                    "--access-logfile",
                    "-",
                    "--log-level",
                    "warning",
                ],
                log=self._log("web.log"),
            )
            self._wait_for_port(port, "web")
            self._wait_for_log(gateway_log, "running.", "gateway default")
            self._banner(port, password, emulator_port if demo else None)
            self._watch()
        except KeyboardInterrupt:
            pass
        finally:
            # A second Ctrl-C must not cut the shutdown short and leave children running.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.stdout.write("\nStopping (this takes a few seconds) ...")
            self._stop_all()

    # --- processes -------------------------------------------------------------------------

    def _start(self, name: str, argv: list[str], log: Path | None = None) -> subprocess.Popen:
        out = log.open("ab") if log else None
        proc = subprocess.Popen(
            argv, cwd=settings.BASE_DIR, start_new_session=True, stdout=out, stderr=out
        )
        self.children.append((name, proc))
        return proc

    def _mail_environment(self, port: int) -> None:
        """Mail (notifications) goes to run/mail.log, an mbox file, unless EMAIL_URL is set; its
        links name this web app. The gateway sends it, so this is set before it starts."""
        if not os.environ.get("EMAIL_URL"):
            os.environ["EMAIL_URL"] = f"mbox://{self._log('mail.log')}"
        os.environ.setdefault("VAULT_BASE_URL", f"http://127.0.0.1:{port}")

    def _collect_static(self) -> None:
        """With DEBUG off whitenoise serves the collected, hashed files (STATIC_ROOT): collect
        them, in a process with the children's settings (this one may have read DEBUG=1)."""
        done = subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise CommandError("collectstatic failed:\n" + "\n".join(lines))

    def _log(self, name: str) -> Path:
        """A fresh log file under run/ (git-ignored): the console stays for what to do next."""
        log = self.run_dir / name
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"")
        return log

    def _wait_for_log(self, log: Path, text: str, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in log.read_text(errors="replace"):
                return
            self._check_children()
            time.sleep(0.2)
        raise CommandError(f"{name} did not start within {timeout:g} s; see {log}")

    def _wait_for_port(self, port: int, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _port_open(port):
                return
            self._check_children()
            time.sleep(0.2)
        raise CommandError(f"{name} did not start listening on port {port}")

    def _check_children(self) -> None:
        for name, proc in self.children:
            if proc.poll() is not None:
                raise CommandError(f"{name} stopped unexpectedly (exit status {proc.returncode})")

    def _watch(self) -> None:
        while True:
            self._check_children()
            time.sleep(0.5)

    def _stop_all(self) -> None:
        for _, proc in self.children:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for _name, proc in self.children:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if self.children:
            self.stdout.write("Stopped: " + ", ".join(name for name, _ in self.children))

    # --- demo ------------------------------------------------------------------------------

    def _demo_login(self) -> str:
        """The `demo` user; its password from VAULT_DEMO_PASSWORD or generated and kept in .env."""
        password = os.environ.get("VAULT_DEMO_PASSWORD", "")
        if not password:
            password = secrets.token_urlsafe(12)
            env_file = Path(settings.BASE_DIR) / ".env"
            write_private(env_file, f"VAULT_DEMO_PASSWORD={password}\n", append=True)
            os.environ["VAULT_DEMO_PASSWORD"] = password
            self.stdout.write(f"Generated a password for the demo login (kept in {env_file}).")
        user, _ = User.objects.get_or_create(username="demo")
        if not user.email:  # notifications of the demo folder are mailed to it (run/mail.log)
            user.email = "demo@localhost"
            user.save(update_fields=["email"])
        if not user.check_password(password):
            user.set_password(password)
            user.save()
        return password

    def _start_emulator(self, port: int) -> str:
        moto = Path(sys.executable).with_name("moto_server")
        log = self._log("aws-emulator.log")
        self._start("AWS emulator", [str(moto), "-H", "127.0.0.1", "-p", str(port)], log=log)
        self._wait_for_port(port, "AWS emulator")
        return f"http://127.0.0.1:{port}"

    def _allow_endpoint(self, endpoint: str) -> None:
        """The demo configuration names the local emulator, which AWS_ENDPOINT_ALLOWLIST does not
        allow by default: allow exactly it (scheme, host and port), here for `pam import` and in
        the environment the gateway and the web server inherit."""
        allowed = [*settings.AWS_ENDPOINT_ALLOWLIST, endpoint]
        settings.AWS_ENDPOINT_ALLOWLIST = allowed
        os.environ["AWS_ENDPOINT_ALLOWLIST"] = ",".join(allowed)

    def _import_demo(self, endpoint: str) -> None:
        demo = json.loads(DEMO_FILE.read_text())
        data = demo["import"]
        for config in data["configurations"]:
            config["endpoint_url"] = endpoint
        demo_file = self.run_dir / "demo-import.json"
        demo_file.parent.mkdir(parents=True, exist_ok=True)
        write_private(demo_file, json.dumps(data, indent=2))  # it holds the demo passwords
        call_command(
            "pam", "import", str(demo_file), "--owner", "demo", stdout=open(os.devnull, "w")
        )
        with transaction.atomic():
            folder = SharedFolder.objects.get(name=DEMO_FOLDER)
            demo_user = User.objects.get(username="demo")
            FolderMember.objects.update_or_create(
                folder=folder, user=demo_user, defaults=FULL_PERMISSIONS
            )
        self._seed_emulator(endpoint, demo["emulator_users"], folder)

    def _demo_webhook(self, port: int) -> None:
        """The demo folder's webhook: rotations' outcomes, signed, to a local receiver that
        logs each delivery and whether its signature verified (run/webhooks.log). Its loopback
        address is allowed for this run only (WEBHOOK_URL_ALLOWLIST, inherited by the gateway
        that delivers). Made once; its secret, shown once, is kept in run/webhook-secret."""
        url = f"http://127.0.0.1:{port}/"
        allowed = [*settings.WEBHOOK_URL_ALLOWLIST, f"http://127.0.0.1:{port}"]
        settings.WEBHOOK_URL_ALLOWLIST = allowed
        os.environ["WEBHOOK_URL_ALLOWLIST"] = ",".join(allowed)
        secret_file = self.run_dir / "webhook-secret"
        listed = io.StringIO()
        call_command("pam", "webhook", "list", "--format", "json", stdout=listed)
        ours = [w["uid"] for w in json.loads(listed.getvalue()) if w["url"] == url]
        if not ours or not secret_file.exists():
            for uid in ours:  # its secret is lost: make a new one
                call_command("pam", "webhook", "remove", uid, stdout=io.StringIO())
            added = io.StringIO()
            call_command(
                "pam", "webhook", "add", "--url", url, "--folder", DEMO_FOLDER,
                "--events", "rotation.succeeded,rotation.failed,rotation.may_be_live",
                stdout=added,
            )  # fmt: skip
            write_private(secret_file, json.loads(added.getvalue())["secret"])
        receiver = [sys.executable, "-m", "webhooks.demo_receiver", str(port)]
        receiver += [str(self._log("webhooks.log")), str(secret_file)]
        self._start("webhook receiver", receiver)
        self._wait_for_port(port, "webhook receiver")

    def _seed_emulator(self, endpoint: str, users: list[dict], folder: SharedFolder) -> None:
        """The emulator forgets everything when it stops; give each user back the password the
        vault holds, so vault and emulator agree from the first minute."""
        held = {r.login: r.get_secret("password") for r in PamUser.objects.filter(folder=folder)}
        console = {
            u["login"]: (held.get(u["login"]) or INITIAL_PASSWORD) if u["console"] else None
            for u in users
        }
        aws.emulator_seed(endpoint, console_passwords=console, password_policy=DEMO_POLICY)

    def _demo_application_lines(self, port: int) -> list[str]:
        """The banner's lines on the demo application (the default gateway's, named by the
        import, which shares the demo folder to it): software reads the folder's records
        through the Secrets Manager-compatible API (docs/secrets-api.md) with a credential
        that `pam app credential create` prints."""
        gateway = Gateway.objects.select_related("application").filter(name="default").first()
        if gateway is None or gateway.application is None:
            return []
        app = gateway.application.name
        folders = ", ".join(f"“{f.name}”" for f in gateway.application.folders.order_by("name"))
        # The CLI prints its endpoint_url from VAULT_BASE_URL (this run's is the web port's).
        base = "" if port == 8000 else f"VAULT_BASE_URL=http://127.0.0.1:{port} "
        command = (
            f"{base}.venv/bin/python manage.py pam app credential create --app {shlex.quote(app)}"
        )
        return [
            f"  App:       “{app}” reads {folders or 'no folder yet'} through the Secrets "
            f"Manager API at http://127.0.0.1:{port}/aws/secretsmanager/",
            f"  API key:   {command}",
        ]

    def _banner(self, port: int, password: str | None, emulator_port: int | None) -> None:
        lines = ["", "PAM Vault is running.", f"  Open:      http://127.0.0.1:{port}/"]
        if password is not None:
            lines.append("  Log in:    demo / " + password)
        else:
            lines.append(
                "  Log in:    with an account from `.venv/bin/python manage.py createsuperuser`"
            )
        if emulator_port is not None:
            lines.append(f"  AWS:       local emulator at http://127.0.0.1:{emulator_port}")
            lines.append(f"  Webhooks:  the demo folder's, logged in {self.run_dir}/webhooks.log")
            lines += self._demo_application_lines(port)
        mail = os.environ.get("EMAIL_URL", "")
        if mail.startswith("mbox://"):  # the default here (never a URL with a password)
            lines.append(f"  Mail:      {mail.removeprefix('mbox://')}")
        lines.append(f"  Logs:      {self.run_dir}/")
        lines.append("  Stop:      Ctrl-C")
        self.stdout.write("\n".join(lines))
        self.stdout.flush()
