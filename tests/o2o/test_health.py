import pytest
from django.test import override_settings


@pytest.mark.django_db
def test_healthz_reports_every_component_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "channel_layer"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.redis
@pytest.mark.django_db
def test_healthz_is_503_when_redis_is_down(client):
    # Given the cache and channel layer pointing at a Redis that does not answer
    dead = "redis://127.0.0.1:1/0"
    with override_settings(
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": dead}
        },
        CHANNEL_LAYERS={
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [dead]},
            }
        },
    ):
        from channels.layers import channel_layers

        channel_layers.backends.clear()
        # When /healthz runs
        response = client.get("/healthz")
    channel_layers.backends.clear()
    # Then it says which part is down, with a non-200
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["cache"]["ok"] is False
    assert body["checks"]["channel_layer"]["ok"] is False
    # And the public page names the kind of failure, never the address it could not reach
    assert body["checks"]["cache"]["error"] == "ConnectionError"
    assert "127.0.0.1" not in response.content.decode()
