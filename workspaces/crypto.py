"""Symmetric encryption for secrets that must be read back (identity secrets).

API keys are only ever compared, so they are hashed; an identity secret has to sign and
verify HMACs and JWTs, so it is encrypted with a key derived from RAPPORT_ENCRYPTION_KEY
(or SECRET_KEY when that is unset).
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet
from django.conf import settings


@cache
def _fernet(material: str) -> Fernet:
    digest = hashlib.sha256(b"rapport-secret-storage:" + material.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _current() -> Fernet:
    return _fernet(settings.RAPPORT_ENCRYPTION_KEY or settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    return _current().decrypt(token.encode()).decode()
