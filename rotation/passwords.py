"""Password generation for rotations: the record's complexity plus the AWS account policy.

Pure module (no Django): rotation/models.py imports AWS_SYMBOLS from here. Randomness comes
from `secrets` only.

Complexity, as Keeper Commander writes it: "length,upper,lower,digits,symbols[,SYMBOLS]", e.g.
"32,5,5,5,5" or "20,2,2,2,2,!@#$". The symbol set is everything after the fifth comma, so it may
itself contain commas.

The account policy (IAM GetAccountPasswordPolicy) can only make a password stronger: its
minimum length raises the length, each Require* flag asks for at least one character of that
class, and symbols then come from AWS's own symbol set, the only characters AWS counts as
symbols. When the minimums no longer fit, the length grows to fit them, up to AWS's 128.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, replace

__all__ = [
    "AWS_SYMBOLS",
    "MIN_LENGTH",
    "MAX_LENGTH",
    "Complexity",
    "ComplexityError",
    "AccountPolicy",
    "parse_complexity",
    "validate_complexity",
    "effective_complexity",
    "generate_password",
]

AWS_SYMBOLS = "!@#$%^&*()_+-=[]{}|'"
MIN_LENGTH = 8
MAX_LENGTH = 128  # IAM console passwords are 1 to 128 characters
_FORMAT = '"length,upper,lower,digits,symbols[,SYMBOLS]", e.g. "32,5,5,5,5"'
_NUMBER_RE = re.compile(r"^\d{1,6}$")
_PUNCTUATION = frozenset(string.punctuation)  # printable ASCII, not letters, digits or space


class ComplexityError(ValueError):
    """An unusable complexity; `field` names the offending field (or None), for form errors.

    Fields: "length", "min_upper", "min_lower", "min_digits", "min_symbols", "symbols".
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Complexity:
    length: int = 32
    min_upper: int = 5
    min_lower: int = 5
    min_digits: int = 5
    min_symbols: int = 5
    symbols: str = AWS_SYMBOLS

    @property
    def minimums(self) -> int:
        return self.min_upper + self.min_lower + self.min_digits + self.min_symbols

    def as_text(self) -> str:
        """Keeper's form, the inverse of parse_complexity."""
        return (
            f"{self.length},{self.min_upper},{self.min_lower},{self.min_digits},"
            f"{self.min_symbols},{self.symbols}"
        )


@dataclass(frozen=True)
class AccountPolicy:
    """The parts of an AWS account password policy that shape a generated password."""

    minimum_length: int = 0
    require_upper: bool = False
    require_lower: bool = False
    require_digits: bool = False
    require_symbols: bool = False

    @classmethod
    def from_aws(cls, policy: dict | None) -> AccountPolicy:
        """From GetAccountPasswordPolicy's `PasswordPolicy` (or the whole response).

        None (the account has no custom policy: NoSuchEntity) gives a policy that asks nothing.
        """
        if not policy:
            return cls()
        policy = policy.get("PasswordPolicy", policy)
        length = policy.get("MinimumPasswordLength") or 0
        return cls(
            minimum_length=length
            if isinstance(length, int) and not isinstance(length, bool)
            else 0,
            require_upper=policy.get("RequireUppercaseCharacters") is True,
            require_lower=policy.get("RequireLowercaseCharacters") is True,
            require_digits=policy.get("RequireNumbers") is True,
            require_symbols=policy.get("RequireSymbols") is True,
        )

    def describe(self) -> str:
        parts = []
        if self.minimum_length:
            parts.append(f"MinimumPasswordLength {self.minimum_length}")
        flags = (
            (self.require_upper, "RequireUppercaseCharacters"),
            (self.require_lower, "RequireLowercaseCharacters"),
            (self.require_digits, "RequireNumbers"),
            (self.require_symbols, "RequireSymbols"),
        )
        parts += [name for on, name in flags if on]
        return ", ".join(parts) or "no requirements"


