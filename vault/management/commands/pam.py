"""`python manage.py pam <subcommand>`: the operator CLI.

Subcommands come from every installed app's optional `cli.py` module (see vault/cli.py for the
protocol: ``register(subparsers)``, handlers ``(options, out) -> int | None``, ``CliError``).

Errors never show a traceback (unless `--traceback`): bad input is one `pam: error: ...` line
per problem on stderr and exit status 1 (or the CliError's code); usage errors exit 2 with one
line. Called through call_command, a failure writes the same lines to the command's stderr and
raises CommandError with ``returncode`` set, so tests can check both.
"""

from __future__ import annotations

import argparse
import re
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from vault import crypto
from vault.cli import CliError, OutputHelper, iter_app_cli_modules, printable

# A uid is 22 URL-safe base64 characters and may begin with "-", which argparse would take
# for an option ("--folder -Abc..." -> "expected one argument").
UID_LIKE = re.compile(r"-[A-Za-z0-9_-]{21}")


class PamParser(CommandParser):
    """argparse usage errors as one line (with the usage folded in) and exit status 2; uids
    that begin with "-" are values, not options."""

    def _parse_optional(self, arg_string):
        if UID_LIKE.fullmatch(arg_string) and arg_string not in self._option_string_actions:
            return None
        return super()._parse_optional(arg_string)

    def error(self, message: str):
        commands = [
            name
            for action in self._actions
            if isinstance(action, argparse._SubParsersAction)
            for name in action.choices
        ]
        if "invalid choice" in message:
            hint = ""  # argparse already listed the choices
        elif commands:
            hint = f"commands: {', '.join(commands)}"
        else:
            hint = " ".join(self.format_usage().split())
        line = f"pam: error: {message}" + (f" ({hint})" if hint else "")
        if self.called_from_command_line:
            sys.stderr.write(line + "\n")
            sys.exit(2)
        raise CommandError(line, returncode=2)


def _validation_lines(exc: ValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [f"{field}: {m}" for field, msgs in exc.message_dict.items() for m in msgs]
    return list(exc.messages)


class Command(BaseCommand):
    help = "Operator CLI of the vault: import, list, get, genkey, rekey (and apps' additions)."
    requires_system_checks: list = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # BaseCommand builds a plain CommandParser; ours only changes error(), and subparsers
        # inherit the class (CommandParser.add_subparsers uses type(self)).
        parser.__class__ = PamParser
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(
            dest="pam_command",
            metavar="COMMAND",
            required=True,
            title="commands",
            parser_class=PamParser,
        )
        for module in iter_app_cli_modules():
            register = getattr(module, "register", None)
            if callable(register):
                register(subparsers)

    def handle(self, *args, **options) -> None:
        out = OutputHelper(self.stdout, self.stderr)
        func = options.get("func")
        namespace = argparse.Namespace(**options)
        try:
            if func is None:
                raise CliError(
                    f'"pam {options.get("pam_command")}" needs a subcommand (see --help)', code=2
                )
            if getattr(namespace, "unsupported", None):
                raise CliError(*namespace.unsupported)
            code = func(namespace, out) or 0
        except CliError as exc:
            self._fail(exc.messages, exc.code)
        except ValidationError as exc:
            self._fail(_validation_lines(exc), 1)
        except crypto.CryptoError as exc:
            self._fail([str(exc)], 1)
        except CommandError:
            raise
        except KeyboardInterrupt:
            self._fail(["interrupted"], 130)
        except Exception as exc:
            if options.get("traceback"):
                raise
            text = " ".join(str(exc).split())  # one line, whatever the driver's message
            self._fail([f"{type(exc).__name__}: {text} (rerun with --traceback for details)"], 1)
        else:
            if code:
                self._exit(code, "failed")

    def _fail(self, messages: list[str], code: int) -> None:
        for message in messages:
            # Messages quote input (JSON keys, values): one line each, whatever they hold.
            self.stderr.write(f"pam: error: {printable(message)}")
        self._exit(code, messages[0] if messages else "failed")

    def _exit(self, code: int, message: str) -> None:
        if self._called_from_command_line:
            sys.exit(code)
        raise CommandError(message, returncode=code)

    _called_from_command_line = False
