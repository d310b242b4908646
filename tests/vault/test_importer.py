"""`pam import`: validation with JSON paths, nothing written on error, idempotent re-import."""

from __future__ import annotations

import copy
import json

import pytest
from django.core.exceptions import ValidationError

from tests.conftest import make_user
from vault import importer, validators
from vault.cli import call_pam
from vault.models import (
    USE_INSTANCE_ROLE,
    Application,
    ApplicationFolder,
    AuditEvent,
    FolderMember,
    Gateway,
    PamConfiguration,
    PamUser,
    PasswordVersion,
    SharedFolder,
)

pytestmark = pytest.mark.django_db

EXAMPLE = {
    "folders": [{"name": "AWS IAM Users"}],
    "gateways": [{"name": "default"}],
    "configurations": [
        {
            "title": "AWS IAM Configuration",
            "environment": "aws",
            "folder": "AWS IAM Users",
            "gateway": "default",
            "aws_id": "AWS-Dept",
            "access_key_id": "USE_INSTANCE_ROLE",
            "access_secret_key": "USE_INSTANCE_ROLE",
            "region_names": ["us-east-1"],
            "endpoint_url": "http://127.0.0.1:5055",
            "default_rotation_schedule": {"type": "ON_DEMAND"},
            # USE_INSTANCE_ROLE requires a target scope (docs/import.md).
            "scope_user_pattern": "TestUser",
        }
    ],
    "users": [
        {
            "title": "AWS user: TestUser",
            "folder": "AWS IAM Users",
            "login": "TestUser",
            "password": "",
            "distinguished_name": "arn:aws:iam::123456789012:user/TestUser",
            "rotation": {
                "configuration": "AWS IAM Configuration",
                "schedule": {"type": "ON_DEMAND"},
                "complexity": "32,5,5,5,5",
                "enabled": True,
            },
        }
    ],
}


def example(**changes) -> dict:
    doc = copy.deepcopy(EXAMPLE)
    doc.update(changes)
    return doc


def user_entry(name: str = "Alice", **extra) -> dict:
    """A valid user entry for IAM user `name`; `extra` overrides keys."""
    entry = {
        "title": f"AWS user: {name}",
        "folder": "AWS IAM Users",
        "login": name,
        "distinguished_name": f"arn:aws:iam::123456789012:user/{name}",
    }
    entry.update(extra)
    return entry


def errors_of(doc, **kw) -> list[str]:
    with pytest.raises(importer.ImportProblems) as caught:
        importer.import_document(doc, **kw)
    return caught.value.problems


def row_counts() -> dict:
    models = [SharedFolder, Gateway, Application, PamConfiguration, PamUser, PasswordVersion]
    return {m.__name__: m.objects.count() for m in models} | {
        "AuditEvent": AuditEvent.objects.count()
    }


@pytest.fixture(autouse=True)
def no_extensions(monkeypatch):
    # The rotation app may register extensions; these tests pin the vault's own behaviour.
    monkeypatch.setattr(importer, "USER_EXTENSIONS", {})
    monkeypatch.setattr(importer, "CONFIGURATION_FIELD_CLEANERS", {})


# --- the happy path ------------------------------------------------------------------------


def test_example_file_creates_everything_and_maps_names_to_uids():
    result = importer.import_document(example())
    folder = SharedFolder.objects.get(name="AWS IAM Users")
    config = PamConfiguration.objects.get(title="AWS IAM Configuration")
    record = PamUser.objects.get(title="AWS user: TestUser")
    assert result == {
        "folders": {"AWS IAM Users": folder.uid},
        "gateways": {"default": Gateway.objects.get(name="default").uid},
        "configurations": {"AWS IAM Configuration": config.uid},
        "users": {"AWS user: TestUser": record.uid},
    }
    assert config.folder == folder and config.gateway.name == "default"
    assert config.uses_instance_role
    assert (config.scope_path_prefix, config.scope_user_pattern) == ("", "TestUser")
    assert config.endpoint_url == "http://127.0.0.1:5055"
    assert record.login == "TestUser" and record.folder == folder
    assert not record.has_secret("password")


def test_cli_prints_the_result_as_one_json_object(tmp_path):
    path = tmp_path / "import.json"
    path.write_text(json.dumps(example()))
    code, out, err = call_pam("import", str(path))
    assert (code, err) == (0, "")
    assert set(json.loads(out)) == {"folders", "gateways", "configurations", "users"}