def parse_complexity(text: str) -> Complexity:
    """Parse Keeper's "length,upper,lower,digits,symbols[,SYMBOLS]" and validate it."""
    if not isinstance(text, str) or not text.strip():
        raise ComplexityError(f"Give the password complexity as {_FORMAT}.")
    parts = text.split(",", 5)
    if len(parts) < 5:
        raise ComplexityError(
            f'The password complexity "{text}" has {len(parts)} of its 5 numbers; use {_FORMAT}.'
        )
    names = ("length", "min_upper", "min_lower", "min_digits", "min_symbols")
    numbers = []
    for name, part in zip(names, parts[:5], strict=True):
        if not _NUMBER_RE.match(part.strip()):
            raise ComplexityError(
                f'"{part.strip()}" in the password complexity is not a whole number from 0 to '
                f"{MAX_LENGTH}; use {_FORMAT}.",
                name,
            )
        numbers.append(int(part.strip()))
    # Spaces are never symbols, so surrounding whitespace is only formatting.
    symbols = parts[5].strip() if len(parts) == 6 else AWS_SYMBOLS
    complexity = Complexity(*numbers, symbols=symbols)
    validate_complexity(complexity)
    return complexity


def validate_complexity(c: Complexity) -> None:
    """Raise ComplexityError (with the field at fault) unless a password can meet `c`."""
    for name in ("length", "min_upper", "min_lower", "min_digits", "min_symbols"):
        value = getattr(c, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ComplexityError(
                f"{name.replace('_', ' ').capitalize()} must be a whole number.", name
            )
        if value < 0:
            raise ComplexityError(
                f"{name.replace('_', ' ').capitalize()} cannot be negative.", name
            )
    if not MIN_LENGTH <= c.length <= MAX_LENGTH:
        raise ComplexityError(
            f"The length must be from {MIN_LENGTH} to {MAX_LENGTH} characters (got {c.length}).",
            "length",
        )
    if c.minimums > c.length:
        raise ComplexityError(
            f"The minimums ({c.min_upper} upper + {c.min_lower} lower + {c.min_digits} digits + "
            f"{c.min_symbols} symbols = {c.minimums}) add up to more than the length "
            f"({c.length}).",
            "length",
        )
    if not isinstance(c.symbols, str):
        raise ComplexityError("The symbol set must be text.", "symbols")
    bad = sorted({ch for ch in c.symbols if ch not in _PUNCTUATION})
    if bad:
        shown = " ".join(repr(ch) for ch in bad[:5])
        raise ComplexityError(
            f"The symbol set may only hold printable ASCII symbols (no letters, digits or "
            f"spaces); remove {shown}.",
            "symbols",
        )
    if c.min_symbols > 0 and not c.symbols:
        raise ComplexityError(
            f"{c.min_symbols} symbols are required but the symbol set is empty.", "symbols"
        )


def effective_complexity(c: Complexity, policy: AccountPolicy | None) -> Complexity:
    """The complexity that meets both the record's setting and the account password policy."""
    validate_complexity(c)
    if policy is None:
        return c
    symbols = c.symbols
    if policy.require_symbols:
        # AWS counts only its own symbols; others would leave the policy unmet.
        symbols = "".join(ch for ch in c.symbols if ch in AWS_SYMBOLS) or AWS_SYMBOLS
    effective = replace(
        c,
        min_upper=max(c.min_upper, int(policy.require_upper)),
        min_lower=max(c.min_lower, int(policy.require_lower)),
        min_digits=max(c.min_digits, int(policy.require_digits)),
        min_symbols=max(c.min_symbols, int(policy.require_symbols)),
        symbols=symbols,
    )
    needed = max(c.length, policy.minimum_length, effective.minimums)
    if needed > MAX_LENGTH:
        raise ComplexityError(
            f"The record's password complexity ({c.as_text()}) and the account password "
            f"policy ({policy.describe()}) together need {needed} characters, more than the "
            f"{MAX_LENGTH} AWS allows. Lower the record's length or minimums, or the policy's "
            "minimum length."
        )
    return replace(effective, length=needed)


def _unique(characters: str) -> str:
    return "".join(dict.fromkeys(characters))


def generate_password(c: Complexity, policy: AccountPolicy | None = None) -> str:
    """A random password meeting `c` and `policy`, from `secrets`; printable ASCII, no spaces."""
    e = effective_complexity(c, policy)
    symbols = _unique(e.symbols)
    classes = (
        (string.ascii_uppercase, e.min_upper),
        (string.ascii_lowercase, e.min_lower),
        (string.digits, e.min_digits),
        (symbols, e.min_symbols),
    )
    chars = [secrets.choice(pool) for pool, count in classes for _ in range(count)]
    everything = string.ascii_letters + string.digits + symbols
    chars += [secrets.choice(everything) for _ in range(e.length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)
