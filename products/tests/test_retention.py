from datetime import timedelta

import pytest
from django.utils import timezone

from products.models import UserProductSearch
from products.tasks import searches_prune

pytestmark = pytest.mark.django_db


def test_searches_past_the_retention_period_are_deleted(settings, user):
    settings.RETENTION_DAYS = 90
    now = timezone.now()
    old, kept = (UserProductSearch.objects.create(user=user, query=q) for q in ("old", "kept"))
    UserProductSearch.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=91))
    UserProductSearch.objects.filter(pk=kept.pk).update(created_at=now - timedelta(days=89))
    assert searches_prune.apply().get() == 1
    assert list(UserProductSearch.objects.values_list("query", flat=True)) == ["kept"]