def test_without_applications_each_gateway_gets_an_application_sharing_every_folder():
    importer.import_document(example())
    gateway = Gateway.objects.get(name="default")
    assert gateway.application.name == "default"
    share = ApplicationFolder.objects.get(application=gateway.application)
    assert share.folder.name == "AWS IAM Users" and share.editable
    assert not gateway.application.administrators.exists()  # without --owner, nobody


def test_applications_section_shares_named_folders_and_ties_gateways():
    doc = example(
        applications=[
            {"name": "Rotation App", "folders": ["AWS IAM Users"], "gateways": ["default"]}
        ]
    )
    importer.import_document(doc)
    app = Application.objects.get(name="Rotation App")
    assert Gateway.objects.get(name="default").application == app
    assert list(app.folders.values_list("name", flat=True)) == ["AWS IAM Users"]
    assert not Application.objects.filter(name="default").exists()


def test_password_is_stored_encrypted_with_an_import_history_entry():
    doc = example(users=[user_entry(password="Imported-Passw0rd!")])
    importer.import_document(doc)
    record = PamUser.objects.get(login="Alice")
    assert record.get_secret("password") == "Imported-Passw0rd!"
    assert "Imported-Passw0rd!" not in record.password_enc
    version = record.versions.get()
    assert version.source == "import"


def test_secret_key_is_stored_encrypted():
    config = dict(
        EXAMPLE["configurations"][0],
        access_key_id="AKIAEXAMPLE",
        access_secret_key="wJal/SECRET+key",
    )
    importer.import_document(example(configurations=[config]))
    stored = PamConfiguration.objects.get()
    assert stored.get_secret("access_secret_key") == "wJal/SECRET+key"
    assert "SECRET" not in stored.access_secret_key_enc


def _administered(user) -> list[str]:
    return sorted(user.administered_applications.values_list("name", flat=True))


def test_owner_becomes_a_member_with_every_permission_and_administers_the_application():
    owner = make_user("alice")
    importer.import_document(example(), owner_username="alice")
    member = FolderMember.objects.get(user=owner, folder__name="AWS IAM Users")
    assert set(member.permission_names()) == set(FolderMember.PERMISSIONS)
    # The application the import gives the gateway "default" (no applications section).
    assert _administered(owner) == ["default"]


def test_owner_administers_the_applications_the_file_names():
    owner = make_user("alice")
    Application.objects.create(name="Unrelated")
    doc = example(
        applications=[
            {"name": "Rotation App", "folders": ["AWS IAM Users"], "gateways": ["default"]}
        ]
    )
    importer.import_document(doc, owner_username="alice")
    assert _administered(owner) == ["Rotation App"]


def test_owner_with_partial_permissions_is_given_all():
    owner = make_user("alice")
    importer.import_document(example())
    member = FolderMember.objects.create(
        user=owner, folder=SharedFolder.objects.get(), can_edit=True
    )
    importer.import_document(example(), owner_username="alice")
    member.refresh_from_db()
    assert set(member.permission_names()) == set(FolderMember.PERMISSIONS)
    # The application already existed (first import): the owner administers it now too.
    assert _administered(owner) == ["default"]


def test_import_writes_audit_events_as_the_cli():
    importer.import_document(example(users=[user_entry()]))
    kinds = set(AuditEvent.objects.values_list("actor_kind", flat=True))
    assert kinds == {"cli"}
    assert AuditEvent.objects.filter(action="record.created").count() == 1


def test_references_may_name_rows_already_in_the_vault():
    importer.import_document(example(users=[]))
    doc = {"users": [user_entry()]}
    result = importer.import_document(doc)
    assert (
        PamUser.objects.get(uid=result["users"]["AWS user: Alice"]).folder.name == "AWS IAM Users"
    )


def test_same_title_in_two_folders_is_keyed_by_folder():
    doc = example(
        folders=[{"name": "AWS IAM Users"}, {"name": "Other"}],
        users=[user_entry(title="Same"), user_entry("Bob", title="Same", folder="Other")],
    )
    result = importer.import_document(doc)
    assert set(result["users"]) == {"AWS IAM Users/Same", "Other/Same"}


# --- idempotency -----------------------------------------------------------------------------


