"""The payload codec: every Temporal payload encrypted with AES-GCM, keys rotated by id.

Every payload is encrypted, not only those that carry PII: names, emails, addresses and
phones travel inside orders, customer lookups, statuses and step notes, and picking them
out payload by payload would leak the first one somebody forgets. An encrypted payload is
the serialized original payload (its metadata and data), sealed with a fresh 12-byte
nonce; the key id is authenticated data, so a payload cannot be moved to another key's id.

    metadata: {"encoding": "binary/encrypted", "encryption-key-id": <id>}
    data:     nonce (12 bytes) + ciphertext and tag

Decoding picks the key by the payload's id, so payloads written under an older key still
read after rotation, and payloads that are not encrypted (histories from before the codec
was enabled) pass through unchanged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from commerce_sync.config.settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_SIZES = (16, 24, 32)
_HEX = re.compile(r"[0-9a-fA-F]+")


class CodecConfigError(ValueError):
    """The codec keys in settings are unusable; the message names the key id, never a key."""


class CodecError(ValueError):
    """A payload that cannot be decoded: unknown key id, or tampered / wrong-key ciphertext."""


def parse_key(key_id: str, text: str) -> bytes:
    """A key written as hex (32, 48 or 64 digits) or base64 (standard or URL-safe)."""
    text = text.strip()
    if _HEX.fullmatch(text) and len(text) // 2 in KEY_SIZES and len(text) % 2 == 0:
        return bytes.fromhex(text)
    try:
        padded = text + "=" * (-len(text) % 4)
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise CodecConfigError(f"codec key '{key_id}' is neither hex nor base64") from None
    if len(raw) not in KEY_SIZES:
        raise CodecConfigError(
            f"codec key '{key_id}' is {len(raw)} bytes; AES-GCM takes 16, 24 or 32"
        )
    return raw


@dataclass(frozen=True)
class KeyRing:
    """The keys by id and the one new payloads are encrypted under."""

    keys: Mapping[str, bytes]
    current: str
    search_key: bytes | None = None

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise CodecConfigError(f"the current codec key id '{self.current}' has no key")

    def __repr__(self) -> str:  # never print key material
        return f"KeyRing(ids={sorted(self.keys)}, current={self.current!r})"


def _read_keys_file(path: Path) -> dict[str, object]:
    try:
        loaded = json.loads(path.read_text())
    except OSError as exc:
        raise CodecConfigError(f"codec keys file {path}: {exc.strerror}") from None
    except json.JSONDecodeError:
        raise CodecConfigError(f"codec keys file {path} is not JSON") from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("keys", {}), dict):
        raise CodecConfigError(f'codec keys file {path}: expected {{"keys": {{id: key}}}}')
    return loaded


def codec_keys_path(settings: Settings) -> Path:
    """Where `commerce-sync up` generates the demo's keys (the data dir, mode 0600)."""
    return settings.data_dir / "codec-keys.json"


def with_generated_keys(settings: Settings) -> Settings:
    """Settings that name no codec key use the keys `commerce-sync up` generated into the
    data dir, when there are some: every command run beside `up` (approve, runs list, a
    second worker) then reads and writes the same encrypted payloads its children do."""
    generated = codec_keys_path(settings)
    if settings.codec.keys or settings.codec.keys_file is not None or not generated.exists():
        return settings
    codec = settings.codec.model_copy(update={"keys_file": generated})
    return settings.model_copy(update={"codec": codec})


def key_ring(settings: Settings) -> KeyRing | None:
    """The configured keys (settings and the keys file together); None when there are none."""
    config = settings.codec
    texts = {key_id: secret.get_secret_value() for key_id, secret in config.keys.items()}
    current = config.current_key_id
    search = config.search_key.get_secret_value() if config.search_key else None
    if config.keys_file is not None:
        stored = _read_keys_file(config.keys_file)
        file_keys: dict[str, object] = stored.get("keys", {})  # type: ignore[assignment]
        for key_id, text in file_keys.items():
            if key_id in texts:
                raise CodecConfigError(f"codec key id '{key_id}' is set twice (settings, file)")
            texts[key_id] = str(text)
        current = current or (str(stored["current"]) if stored.get("current") else None)
        search = search or (str(stored["search_key"]) if stored.get("search_key") else None)
    if not texts:
        return None
    if current is None:
        if len(texts) > 1:
            raise CodecConfigError("several codec keys and no current_key_id to encrypt with")
        current = next(iter(texts))
    keys = {key_id: parse_key(key_id, text) for key_id, text in texts.items()}
    search_key = search.encode() if search else None
    return KeyRing(keys=keys, current=current, search_key=search_key)


class EncryptionCodec(PayloadCodec):
    """AES-GCM over whole payloads; see the module docstring for the format."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in ring.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") == ENCODING:
            return payload  # already sealed
        key_id = self.ring.current
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=nonce + sealed
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before the codec was enabled
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecError(
                f"payload encrypted under codec key id '{key_id}', which is not configured"
            )
        if len(payload.data) < NONCE_BYTES + TAG_BYTES:
            raise CodecError(f"payload under codec key id '{key_id}' is too short to be sealed")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag:
            raise CodecError(
                f"payload under codec key id '{key_id}' does not authenticate"
                " (tampered, or a different key under the same id)"
            ) from None
        try:
            return Payload.FromString(plain)
        except DecodeError:
            raise CodecError(f"payload under codec key id '{key_id}' is no payload") from None


def payload_codec(settings: Settings) -> EncryptionCodec | None:
    ring = key_ring(settings)
    return EncryptionCodec(ring) if ring is not None else None


def normalised_email(email: str) -> str:
    return email.strip().casefold()


def email_digest(search_key: bytes, email: str) -> str:
    """The keyed hash the `CustomerEmail` search attribute holds while encryption is on:
    an operator who knows the email (and holds the key, through the CLI) finds the order;
    anyone reading visibility data learns nothing."""
    digest = hmac.new(search_key, normalised_email(email).encode(), hashlib.sha256)
    return "h1:" + digest.hexdigest()


def email_match_value(search_key: bytes | None, email: str) -> str:
    """What the app database keeps where it only has to match an e-mail (orders per e-mail):
    the keyed hash with a search key, else a plain SHA-256 (with the codec off, Temporal
    holds the e-mail in clear anyway)."""
    if search_key is not None:
        return email_digest(search_key, email)
    return "s1:" + hashlib.sha256(normalised_email(email).encode()).hexdigest()


def address_match_value(search_key: bytes | None, parts: list[str]) -> str:
    """What the app database keeps to match a shipping address (orders to one address from
    different e-mails): a hash of its street lines, postal code and country, case and
    spacing ignored; keyed like `email_match_value`, so the address itself is not kept."""
    text = "\x1f".join(" ".join(part.split()).casefold() for part in parts)
    if search_key is not None:
        return "h1:" + hmac.new(search_key, text.encode(), hashlib.sha256).hexdigest()
    return "s1:" + hashlib.sha256(text.encode()).hexdigest()


def customer_email_search_value(ring: KeyRing | None, email: str) -> str:
    """What `CustomerEmail` is set to: the email itself without encryption, its keyed hash
    with encryption and a search key, "" (not set) with encryption but no search key."""
    if ring is None:
        return email
    if ring.search_key is None:
        return ""
    return email_digest(ring.search_key, email)
