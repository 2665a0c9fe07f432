from datetime import timedelta

import pytest
from django.utils import timezone

from o2o.effects import effects_purge
from o2o.models import Effect, EffectAttempt
from tests.factories import EffectFactory


@pytest.mark.django_db
def test_only_effects_done_long_ago_are_forgotten():
    long_ago = timezone.now() - timedelta(days=8)
    old_done = EffectFactory(status="done", done_at=long_ago)
    EffectAttempt.objects.create(effect=old_done, number=1, started_at=long_ago, outcome="done")
    recent_done = EffectFactory(status="done", done_at=timezone.now())
    old_failed = EffectFactory(status="failed")
    Effect.objects.filter(pk=old_failed.pk).update(created_at=long_ago)
    pending = EffectFactory()
    assert effects_purge(older_than=timedelta(days=7), batch=1) == 1
    assert set(Effect.objects.values_list("pk", flat=True)) == {
        recent_done.pk,
        old_failed.pk,
        pending.pk,
    }
    assert not EffectAttempt.objects.exists()