def test_importing_the_same_file_twice_changes_nothing():
    doc = example(users=[user_entry(password="Imported-Passw0rd!"), EXAMPLE["users"][0]])
    owner = make_user("alice")
    first = importer.import_document(doc, owner_username=owner.username)
    before = row_counts()
    stored = {u.pk: (u.password_enc, u.updated_at) for u in PamUser.objects.all()}
    config_before = PamConfiguration.objects.values().get()
    second = importer.import_document(copy.deepcopy(doc), owner_username=owner.username)
    assert second == first
    assert row_counts() == before
    assert {u.pk: (u.password_enc, u.updated_at) for u in PamUser.objects.all()} == stored
    assert PamConfiguration.objects.values().get() == config_before


def test_reimport_updates_changed_fields_of_the_matched_rows():
    importer.import_document(example(users=[user_entry(password="First-Passw0rd!")]))
    record = PamUser.objects.get()
    config = dict(EXAMPLE["configurations"][0], region_names=["eu-west-2"], aws_id="Other")
    changed = user_entry("Alice2", title="AWS user: Alice", password="Second-Passw0rd!")
    importer.import_document(example(configurations=[config], users=[changed]))
    record.refresh_from_db()
    assert record.login == "Alice2"
    assert record.distinguished_name.endswith("user/Alice2")
    assert record.get_secret("password") == "Second-Passw0rd!"
    assert record.versions.count() == 2
    stored = PamConfiguration.objects.get()
    assert (stored.region_names, stored.aws_id) == (["eu-west-2"], "Other")
    assert PamUser.objects.count() == 1


def test_reimport_with_an_empty_password_keeps_the_stored_one():
    importer.import_document(example(users=[user_entry(password="First-Passw0rd!")]))
    importer.import_document(example(users=[user_entry(password="")]))
    assert PamUser.objects.get().get_secret("password") == "First-Passw0rd!"


def test_reimport_does_not_put_back_a_password_that_was_replaced_since():
    doc = example(users=[user_entry(password="First-Passw0rd!")])
    importer.import_document(doc)
    record = PamUser.objects.get()
    from vault import services

    services.pam_user_update(
        record=record,
        title=record.title,
        login=record.login,
        distinguished_name=record.distinguished_name,
        password="Rotated-Passw0rd!",
    )
    importer.import_document(copy.deepcopy(doc))
    record.refresh_from_db()
    assert record.get_secret("password") == "Rotated-Passw0rd!"


# --- notes and the managed flag ------------------------------------------------------------


def test_notes_and_managed_are_imported_and_a_second_import_changes_nothing():
    doc = example(users=[user_entry(notes="Line one\nLine <two>", managed=False)])
    importer.import_document(doc)
    record = PamUser.objects.get()
    assert (record.notes, record.managed) == ("Line one\nLine <two>", False)
    before = row_counts()
    stored = PamUser.objects.values().get()
    importer.import_document(copy.deepcopy(doc))
    assert row_counts() == before
    assert PamUser.objects.values().get() == stored


def test_a_new_record_without_notes_or_managed_is_managed_with_no_notes():
    importer.import_document(example(users=[user_entry()]))
    assert PamUser.objects.values_list("notes", "managed").get() == ("", True)


def test_reimport_changes_notes_and_managed_and_leaving_them_out_keeps_them():
    importer.import_document(example(users=[user_entry(notes="First", managed=False)]))
    importer.import_document(example(users=[user_entry(notes="Second", managed=True)]))
    assert PamUser.objects.values_list("notes", "managed").get() == ("Second", True)
    event = AuditEvent.objects.filter(action="record.updated").latest("id")
    assert event.details == {"fields": ["notes", "managed"], "managed": True}
    importer.import_document(example(users=[user_entry()]))
    assert PamUser.objects.values_list("notes", "managed").get() == ("Second", True)


@pytest.mark.parametrize(
    "extra, expected",
    [
        ({"managed": "yes"}, "users[0].managed: must be true or false, not a string"),
        ({"managed": None}, "users[0].managed: must be true or false, not null"),
        ({"notes": 7}, "users[0].notes: must be a string, not a number"),
        ({"notes": "x" * 100_001}, "users[0].notes: longer than 100000 characters"),
    ],
)
def test_bad_notes_or_managed_are_errors_with_their_path_and_nothing_is_written(extra, expected):
    before = row_counts()
    assert errors_of(example(users=[user_entry(**extra)])) == [expected]
    assert row_counts() == before


# --- validation --------------------------------------------------------------------------------


def test_bad_arn_is_reported_with_its_json_path():
    users = [
        user_entry(),
        user_entry("Bob"),
        user_entry("Carol"),
        user_entry("Dan", distinguished_name="arn:aws:s3:::bucket"),
    ]
    assert errors_of(example(users=users)) == [
        "users[3].distinguished_name: not an IAM user ARN: expected arn:<aws|aws-cn|aws-us-gov>"
        ":iam::<12-digit account>:user/<optional path/>name"
    ]


