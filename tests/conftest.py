"""Root test configuration: real services (PostgreSQL, Redis, dockerd) are set up by plugins."""

import pytest

pytest_plugins = [
    "tests.support.services",        # PostgreSQL / Redis: DATABASE_URL or throwaway instances
    "tests.support.docker_fixtures",  # private dockerd(s), base image, TLS certificates
]


@pytest.fixture(autouse=True)
def _fast_password_hashing(request):
    """Real hashing costs ~0.3 s per user; tests create many users and test no hashing."""
    if "django_db_setup" not in request.fixturenames and not request.node.get_closest_marker("django_db"):
        yield
        return
    settings = request.getfixturevalue("settings")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield


@pytest.fixture(autouse=True)
def _own_throttle_counts(request):
    """API throttle counts live in the shared cache (Redis under bin/test): each database test
    gets its own key prefix, so one test's requests never count against another's limits."""
    if "django_db_setup" not in request.fixturenames and not request.node.get_closest_marker("django_db"):
        yield
        return
    import uuid

    settings = request.getfixturevalue("settings")
    settings.CACHES = {**settings.CACHES,
                       "default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex[:12]}"}}
    yield
