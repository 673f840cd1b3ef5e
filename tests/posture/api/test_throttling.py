"""API throttling: per account and, without valid credentials, per client address; counts in
a cache every web worker shares (Redis, or the database table of migration 0006); 429 with a
message and Retry-After; a forged X-Forwarded-For buys no fresh budget."""

from __future__ import annotations

import logging
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from posture.jobs.tokens import create_token
from posture.settings import env_rate
from tests.posture.conftest import api_error
from tests.posture.test_api import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["redis", "database"])
def shared_cache(request, settings):
    """The two caches a deployment uses, both real: Redis (REDIS_URL) and the database table."""
    prefix = f"throttle-test-{uuid.uuid4().hex[:8]}"
    if request.param == "redis":
        location = request.getfixturevalue("redis_url")
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                       "LOCATION": location, "KEY_PREFIX": prefix}}
    else:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache",
                                       "LOCATION": "posture_cache", "KEY_PREFIX": prefix}}
    return request.param


def bearer(token: str, **extra) -> APIClient:
    client = APIClient(**extra)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_it_throttles_requests_without_credentials_per_address(shared_cache, settings):
    settings.POSTURE_API_THROTTLE_ANON = "3/min"
    assert [APIClient().get("/api/v1/hosts/").status_code for _ in range(3)] == [401, 401, 401]
    response = APIClient().get("/api/v1/hosts/")
    assert response.status_code == 429 and 1 <= int(response["Retry-After"]) <= 60
    assert api_error(response) == {
        "status": 429, "code": "throttled",
        "message": "too many requests without valid credentials from this address: at most 3 per minute; "
                   f"try again in {response['Retry-After']} second{'s' if response['Retry-After'] != '1' else ''}"}
    assert APIClient(REMOTE_ADDR="10.0.0.9").get("/api/v1/hosts/").status_code == 401  # another address


def test_it_counts_wrong_tokens_but_not_valid_ones(shared_cache, settings, operator):
    settings.POSTURE_API_THROTTLE_ANON = "3/min"
    good = create_token(operator, "good").token
    wrong = good[:13] + ("A" if good[13] != "A" else "B") + good[14:]
    assert [bearer(wrong).get("/api/v1/hosts/").status_code for _ in range(4)] == [401, 401, 401, 429]
    assert bearer(good).get("/api/v1/hosts/").status_code == 200  # the address's anonymous budget is not the account's


def test_it_ignores_a_forged_x_forwarded_for(settings, db):
    settings.POSTURE_API_THROTTLE_ANON = "2/min"
    codes = [APIClient().get("/api/v1/hosts/", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code for i in range(3)]
    assert codes == [401, 401, 429]


def test_it_tells_clients_apart_behind_a_configured_proxy(settings, db):
    settings.POSTURE_API_THROTTLE_ANON = "1/min"
    settings.POSTURE_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    first = APIClient().get("/api/v1/hosts/", HTTP_X_FORWARDED_FOR="203.0.113.5, 198.51.100.1")
    other = APIClient().get("/api/v1/hosts/", HTTP_X_FORWARDED_FOR="203.0.113.5, 198.51.100.2")
    again = APIClient().get("/api/v1/hosts/", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.1")  # right-most counts
    assert (first.status_code, other.status_code, again.status_code) == (401, 401, 429)


def test_it_throttles_each_account_whichever_way_it_authenticates(shared_cache, settings, operator, auditor):
    settings.POSTURE_API_THROTTLE_USER = "4/min"
    token = create_token(operator, "ops").token
    assert [bearer(token).get("/api/v1/hosts/").status_code for _ in range(3)] == [200, 200, 200]
    assert client_for(operator).get("/api/v1/hosts/").status_code == 200  # a session shares the account's budget
    response = bearer(token).get("/api/v1/hosts/")
    assert response.status_code == 429 and response["Retry-After"]
    assert api_error(response)["message"].startswith("too many requests for this account: at most 4 per minute")
    assert bearer(create_token(auditor, "aud").token).get("/api/v1/hosts/").status_code == 200


def test_it_lets_requests_through_when_the_cache_is_down(settings, operator, caplog):
    settings.POSTURE_API_THROTTLE_USER = "1/min"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:9/0"}}  # discard port: nothing listens
    with caplog.at_level(logging.WARNING, logger="posture.api.throttling"):
        codes = [client_for(operator).get("/api/v1/hosts/").status_code for _ in range(2)]
    assert codes == [200, 200] and "API throttling skipped, the cache is unavailable" in caplog.text


def test_it_turns_a_limit_off(settings, db):
    settings.POSTURE_API_THROTTLE_ANON = None
    assert {APIClient().get("/api/v1/hosts/").status_code for _ in range(5)} == {401}


@pytest.mark.parametrize("raw, value", [("", "60/min"), ("10/s", "10/s"), ("5000/hour", "5000/hour"),
                                        ("off", None), ("OFF", None)])
def test_it_reads_rates_from_the_environment(monkeypatch, raw, value):
    monkeypatch.setenv("POSTURE_API_THROTTLE_ANON", raw)
    assert env_rate("POSTURE_API_THROTTLE_ANON", "60/min") == value


@pytest.mark.parametrize("raw", ["60", "60/fortnight", "0/min", "-1/min", "sixty/min", "60 /min"])
def test_it_refuses_a_bad_rate_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("POSTURE_API_THROTTLE_USER", raw)
    with pytest.raises(ImproperlyConfigured, match="POSTURE_API_THROTTLE_USER=.* is not a rate such as 60/min"):
        env_rate("POSTURE_API_THROTTLE_USER", "1200/min")


def test_it_keeps_counts_where_every_worker_sees_them():
    """Never the per-process memory cache: each gunicorn worker would count on its own."""
    from django.conf import settings

    assert settings.CACHES["default"]["BACKEND"] in ("django.core.cache.backends.redis.RedisCache",
                                                     "django.core.cache.backends.db.DatabaseCache")