def test_arn_user_name_must_match_the_login():
    users = [user_entry("X", login="Y")]
    assert errors_of(example(users=users)) == [
        'users[0].login: ARN user name "X" does not match login "Y"'
    ]


def test_login_comparison_is_case_sensitive():
    users = [user_entry("testuser", distinguished_name="arn:aws:iam::123456789012:user/TestUser")]
    assert errors_of(example(users=users)) == [
        'users[0].login: ARN user name "TestUser" does not match login "testuser"'
    ]


def test_every_error_is_reported_and_nothing_is_written():
    before = row_counts()
    doc = example(
        configurations=[
            dict(EXAMPLE["configurations"][0], gateway="nowhere", region_names=["moon-1"])
        ],
        users=[
            {"title": "A", "folder": "Nowhere", "login": 5, "distinguished_name": "x"},
            user_entry(password="x" * 129),
        ],
    )
    errors = errors_of(doc)
    assert errors == [
        'configurations[0].gateway: unknown gateway "nowhere" '
        "(not in gateways[] and not in the vault)",
        'configurations[0].region_names[0]: "moon-1" is not an AWS region name '
        "(for example us-east-1)",
        'users[0].folder: unknown folder "Nowhere" (not in folders[] and not in the vault)',
        "users[0].login: must be a string, not a number",
        errors[4],
        "users[1].password: password is longer than 128 characters",
    ]
    assert errors[4].startswith("users[0].distinguished_name: not an IAM user ARN")
    assert row_counts() == before


def test_an_error_late_in_the_file_writes_none_of_the_earlier_entries():
    users = [user_entry(), user_entry("Bob", login="Robert")]
    with pytest.raises(importer.ImportProblems):
        importer.import_document(example(users=users))
    assert not SharedFolder.objects.exists()
    assert not PamUser.objects.exists()


@pytest.mark.parametrize(
    "doc, expected",
    [
        ([], "(document): must be a JSON object, not a list"),
        ({"folders": {"name": "x"}}, "folders: must be a list"),
        ({"folders": ["x"]}, "folders[0]: must be an object"),
        ({"folders": [{}]}, "folders[0].name: required"),
        ({"folders": [{"name": ""}]}, "folders[0].name: must not be empty"),
        (
            {"folders": [{"name": "a", "colour": "red"}]},
            "folders[0].colour: unknown key (expected: name)",
        ),
        (
            # Display names such as "Project1 Gateway" are accepted; these characters are not.
            {"gateways": [{"name": "-gw/../x"}]},
            "gateways[0].name: a gateway name is ASCII letters, digits, single spaces and "
            '- _ . #, beginning and ending with a letter or digit (e.g. "Project1 Gateway")',
        ),
        (
            {"widgets": []},
            "widgets: unknown key "
            "(expected: folders, gateways, applications, configurations, users)",
        ),
        (
            {
                "users": [
                    {
                        "title": "t",
                        "folder": "f",
                        "login": "a",
                        "distinguished_name": "d",
                        "rotation": "daily",
                    }
                ],
                "folders": [{"name": "f"}],
            },
            None,
        ),
    ],
)
def test_wrong_shapes_name_the_path(doc, expected):
    errors = errors_of(doc)
    if expected is None:
        assert "users[0].rotation: must be an object, not a string" in errors
    else:
        assert errors == [expected]


def test_duplicate_names_and_titles_are_errors():
    doc = example(
        folders=[{"name": "AWS IAM Users"}, {"name": "AWS IAM Users"}],
        gateways=[{"name": "default"}, {"name": "default"}],
        configurations=[EXAMPLE["configurations"][0]] * 2,
        users=[user_entry(), user_entry()],
    )
    assert errors_of(doc) == [
        'folders[1].name: duplicate folder "AWS IAM Users" (also folders[0])',
        'gateways[1].name: duplicate gateway "default" (also gateways[0])',
        'configurations[1].title: duplicate configuration title "AWS IAM Configuration" '
        'in folder "AWS IAM Users" (also configurations[0])',
        'users[1].title: duplicate user title "AWS user: Alice" '
        'in folder "AWS IAM Users" (also users[0])',
    ]


def test_unknown_owner_is_an_error():
    assert errors_of(example(), owner_username="ghost") == ['--owner: no user "ghost"']


