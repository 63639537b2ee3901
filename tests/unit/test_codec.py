"""The AES-GCM payload codec: round trip, rotation, unknown key ids, tampering, pass-through,
key parsing and the data converter built from settings."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DefaultFailureConverterWithEncodedAttributes

from commerce_sync.config.settings import CodecSettings, Settings
from commerce_sync.domain.models import Customer
from commerce_sync.ops.codec import (
    ENCODING,
    KEY_ID,
    CodecConfigError,
    CodecError,
    EncryptionCodec,
    KeyRing,
    customer_email_search_value,
    email_digest,
    key_ring,
    parse_key,
    payload_codec,
)
from commerce_sync.ops.temporal_client import data_converter
from sandboxes.embedded import ensure_codec_keys

K1, K2 = os.urandom(32), os.urandom(32)
EMAIL = "Jane.Shopper@Example.com"


def settings_with(**codec: object) -> Settings:
    return Settings(_env_file=None, codec=CodecSettings.model_validate(codec))


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


async def test_round_trip_hides_the_data_and_names_the_key() -> None:
    codec = EncryptionCodec(KeyRing(keys={"k1": K1}, current="k1"))
    originals = [plain(EMAIL), plain("+1 512 555 0100")]
    encoded = await codec.encode(originals)
    for payload in encoded:
        assert payload.metadata["encoding"] == ENCODING
        assert payload.metadata[KEY_ID] == b"k1"
        assert b"Shopper" not in payload.data and b"555" not in payload.data
        assert b"json/plain" not in payload.data  # the original metadata is sealed too
    assert encoded[0].data != (await codec.encode([originals[0]]))[0].data  # fresh nonce
    assert await codec.decode(encoded) == originals
    assert await codec.encode(encoded) == encoded  # sealing twice is a no-op


async def test_rotation_new_writes_use_the_new_key_old_payloads_still_decode() -> None:
    before = EncryptionCodec(KeyRing(keys={"k1": K1}, current="k1"))
    old = await before.encode([plain("written under k1")])
    after = EncryptionCodec(KeyRing(keys={"k1": K1, "k2": K2}, current="k2"))
    new = await after.encode([plain("written under k2")])
    assert new[0].metadata[KEY_ID] == b"k2"
    assert await after.decode([*old, *new]) == [
        plain("written under k1"),
        plain("written under k2"),
    ]
    # A deployment that has not got k2 yet says which key it lacks, and never a key.
    with pytest.raises(CodecError, match="'k2', which is not configured") as raised:
        await before.decode(new)
    assert K1.hex() not in str(raised.value) and base64.b64encode(K1).decode() not in str(
        raised.value
    )


async def test_unknown_tampered_and_relabelled_payloads_fail() -> None:
    codec = EncryptionCodec(KeyRing(keys={"k1": K1, "k2": K2}, current="k1"))
    [sealed] = await codec.encode([plain(EMAIL)])

    unknown = Payload(metadata={**sealed.metadata, KEY_ID: b"retired-7"}, data=sealed.data)
    with pytest.raises(CodecError, match="key id 'retired-7'"):
        await codec.decode([unknown])

    flipped = bytearray(sealed.data)
    flipped[-1] ^= 0x01
    with pytest.raises(CodecError, match="does not authenticate"):
        await codec.decode([Payload(metadata=sealed.metadata, data=bytes(flipped))])

    # The key id is authenticated data: moving a payload to another configured id fails.
    moved = Payload(metadata={**sealed.metadata, KEY_ID: b"k2"}, data=sealed.data)
    with pytest.raises(CodecError, match="'k2' does not authenticate"):
        await codec.decode([moved])


async def test_plain_payloads_pass_through_decode() -> None:
    codec = EncryptionCodec(KeyRing(keys={"k1": K1}, current="k1"))
    history_payloads = [plain("from before the codec"), Payload(metadata={}, data=b"")]
    assert await codec.decode(history_payloads) == history_payloads


def test_keys_from_settings_hex_base64_and_file(tmp_path: Path) -> None:
    assert parse_key("a", K1.hex()) == K1
    assert parse_key("b", base64.b64encode(K1).decode()) == K1
    assert parse_key("c", base64.urlsafe_b64encode(K1).decode().rstrip("=")) == K1
    with pytest.raises(CodecConfigError, match="'short' is 5 bytes"):
        parse_key("short", base64.b64encode(b"12345").decode())
    with pytest.raises(CodecConfigError, match="'bad' is neither hex nor base64"):
        parse_key("bad", "not a key!")

    assert key_ring(Settings(_env_file=None)) is None
    single = key_ring(settings_with(keys={"only": SecretStr(K1.hex())}))
    assert single is not None and single.current == "only" and single.search_key is None
    with pytest.raises(CodecConfigError, match="no current_key_id"):
        key_ring(settings_with(keys={"a": K1.hex(), "b": K2.hex()}))
    with pytest.raises(CodecConfigError, match="'zz' has no key"):
        key_ring(settings_with(keys={"a": K1.hex()}, current_key_id="zz"))

    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"current": "k2", "keys": {"k2": K2.hex()}, "search_key": "s"}))
    ring = key_ring(settings_with(keys={"k1": K1.hex()}, keys_file=str(path)))
    assert ring is not None and ring.current == "k2" and dict(ring.keys) == {"k1": K1, "k2": K2}
    assert ring.search_key == b"s"
    assert K1.hex() not in repr(ring) and "k1" in repr(ring)
    with pytest.raises(CodecConfigError, match="'k2' is set twice"):
        key_ring(settings_with(keys={"k2": K1.hex()}, keys_file=str(path)))
    path.write_text("{")
    with pytest.raises(CodecConfigError, match="is not JSON"):
        key_ring(settings_with(keys_file=str(path)))
    with pytest.raises(CodecConfigError, match="No such file"):
        key_ring(settings_with(keys_file=str(tmp_path / "missing.json")))


async def test_data_converter_adds_the_codec_only_with_keys() -> None:
    assert data_converter(Settings(_env_file=None)) is pydantic_data_converter
    converter = data_converter(settings_with(keys={"k1": K1.hex()}))
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert isinstance(converter.failure_converter, DefaultFailureConverterWithEncodedAttributes)
    customer = Customer(email=EMAIL, first_name="Jane", last_name="Shopper")
    [encoded] = await converter.encode([customer])
    assert b"Shopper" not in encoded.SerializeToString()
    [back] = await converter.decode([encoded], [Customer])
    assert back == customer
    # What the codec-less converter wrote still reads.
    [old] = await pydantic_data_converter.encode([customer])
    assert (await converter.decode([old], [Customer]))[0] == customer


def test_email_search_value_and_generated_demo_keys(tmp_path: Path) -> None:
    assert customer_email_search_value(None, EMAIL) == EMAIL
    assert customer_email_search_value(KeyRing(keys={"k": K1}, current="k"), EMAIL) == ""
    ring = KeyRing(keys={"k": K1}, current="k", search_key=b"search")
    value = customer_email_search_value(ring, EMAIL)
    assert value == email_digest(b"search", " jane.shopper@example.COM ")  # normalised
    assert value.startswith("h1:") and "jane" not in value.lower()
    assert value != email_digest(b"other", EMAIL)

    demo = Settings(_env_file=None, data_dir=tmp_path)
    path = ensure_codec_keys(demo)
    assert path is not None and path.stat().st_mode & 0o777 == 0o600
    first = path.read_text()
    assert ensure_codec_keys(demo) == path and path.read_text() == first  # kept on restart
    generated = key_ring(settings_with(keys_file=str(path)))
    assert generated is not None and generated.search_key is not None
    assert payload_codec(settings_with(keys_file=str(path))) is not None
    assert ensure_codec_keys(settings_with(keys={"own": K1.hex()})) is None
