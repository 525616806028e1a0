"""Checking what the widget says about who a visitor is: signed JWTs, HMAC user hashes and
help-center hand-off tokens.

Pure checks: nothing here reads or writes contacts. Each failure is an `IdentifyError` with
a stable code (`invalid_signature`, `token_expired`, …) so the widget and the customer's
developers can tell exactly what is wrong, and a message that never echoes a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets as token_secrets
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import jwt
from django.conf import settings
from django.core import signing
from django.utils import timezone

from contacts import normalize
from core.errors import DomainError

JWT_ALGORITHM = "HS256"
JWT_LEEWAY_SECONDS = 60
# A JWT with a handful of contact attributes is well under 2 KB; 8 KB leaves ample room
# while keeping a hostile token from costing anything to refuse.
MAX_TOKEN_LENGTH = 8192
HANDOFF_SALT = "rapport.identity-handoff"
HANDOFF_PARAM = "rapport_identity"


class IdentifyError(DomainError):
    """A refused identify (401 unless said otherwise), with a code naming exactly why."""

    def __init__(
        self, code: str, message: str, *, status: int = 401, fields: dict | None = None
    ) -> None:
        super().__init__(message, code=code, status=status, fields=fields)


# --- Signed JWT -----------------------------------------------------------------------------


def jwt_verify(*, token: Any, secrets: Sequence[str]) -> dict[str, Any]:
    """The payload of an HS256 token signed with one of `secrets`, with `exp` checked.

    The signature is checked before any claim, so a forged token is always
    `invalid_signature` and never tells its author whether it had expired.
    """
    if not isinstance(token, str) or not token.strip():
        raise IdentifyError("malformed_token", "token must be a non-empty string (a JWT).")
    token = token.strip()
    if len(token) > MAX_TOKEN_LENGTH:
        raise IdentifyError(
            "malformed_token", f"The token is longer than {MAX_TOKEN_LENGTH} characters."
        )
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise IdentifyError(
            "malformed_token", "The token is not a JWT (header.payload.signature)."
        ) from None
    algorithm = header.get("alg")
    if algorithm != JWT_ALGORITHM:
        shown = algorithm if isinstance(algorithm, str) else repr(algorithm)
        raise IdentifyError(
            "algorithm_not_allowed",
            f"The token is signed with {shown[:20]!r}; only {JWT_ALGORITHM} is accepted.",
        )
    if not secrets:
        raise IdentifyError(
            "invalid_signature", "Identity verification has no secret for this agent."
        )
    for secret in secrets:
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=[JWT_ALGORITHM],
                leeway=JWT_LEEWAY_SECONDS,
                # `aud` and `iss` are the customer's business; Rapport does not define them.
                # `exp` is checked below, more strictly than PyJWT does (which reads "9999…"
                # strings and any far-away date).
                options={"require": ["exp"], "verify_aud": False, "verify_exp": False},
            )
        except jwt.InvalidSignatureError:
            continue  # maybe signed with the previous secret, still in its grace period
        except jwt.ExpiredSignatureError:
            raise IdentifyError(
                "token_expired",
                f"The token's exp has passed (more than {JWT_LEEWAY_SECONDS} s ago); "
                "sign a fresh one.",
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise IdentifyError(
                f"missing_{exc.claim}", f"The token has no {exc.claim!r} claim; it is required."
            ) from None
        except jwt.ImmatureSignatureError:
            raise IdentifyError(
                "token_not_yet_valid", "The token's nbf or iat is in the future."
            ) from None
        except jwt.DecodeError as exc:
            raise IdentifyError("malformed_token", f"The token cannot be read: {exc}") from None
        except jwt.InvalidTokenError as exc:
            raise IdentifyError(
                "invalid_claims", f"The token's claims are invalid: {exc}"
            ) from None
        _check_expiry(claims.get("exp"))
        return claims
    raise IdentifyError(
        "invalid_signature",
        "The token's signature does not match this agent's identity secret.",
    )


def _check_expiry(exp: Any) -> None:
    """`exp` is a number of seconds since the epoch, not passed (beyond the leeway), and at
    most IDENTITY_TOKEN_MAX_LIFETIME_SECONDS ahead: a leaked token must not live forever."""
    if isinstance(exp, bool) or not isinstance(exp, (int, float)) or not math.isfinite(exp):
        raise IdentifyError(
            "invalid_claims", "The token's exp must be a number (seconds since 1970, UTC)."
        )
    now = time.time()
    if exp < now - JWT_LEEWAY_SECONDS:
        raise IdentifyError(
            "token_expired",
            f"The token's exp has passed (more than {JWT_LEEWAY_SECONDS} s ago); sign a fresh one.",
        )
    lifetime = settings.IDENTITY_TOKEN_MAX_LIFETIME_SECONDS
    if exp > now + lifetime + JWT_LEEWAY_SECONDS:
        raise IdentifyError(
            "token_lifetime_too_long",
            f"The token's exp is more than {lifetime} s ahead; sign tokens that expire "
            "sooner (an hour is plenty: the widget identifies again on every page load).",
        )


def user_id_from_claim(value: Any) -> str:
    """`user_id` as stored (external_id): a string or a number, kept as a string."""
    if value is None or value == "":
        raise IdentifyError("missing_user_id", "user_id is required.")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise IdentifyError("invalid_user_id", "user_id must be a string or a number.")
    if isinstance(value, float) and not value.is_integer():
        raise IdentifyError("invalid_user_id", "A numeric user_id must be a whole number.")
    if isinstance(value, str) and value != value.strip():
        # The signature covers the id exactly as sent: trimming it after verification would
        # let " victim-1" (signed by anyone who can sign that string) reach "victim-1".
        raise IdentifyError(
            "invalid_user_id",
            "user_id has leading or trailing whitespace; send the id exactly as your "
            "system stores it.",
        )
    try:
        normalized = normalize.normalize_external_id(value)
    except normalize.FieldError as exc:
        raise IdentifyError("invalid_user_id", str(exc).replace("external_id", "user_id")) from None
    if normalized is None:
        raise IdentifyError("missing_user_id", "user_id is required.")
    return normalized


# --- HMAC user hash -------------------------------------------------------------------------


def user_hash_for(*, secret: str, user_id: str) -> str:
    """Hex HMAC-SHA256 of `user_id` keyed with the identity secret (what customers compute)."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def hmac_verify(*, user_id: Any, user_hash: Any, secrets: Sequence[str]) -> str:
    """The stored form of `user_id` when `user_hash` proves it; IdentifyError otherwise."""
    if user_id is None or user_id == "":
        raise IdentifyError("missing_user_id", "user_hash needs the user_id it signs.")
    if isinstance(user_id, bool) or not isinstance(user_id, (str, int)):
        raise IdentifyError(
            "invalid_user_id", "user_id must be a string or a whole number (as it was hashed)."
        )
    if user_hash is None or user_hash == "":
        raise IdentifyError(
            "missing_user_hash",
            "user_id must be signed: send user_hash (HMAC-SHA256 of user_id), or a token.",
        )
    if not isinstance(user_hash, str):
        raise IdentifyError("invalid_signature", "user_hash must be a hex string.")
    signed = str(user_id)
    stored = user_id_from_claim(user_id)
    given = user_hash.strip().lower().encode()
    # compare_digest on every secret: the time taken says nothing about how close a guess was.
    matches = [
        hmac.compare_digest(given, user_hash_for(secret=s, user_id=signed).encode())
        for s in secrets
    ]
    if not any(matches):
        raise IdentifyError(
            "invalid_signature",
            "user_hash is not the HMAC-SHA256 of user_id with this agent's identity secret.",
        )
    return stored