def test_secret_key_is_required_unless_instance_role():
    config = dict(EXAMPLE["configurations"][0], access_key_id="AKIAEXAMPLE")
    del config["access_secret_key"]
    assert errors_of(example(configurations=[config])) == [
        "configurations[0].access_secret_key: required unless access_key_id is USE_INSTANCE_ROLE"
    ]


def test_instance_role_in_one_field_only_is_an_error():
    config = dict(EXAMPLE["configurations"][0], access_key_id="AKIAEXAMPLE")
    assert errors_of(example(configurations=[config])) == [
        f"configurations[0].access_secret_key: {USE_INSTANCE_ROLE} "
        f"needs access_key_id {USE_INSTANCE_ROLE} too"
    ]


def test_instance_role_without_a_target_scope_is_an_error():
    config = dict(EXAMPLE["configurations"][0], scope_user_pattern="")
    assert errors_of(example(configurations=[config])) == [
        "configurations[0].scope_user_pattern: a target scope (scope_path_prefix or "
        f"scope_user_pattern) is required when access_key_id is {USE_INSTANCE_ROLE}"
    ]
    assert not PamConfiguration.objects.exists()


def test_endpoint_must_be_http():
    config = dict(EXAMPLE["configurations"][0], endpoint_url="ftp://example.com")
    assert errors_of(example(configurations=[config])) == [
        "configurations[0].endpoint_url: "
        "endpoint URL must be an http:// or https:// URL with a host"
    ]


def test_environment_other_than_aws_is_an_error():
    config = dict(EXAMPLE["configurations"][0], environment="azure")
    assert errors_of(example(configurations=[config])) == [
        'configurations[0].environment: must be "aws" (the only environment)'
    ]


def test_applications_with_unknown_references_are_errors():
    doc = example(applications=[{"name": "App", "folders": ["Nope"], "gateways": ["nope"]}])
    assert errors_of(doc) == [
        'applications[0].folders[0]: unknown folder "Nope"',
        'applications[0].gateways[0]: unknown gateway "nope"',
    ]


def test_folder_name_differing_only_in_case_from_a_stored_one_is_an_error():
    SharedFolder.objects.create(name="aws iam users")
    assert errors_of(example()) == [
        'folders[0].name: a folder named "aws iam users" already exists '
        "(folder names are matched exactly; they differ only in case)"
    ]


def test_cli_prints_every_error_on_its_own_line_and_exits_1(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(example(users=[user_entry("X", login="Y"), {"title": "t"}])))
    code, out, err = call_pam("import", str(path))
    assert code == 1 and out == ""
    assert err.splitlines() == [
        'pam: error: users[0].login: ARN user name "X" does not match login "Y"',
        "pam: error: users[1].folder: required",
        "pam: error: users[1].login: required",
        "pam: error: users[1].distinguished_name: required",
    ]
    assert not SharedFolder.objects.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"{not json", "invalid JSON at line 1 column 2"),
        (b"\xff\xfe", "not UTF-8 text"),
    ],
)
def test_unreadable_files_give_one_line(tmp_path, content, message):
    path = tmp_path / "f.json"
    path.write_bytes(content)
    code, out, err = call_pam("import", str(path))
    assert code == 1
    assert len(err.splitlines()) == 1 and message in err


def test_missing_file_gives_one_line(tmp_path):
    code, _, err = call_pam("import", str(tmp_path / "missing.json"))
    assert code == 1
    assert err.strip() == f"pam: error: cannot read {tmp_path / 'missing.json'}: no such file"


def test_directory_gives_one_line(tmp_path):
    code, _, err = call_pam("import", str(tmp_path))
    assert code == 1
    assert err.strip().endswith("it is a directory")


# --- extension points ------------------------------------------------------------------------


class RecordingExtension:
    def __init__(self) -> None:
        self.applied: list = []

    def validate(self, value, path, context):
        problem = context.configuration_error(value.get("configuration"))
        return [f"{path}.configuration: {problem}"] if problem else []

    def apply(self, record, value, context):
        self.applied.append((record.login, context.configuration(value["configuration"]).uid))


def test_user_extension_validates_and_applies_with_configurations_from_the_file(monkeypatch):
    extension = RecordingExtension()
    monkeypatch.setattr(importer, "USER_EXTENSIONS", {"rotation": extension})
    result = importer.import_document(example())
    assert extension.applied == [("TestUser", result["configurations"]["AWS IAM Configuration"])]


