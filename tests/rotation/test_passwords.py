"""rotation/passwords.py: complexity parsing, the AWS account policy, password generation."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rotation.passwords import (
    AWS_SYMBOLS,
    AccountPolicy,
    Complexity,
    ComplexityError,
    effective_complexity,
    generate_password,
    parse_complexity,
    validate_complexity,
)


def counts(password: str, symbols: str = AWS_SYMBOLS) -> dict[str, int]:
    return {
        "upper": sum(ch in string.ascii_uppercase for ch in password),
        "lower": sum(ch in string.ascii_lowercase for ch in password),
        "digits": sum(ch in string.digits for ch in password),
        "symbols": sum(ch in symbols for ch in password),
    }


# ------------------------------------------------------------------------- generation


def test_default_complexity_is_keepers_32_5_5_5_5_with_aws_symbols():
    assert Complexity() == Complexity(32, 5, 5, 5, 5, "!@#$%^&*()_+-=[]{}|'")


def test_password_has_the_length_and_the_minimums_over_many_generations():
    complexity = Complexity(length=16, min_upper=4, min_lower=4, min_digits=4, min_symbols=4)
    for _ in range(300):
        password = generate_password(complexity)
        assert len(password) == 16
        assert counts(password) == {"upper": 4, "lower": 4, "digits": 4, "symbols": 4}


def test_password_meets_minimums_and_fills_the_rest_from_every_class():
    complexity = Complexity(length=40, min_upper=1, min_lower=1, min_digits=1, min_symbols=1)
    seen = set()
    for _ in range(200):
        password = generate_password(complexity)
        found = counts(password)
        assert len(password) == 40
        assert all(found[name] >= 1 for name in found)
        assert sum(found.values()) == 40
        seen.update(password)
    # The filler draws on letters, digits and symbols alike.
    assert (
        seen & set(AWS_SYMBOLS) and seen & set(string.digits) and seen & set(string.ascii_letters)
    )


def test_password_uses_only_the_record_symbol_set():
    complexity = Complexity(
        length=20, min_upper=2, min_lower=2, min_digits=2, min_symbols=10, symbols="~."
    )
    for _ in range(100):
        password = generate_password(complexity)
        assert {ch for ch in password if not ch.isalnum()} <= {"~", "."}
        assert counts(password, "~.")["symbols"] >= 10


def test_empty_symbol_set_gives_letters_and_digits_only():
    complexity = Complexity(
        length=24, min_upper=2, min_lower=2, min_digits=2, min_symbols=0, symbols=""
    )
    for _ in range(100):
        assert generate_password(complexity).isalnum()


def test_passwords_differ():
    assert len({generate_password(Complexity()) for _ in range(50)}) == 50


# ---------------------------------------------------------------------- account policy


def test_from_aws_reads_get_account_password_policy():
    policy = AccountPolicy.from_aws(
        {
            "MinimumPasswordLength": 40,
            "RequireSymbols": True,
            "RequireNumbers": False,
            "RequireUppercaseCharacters": True,
            "RequireLowercaseCharacters": True,
            "AllowUsersToChangePassword": True,
        }
    )
    assert policy == AccountPolicy(40, require_upper=True, require_lower=True, require_symbols=True)


def test_from_aws_accepts_the_whole_response():
    response = {"PasswordPolicy": {"MinimumPasswordLength": 14, "RequireNumbers": True}}
    assert AccountPolicy.from_aws(response) == AccountPolicy(14, require_digits=True)


def test_from_aws_none_means_no_requirements():
    assert AccountPolicy.from_aws(None) == AccountPolicy()


def test_policy_minimum_length_raises_the_length():
    policy = AccountPolicy(minimum_length=40)
    assert effective_complexity(Complexity(length=32), policy).length == 40
    assert len(generate_password(Complexity(length=32), policy)) == 40


def test_policy_minimum_length_below_the_record_length_changes_nothing():
    assert (
        effective_complexity(Complexity(length=32), AccountPolicy(minimum_length=14))
        == Complexity()
    )


def test_policy_require_flags_force_one_of_each_class():
    record = Complexity(
        length=12, min_upper=0, min_lower=0, min_digits=0, min_symbols=0, symbols=""
    )
    policy = AccountPolicy(
        require_upper=True, require_lower=True, require_digits=True, require_symbols=True
    )
    assert effective_complexity(record, policy) == Complexity(12, 1, 1, 1, 1, AWS_SYMBOLS)
    for _ in range(200):
        found = counts(generate_password(record, policy))
        assert all(found[name] >= 1 for name in found)


def test_policy_symbols_come_from_aws_symbol_set():
    record = Complexity(
        length=16, min_upper=1, min_lower=1, min_digits=1, min_symbols=4, symbols="~.<>"
    )
    policy = AccountPolicy(require_symbols=True)
    for _ in range(100):
        password = generate_password(record, policy)
        assert counts(password)["symbols"] >= 4
        assert not set(password) & set("~.<>")


def test_policy_keeps_the_record_symbols_that_aws_counts():
    record = Complexity(
        length=16, min_upper=1, min_lower=1, min_digits=1, min_symbols=2, symbols="~!#"
    )
    assert effective_complexity(record, AccountPolicy(require_symbols=True)).symbols == "!#"


def test_policy_grows_the_length_to_fit_raised_minimums():
    record = Complexity(length=8, min_upper=8, min_lower=0, min_digits=0, min_symbols=0)
    effective = effective_complexity(record, AccountPolicy(require_lower=True))
    assert (effective.length, effective.min_upper, effective.min_lower) == (9, 8, 1)
    assert len(generate_password(record, AccountPolicy(require_lower=True))) == 9


def test_unmeetable_combination_names_the_record_setting_and_the_policy_setting():
    record = Complexity(length=128, min_upper=128, min_lower=0, min_digits=0, min_symbols=0)
    with pytest.raises(ComplexityError) as caught:
        generate_password(record, AccountPolicy(require_lower=True))
    message = str(caught.value)
    assert "complexity (128,128,0,0,0," in message
    assert "RequireLowercaseCharacters" in message
    assert "password policy" in message


def test_policy_minimum_length_above_128_cannot_be_met():
    with pytest.raises(ComplexityError, match=r"MinimumPasswordLength 129.*128"):
        effective_complexity(Complexity(), AccountPolicy(minimum_length=129))


# ------------------------------------------------------------------------ parse/validate


@pytest.mark.parametrize(
    "text, expected",
    [
        ("32,5,5,5,5", Complexity(32, 5, 5, 5, 5, AWS_SYMBOLS)),
        (" 20 , 2,2, 2 ,2 ", Complexity(20, 2, 2, 2, 2, AWS_SYMBOLS)),
        ("20,2,2,2,2,!@#", Complexity(20, 2, 2, 2, 2, "!@#")),
        ("16,1,1,1,1,!,.;", Complexity(16, 1, 1, 1, 1, "!,.;")),
        ("16,1,1,1,1,,", Complexity(16, 1, 1, 1, 1, ",")),
        ("12,3,3,3,0,", Complexity(12, 3, 3, 3, 0, "")),
        ("128,0,0,0,0", Complexity(128, 0, 0, 0, 0, AWS_SYMBOLS)),
        ("8,2,2,2,2", Complexity(8, 2, 2, 2, 2, AWS_SYMBOLS)),
    ],
)
def test_parse_complexity(text, expected):
    assert parse_complexity(text) == expected


def test_complexity_text_round_trips():
    complexity = Complexity(24, 3, 3, 3, 3, "!,#")
    assert parse_complexity(complexity.as_text()) == complexity


@pytest.mark.parametrize(
    "text, field",
    [
        ("", None),
        ("   ", None),
        ("32", None),
        ("32,5,5,5", None),
        ("a,5,5,5,5", "length"),
        ("32,-1,5,5,5", "min_upper"),
        ("32,5,x,5,5", "min_lower"),
        ("32,5,5,5.0,5", "min_digits"),
        ("32,5,5,5,", "min_symbols"),
        ("32,5,5,5,+5", "min_symbols"),
        ("7,1,1,1,1", "length"),
        ("129,5,5,5,5", "length"),
        ("9999999,5,5,5,5", "length"),
        ("16,5,5,5,5", "length"),
        ("32,5,5,5,5,abc", "symbols"),
        ("32,5,5,5,5,!1", "symbols"),
        ("32,5,5,5,5,! @", "symbols"),
        ("32,5,5,5,5,!é", "symbols"),
        ("32,5,5,5,5,!\t#", "symbols"),
        ("32,5,5,5,1,", "symbols"),
    ],
)
def test_parse_complexity_rejects_bad_input(text, field):
    with pytest.raises(ComplexityError) as caught:
        parse_complexity(text)
    assert caught.value.field == field
    assert str(caught.value)


@pytest.mark.parametrize("value", [None, 32, ["32", "5"], b"32,5,5,5,5"])
def test_parse_complexity_rejects_non_text(value):
    with pytest.raises(ComplexityError):
        parse_complexity(value)


@pytest.mark.parametrize(
    "complexity, field",
    [
        (Complexity(length=7, min_upper=1, min_lower=1, min_digits=1, min_symbols=1), "length"),
        (Complexity(length=129), "length"),
        (Complexity(min_upper=-1), "min_upper"),
        (Complexity(min_symbols=-2), "min_symbols"),
        (Complexity(length=10, min_upper=3, min_lower=3, min_digits=3, min_symbols=3), "length"),
        (Complexity(min_symbols=1, symbols=""), "symbols"),
        (Complexity(symbols="!a"), "symbols"),
        (Complexity(length="32"), "length"),  # type: ignore[arg-type]
        (Complexity(min_digits=True), "min_digits"),  # type: ignore[arg-type]
    ],
)
def test_validate_complexity_names_the_field(complexity, field):
    with pytest.raises(ComplexityError) as caught:
        validate_complexity(complexity)
    assert caught.value.field == field


def test_minimums_over_length_message_shows_the_sum():
    with pytest.raises(ComplexityError, match=r"= 20\) add up to more than the length \(16\)"):
        validate_complexity(Complexity(length=16))


def test_generate_refuses_invalid_complexity():
    with pytest.raises(ComplexityError):
        generate_password(
            Complexity(length=4, min_upper=0, min_lower=0, min_digits=0, min_symbols=0)
        )


# ---------------------------------------------------------------------------- property


@st.composite
def complexities(draw):
    length = draw(st.integers(8, 128))
    symbols = draw(st.text(alphabet=sorted(set(string.punctuation)), max_size=12))
    mins, budget = [], length
    for index in range(4):
        most = 0 if index == 3 and not symbols else min(budget, draw(st.sampled_from([3, length])))
        mins.append(draw(st.integers(0, most)))
        budget -= mins[-1]
    return Complexity(length, *mins, symbols=symbols)


policies = st.none() | st.builds(
    AccountPolicy,
    minimum_length=st.integers(0, 128),
    require_upper=st.booleans(),
    require_lower=st.booleans(),
    require_digits=st.booleans(),
    require_symbols=st.booleans(),
)


@settings(deadline=None, max_examples=300)
@given(complexities(), policies)
def test_generated_password_meets_complexity_and_policy(complexity, policy):
    policy_ = policy or AccountPolicy()
    minimums = (
        max(complexity.min_upper, int(policy_.require_upper))
        + max(complexity.min_lower, int(policy_.require_lower))
        + max(complexity.min_digits, int(policy_.require_digits))
        + max(complexity.min_symbols, int(policy_.require_symbols))
    )
    expected_length = max(complexity.length, policy_.minimum_length, minimums)
    if expected_length > 128:
        with pytest.raises(ComplexityError):
            generate_password(complexity, policy)
        return
    password = generate_password(complexity, policy)
    expected_symbols = complexity.symbols
    if policy_.require_symbols:
        expected_symbols = (
            "".join(ch for ch in complexity.symbols if ch in AWS_SYMBOLS) or AWS_SYMBOLS
        )
    found = counts(password, expected_symbols)

    assert len(password) == expected_length
    assert all(ch in string.ascii_letters + string.digits + expected_symbols for ch in password)
    assert all(33 <= ord(ch) <= 126 for ch in password)
    assert found["upper"] >= max(complexity.min_upper, int(policy_.require_upper))
    assert found["lower"] >= max(complexity.min_lower, int(policy_.require_lower))
    assert found["digits"] >= max(complexity.min_digits, int(policy_.require_digits))
    assert found["symbols"] >= max(complexity.min_symbols, int(policy_.require_symbols))
    if policy_.require_symbols:
        assert set(password) & set(AWS_SYMBOLS)
