"""EncryptedTextField: secrets (TLS client keys and certificates) encrypted at rest.

Values are Fernet tokens keyed by settings.ENCRYPTION_KEYS (MultiFernet: the first key
encrypts, every key decrypts, so keys can be rotated). A database dump alone never reveals
a client key.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.ENCRYPTION_KEYS))


class EncryptedTextField(models.TextField):
    """A text column stored as a Fernet token; empty stays empty."""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return ""
        return fernet().encrypt(value.encode()).decode()

    def from_db_value(self, value, expression, connection):
        if not value:
            return ""
        try:
            return fernet().decrypt(value.encode()).decode()
        except InvalidToken:
            raise ImproperlyConfigured(
                "stored TLS material cannot be decrypted: POSTURE_ENCRYPTION_KEY is not the key it was saved with"
            ) from None