def test_user_extension_errors_join_the_others_and_nothing_is_written(monkeypatch):
    monkeypatch.setattr(importer, "USER_EXTENSIONS", {"rotation": RecordingExtension()})
    doc = example()
    doc["users"][0]["rotation"]["configuration"] = "Missing"
    assert errors_of(doc) == [
        'users[0].rotation.configuration: unknown configuration "Missing" '
        "(not in configurations[] and not in the vault)"
    ]
    assert not PamUser.objects.exists()


def test_user_extension_resolves_a_configuration_already_in_the_vault(monkeypatch):
    importer.import_document(example(users=[]))
    extension = RecordingExtension()
    monkeypatch.setattr(importer, "USER_EXTENSIONS", {"rotation": extension})
    importer.import_document({"users": EXAMPLE["users"]})
    assert extension.applied == [("TestUser", PamConfiguration.objects.get().uid)]


def test_configuration_field_cleaner_can_refuse_a_schedule(monkeypatch):
    from django.core.exceptions import ValidationError

    def clean(value):
        raise ValidationError("unknown schedule type")

    monkeypatch.setattr(
        importer, "CONFIGURATION_FIELD_CLEANERS", {"default_rotation_schedule": clean}
    )
    assert errors_of(example()) == [
        "configurations[0].default_rotation_schedule: unknown schedule type"
    ]


# --- the shared validators (vault/validators.py; the web forms use them too) -----------------


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:user/TestUser",
        "arn:aws-cn:iam::123456789012:user/division/team/TestUser",
        "arn:aws-us-gov:iam::123456789012:user/a.b+c=d,e@f_g-h",
    ],
)
def test_valid_iam_user_arns(arn):
    validators.validate_iam_user_arn(arn)


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::12345678901:user/TestUser",  # 11 digits
        "arn:aws:iam::123456789012:role/TestUser",
        "arn:aws:iam:us-east-1:123456789012:user/TestUser",
        "arn:azure:iam::123456789012:user/TestUser",
        "arn:aws:iam::123456789012:user/",
        "arn:aws:iam::123456789012:user/Test User",
    ],
)
def test_invalid_iam_user_arns(arn):
    with pytest.raises(ValidationError):
        validators.validate_iam_user_arn(arn)


@pytest.mark.parametrize(
    "value, ok",
    [
        ("us-east-1", True),
        ("us-gov-west-1", True),
        ("ap-southeast-3", True),
        ("US-EAST-1", False),
        ("us-east", False),
        ("", False),
    ],
)
def test_region_names(value, ok):
    if ok:
        validators.validate_region_name(value)
    else:
        with pytest.raises(ValidationError):
            validators.validate_region_name(value)


@pytest.mark.parametrize(
    "value, ok",
    [
        ("", True),
        ("http://127.0.0.1:5055", True),
        ("http://moto:5000", False),  # not in AWS_ENDPOINT_ALLOWLIST
        ("https://iam.amazonaws.com", True),
        ("ftp://example.com", False),
        ("http://", False),
        ("http://host:99999", False),
        ("http://exa mple.com", False),
        ("iam.amazonaws.com", False),
    ],
)
def test_endpoint_urls(value, ok):
    if ok:
        validators.validate_endpoint_url(value)
    else:
        with pytest.raises(ValidationError):
            validators.validate_endpoint_url(value)


@pytest.mark.parametrize(
    "value, ok",
    [("", True), ("a" * 128, True), ("a" * 129, False), ("pässword", False), ("tab\there", False)],
)
def test_password_text(value, ok):
    if ok:
        validators.validate_password_text(value)
    else:
        with pytest.raises(ValidationError):
            validators.validate_password_text(value)


def test_arn_match_is_exact():
    validators.validate_arn_matches_login("arn:aws:iam::123456789012:user/path/Bob", "Bob")
    with pytest.raises(ValidationError, match='ARN user name "Bob" does not match login "bob"'):
        validators.validate_arn_matches_login("arn:aws:iam::123456789012:user/Bob", "bob")


def test_a_lone_surrogate_in_a_key_is_reported_by_its_json_path_and_nothing_is_written(tmp_path):
    path = tmp_path / "surrogate.json"
    path.write_text('{"users": [{"title": "ok", "x\\udc80": 1}]}', encoding="utf-8")
    before = row_counts()
    code, _, err = call_pam("import", str(path))
    assert code == 1
    assert err == (
        "pam: error: users[0].x\\udc80: is not valid Unicode text "
        "(\\udc80 is half of a surrogate pair)\n"
    )
    assert row_counts() == before
