"""Secrets in one place: reading a secret file, checking its mode, making passwords, and the two
password-hash formats pantau writes and checks.

- Broker passwords (``pantau provision`` writes mosquitto's ``password_file``): mosquitto's own
  ``$7$iterations$base64(salt)$base64(hash)``, PBKDF2-HMAC-SHA512 with a 64-byte key, so
  ``mosquitto_passwd`` is not needed. These are random tokens, not human passwords.
- The collector's HTTP basic-auth password (``http.basic_auth_password_hash``):
  ``pbkdf2_sha256$iterations$salt_hex$hash_hex`` (``pantau-collector hash-password``).

Verification is constant-time and returns False for anything malformed. Secrets never reach a
log or an exception message (messages name the file, never its content).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
import sys
from pathlib import Path
from typing import Final

from pantau.contract.errors import ConfigError
from pantau.contract.files import READ_ERRORS, named_problem

#: ``token_urlsafe(24)``: 32 characters, 192 bits.
PASSWORD_BYTES: Final = 24
#: Iterations accepted when checking a stored hash (a hostile value must not cost minutes).
_MIN_ITERATIONS: Final = 1
_MAX_ITERATIONS: Final = 10_000_000

MOSQUITTO_ITERATIONS: Final = 101  # mosquitto_passwd's default
MOSQUITTO_SALT_BYTES: Final = 12

BASIC_AUTH_SCHEME: Final = "pbkdf2_sha256"
BASIC_AUTH_ITERATIONS: Final = 200_000


def new_password() -> str:
    """A fresh random password (URL-safe text, 192 bits)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


# --------------------------------------------------------------------------- secret files


def readable_by_others(path: str | os.PathLike[str]) -> bool:
    """True if a secret file can be read by group or others (POSIX only; False on Windows)."""
    if sys.platform == "win32":
        return False
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))


def read_secret(path: str | os.PathLike[str], source: str, key: str) -> str:
    """Read a one-line secret (password) file; errors name the config key that pointed to it."""
    name = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except READ_ERRORS as exc:
        raise ConfigError(source, key, named_problem(exc, name)) from None
    secret = text.strip()
    if not secret:
        raise ConfigError(source, key, f"{name} is empty")
    return secret


# --------------------------------------------------------------------------- mosquitto $7$


def mosquitto_hash(password: str, *, salt: bytes, iterations: int = MOSQUITTO_ITERATIONS) -> str:
    """Mosquitto ``$7$`` hash (PBKDF2-HMAC-SHA512, 64-byte key) of ``password``."""
    if iterations < 1:
        raise ValueError("iterations must be >= 1")
    key = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(key).decode()}"


def mosquitto_verify(hashed: str, password: str) -> bool:
    """True if ``hashed`` (a ``$7$`` hash) matches ``password``; False for anything malformed."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "7":
        return False
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except (ValueError, binascii.Error):
        return False
    if not _MIN_ITERATIONS <= iterations <= _MAX_ITERATIONS or len(expected) != 64:
        return False
    key = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(key, expected)


# --------------------------------------------------------------------------- basic auth


def basic_auth_hash(password: str, *, iterations: int = BASIC_AUTH_ITERATIONS) -> str:
    """A ``basic_auth_password_hash`` value for ``password`` (PBKDF2-SHA256, random salt)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{BASIC_AUTH_SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def parse_basic_auth_hash(value: str) -> tuple[int, bytes, bytes] | None:
    """(iterations, salt, digest) of a :func:`basic_auth_hash` value, or None if malformed."""
    parts = value.split("$")
    if len(parts) != 4 or parts[0] != BASIC_AUTH_SCHEME:
        return None
    try:
        iterations = int(parts[1])
        salt, digest = bytes.fromhex(parts[2]), bytes.fromhex(parts[3])
    except ValueError:
        return None
    if not 1000 <= iterations <= _MAX_ITERATIONS or not salt or len(digest) != 32:
        return None
    return iterations, salt, digest


def basic_auth_verify(password: str, stored: str) -> bool:
    """Check ``password`` against a :func:`basic_auth_hash` value (constant-time compare)."""
    parsed = parse_basic_auth_hash(stored)
    if parsed is None:
        return False
    iterations, salt, digest = parsed
    candidate = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return hmac.compare_digest(candidate, digest)
