"""vault/returning.py: an UPDATE that says which rows it changed."""

from __future__ import annotations

import pytest
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Concat

from vault.models import SharedFolder
from vault.returning import update_returning_pks

pytestmark = pytest.mark.django_db


@pytest.fixture
def folders():
    return [SharedFolder.objects.create(name=f"Folder {n}") for n in range(4)]


def test_it_returns_exactly_the_rows_whose_own_conditions_held(folders):
    a, b, c, d = folders
    # Each row under its own condition: b's does not hold, d is not named.
    conditions = Q(pk=a.pk, name="Folder 0") | Q(pk=b.pk, name="not its name") | Q(pk=c.pk)
    renamed = {"name": Concat(F("name"), Value(" (renamed)"))}
    changed = update_returning_pks(SharedFolder.objects.filter(conditions), renamed)
    assert sorted(changed) == sorted([a.pk, c.pk])
    names = dict(SharedFolder.objects.values_list("pk", "name"))
    assert names == {
        a.pk: "Folder 0 (renamed)",
        b.pk: "Folder 1",
        c.pk: "Folder 2 (renamed)",
        d.pk: "Folder 3",
    }


def test_each_row_can_get_its_own_value(folders):
    a, b = folders[:2]
    per_row = Case(When(pk=a.pk, then=Value("first")), default=F("name"))
    changed = update_returning_pks(
        SharedFolder.objects.filter(pk__in=[a.pk, b.pk]), {"name": per_row}
    )
    assert sorted(changed) == sorted([a.pk, b.pk])
    assert SharedFolder.objects.get(pk=a.pk).name == "first"
    assert SharedFolder.objects.get(pk=b.pk).name == "Folder 1"


def test_no_row_matching_changes_nothing_and_returns_none(folders):
    assert update_returning_pks(SharedFolder.objects.filter(name="nobody"), {"name": "x"}) == []
    assert not SharedFolder.objects.filter(name="x").exists()


def test_a_sliced_queryset_is_refused(folders):
    with pytest.raises(TypeError, match="sliced"):
        update_returning_pks(SharedFolder.objects.all()[:1], {"name": "x"})
