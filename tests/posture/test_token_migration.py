"""Migration 0006: DRF's plain tokens (stored in clear) are dropped on upgrade, and the database
cache table for throttle counts exists whatever the cache setting was at migrate time."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import connection

pytestmark = pytest.mark.django_db
migration = importlib.import_module("posture.migrations.0006_api_tokens")


def test_it_drops_the_plain_tokens_of_an_upgraded_database(admin):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamptz, "
                       "user_id integer NOT NULL REFERENCES auth_user (id))")
        cursor.execute("INSERT INTO authtoken_token VALUES ('0123456789abcdef0123456789abcdef01234567', now(), %s)",
                       [admin.pk])
        cursor.execute("INSERT INTO django_migrations (app, name, applied) VALUES ('authtoken', '0001_initial', now())")
    ContentType.objects.create(app_label="authtoken", model="token")
    with connection.schema_editor() as editor:
        migration.drop_plain_tokens(apps, editor)
    assert "authtoken_token" not in connection.introspection.table_names()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_migrations WHERE app = 'authtoken'")
        assert cursor.fetchone()[0] == 0
    assert not ContentType.objects.filter(app_label="authtoken").exists()


def test_it_does_nothing_on_a_new_database(db):
    with connection.schema_editor() as editor:
        migration.drop_plain_tokens(apps, editor)  # no table: no error
    assert "authtoken_token" not in connection.introspection.table_names()


def test_it_creates_the_cache_table_whatever_the_cache_setting(db):
    """Under bin/test the cache is Redis (REDIS_URL), so Django's test set-up made no cache
    table: the migration did."""
    assert "posture_cache" in connection.introspection.table_names()
