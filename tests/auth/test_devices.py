"""Device cookies: signed per account, worthless for any other account or once tampered with."""

from __future__ import annotations

import uuid

from services.auth.devices import MAX_TOKENS, DeviceCookies

ALICE, BOB = uuid.uuid4(), uuid.uuid4()


def test_a_device_token_is_valid_only_for_its_own_account() -> None:
    devices = DeviceCookies(b"k" * 32, ttl_seconds=3600)
    cookie = devices.renewed(None, ALICE)
    assert devices.device_of(cookie, ALICE) is not None
    assert devices.device_of(cookie, BOB) is None
    assert DeviceCookies(b"other key" * 4, ttl_seconds=3600).device_of(cookie, ALICE) is None


def test_a_tampered_or_malformed_cookie_names_no_device() -> None:
    devices = DeviceCookies(b"k" * 32, ttl_seconds=3600)
    nonce, expires, mac = devices.renewed(None, ALICE).split(".")
    later = str(int(expires) + 10**6)
    for forged in (f"{nonce}x.{expires}.{mac}", f"{nonce}.{later}.{mac}", f"{nonce}.{expires}", "", "~~~", "a.²³.b"):
        assert devices.device_of(forged, ALICE) is None, forged


def test_an_expired_token_names_no_device() -> None:
    devices = DeviceCookies(b"k" * 32, ttl_seconds=-1)
    assert devices.device_of(devices.renewed(None, ALICE), ALICE) is None


def test_one_browser_keeps_devices_for_a_few_accounts_and_renews_its_own() -> None:
    devices = DeviceCookies(b"k" * 32, ttl_seconds=3600)
    cookie = devices.renewed(devices.renewed(None, ALICE), BOB)
    alice_device = devices.device_of(cookie, ALICE)
    assert alice_device is not None and devices.device_of(cookie, BOB) is not None
    renewed = devices.renewed(cookie, ALICE)
    assert devices.device_of(renewed, ALICE) not in (None, alice_device)  # a fresh nonce, a fresh budget
    assert len(renewed.split("~")) == 2
    for _ in range(MAX_TOKENS + 2):
        renewed = devices.renewed(renewed, uuid.uuid4())
    assert len(renewed.split("~")) == MAX_TOKENS
