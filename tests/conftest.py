"""Root test configuration: real services (PostgreSQL, Redis, dockerd) are set up by plugins."""

pytest_plugins = [
    "tests.support.services",        # PostgreSQL / Redis: DATABASE_URL or throwaway instances
    "tests.support.docker_fixtures",  # private dockerd(s), base image, TLS certificates
]