# --- Help-center hand-off -------------------------------------------------------------------


def handoff_token_issue(*, agent_public_id: str, contact_id: str) -> str:
    """A short-lived, single-use token naming a verified contact of this agent."""
    return signing.dumps(
        {"a": agent_public_id, "c": contact_id, "j": token_secrets.token_urlsafe(16)},
        salt=HANDOFF_SALT,
        compress=False,
    )


def handoff_token_read(*, agent_public_id: str, token: Any) -> tuple[str, str, datetime]:
    """(contact id, token id, expiry) of a valid hand-off token for this agent."""
    if not isinstance(token, str) or not token or len(token) > 500:
        raise IdentifyError("invalid_identity_token", "identity_token must be a short string.")
    max_age = settings.IDENTITY_HANDOFF_MAX_AGE_SECONDS
    try:
        payload = signing.loads(token, salt=HANDOFF_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise IdentifyError(
            "identity_token_expired",
            f"The identity token is older than {max_age} s; open the link again.",
        ) from None
    except signing.BadSignature:
        raise IdentifyError("invalid_identity_token", "The identity token is not valid.") from None
    if (
        not isinstance(payload, dict)
        or payload.get("a") != agent_public_id
        or not isinstance(payload.get("c"), str)
        or not isinstance(payload.get("j"), str)
    ):
        raise IdentifyError("invalid_identity_token", "The identity token is not for this agent.")
    expires = timezone.now() + timedelta(seconds=max_age)
    return payload["c"], payload["j"], expires
