"""Unit tests for ingest_gateway.auth: API-key authentication and per-app authorization."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from ingest_gateway.auth import authorize
from ops_common.http.api_keys import authenticate
from ops_common.http.errors import AppNotAllowed, MissingApiKey
from ops_common.settings import ApiKeysInvalid, Settings, api_key_digest, hashed_api_key

CHECKOUT_KEY = "ck-7d1e0f"
ADMIN_KEY = "adm-93b2aa"
KEY_APPS: dict[str, frozenset[str]] = {
    api_key_digest(CHECKOUT_KEY): frozenset({"checkout", "cart"}),
    api_key_digest(ADMIN_KEY): frozenset({"*"}),
}


def request_with(headers: dict[str, str]) -> web.Request:
    return make_mocked_request("POST", "/telemetry", headers=headers)


def test_api_key_digest_is_sha256_hex() -> None:
    assert api_key_digest("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"X-API-Key": CHECKOUT_KEY}, frozenset({"checkout", "cart"}), id="x-api-key"),
        pytest.param({"x-api-key": ADMIN_KEY}, frozenset({"*"}), id="x-api-key-lowercase-name"),
        pytest.param(
            {"Authorization": f"Bearer {CHECKOUT_KEY}"},
            frozenset({"checkout", "cart"}),
            id="bearer",
        ),
        pytest.param(
            {"Authorization": f"bearer {ADMIN_KEY}"}, frozenset({"*"}), id="bearer-lowercase-scheme"
        ),
        pytest.param(
            {"Authorization": f"Bearer   {CHECKOUT_KEY}  "},
            frozenset({"checkout", "cart"}),
            id="bearer-extra-spaces",
        ),
        pytest.param(
            {"X-API-Key": "", "Authorization": f"Bearer {ADMIN_KEY}"},
            frozenset({"*"}),
            id="empty-x-api-key-falls-back-to-bearer",
        ),
    ],
)
def test_authenticate_returns_the_keys_apps(
    headers: dict[str, str], expected: frozenset[str]
) -> None:
    assert authenticate(request_with(headers), KEY_APPS).apps == expected


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param(
            {}, "send an API key in the X-API-Key header or as a Bearer token", id="no-key"
        ),
        pytest.param({"X-API-Key": ""}, "send an API key", id="empty-x-api-key"),
        pytest.param({"Authorization": "Bearer"}, "send an API key", id="bearer-without-token"),
        pytest.param({"Authorization": "Bearer    "}, "send an API key", id="bearer-blank-token"),
        pytest.param(
            {"Authorization": f"Basic {CHECKOUT_KEY}"}, "send an API key", id="basic-scheme"
        ),
        pytest.param({"Authorization": CHECKOUT_KEY}, "send an API key", id="bare-authorization"),
        pytest.param({"X-API-Key": "wrong-key"}, "the API key is not valid", id="wrong-x-api-key"),
        pytest.param(
            {"Authorization": "Bearer wrong-key"}, "the API key is not valid", id="wrong-bearer"
        ),
        pytest.param(
            {"X-API-Key": CHECKOUT_KEY.upper()},
            "the API key is not valid",
            id="key-is-case-sensitive",
        ),
        pytest.param(
            {"X-API-Key": "wrong-key", "Authorization": f"Bearer {ADMIN_KEY}"},
            "the API key is not valid",
            id="x-api-key-wins-over-bearer",
        ),
    ],
)
def test_authenticate_refuses_with_401(headers: dict[str, str], message: str) -> None:
    with pytest.raises(MissingApiKey) as info:
        authenticate(request_with(headers), KEY_APPS)
    assert (info.value.status, info.value.code) == (401, "unauthorized")
    assert message in info.value.message


def test_authenticate_looks_keys_up_by_digest_not_plain_text() -> None:
    plain_keyed = {CHECKOUT_KEY: frozenset({"checkout"})}
    with pytest.raises(MissingApiKey, match="the API key is not valid"):
        authenticate(request_with({"X-API-Key": CHECKOUT_KEY}), plain_keyed)


def test_authenticate_with_no_configured_keys_refuses() -> None:
    with pytest.raises(MissingApiKey) as info:
        authenticate(request_with({"X-API-Key": CHECKOUT_KEY}), {})
    assert info.value.status == 401


@pytest.mark.parametrize(
    ("allowed", "apps"),
    [
        pytest.param(frozenset({"*"}), ["checkout", "billing", "anything"], id="wildcard"),
        pytest.param(frozenset({"*", "checkout"}), ["billing"], id="wildcard-among-others"),
        pytest.param(
            frozenset({"checkout", "cart"}), ["checkout", "cart", "checkout"], id="listed-apps"
        ),
        pytest.param(frozenset({"checkout"}), [], id="no-events"),
        pytest.param(frozenset(), [], id="no-apps-no-events"),
    ],
)
def test_authorize_allows(allowed: frozenset[str], apps: list[str]) -> None:
    assert authorize(allowed, apps) is None


@pytest.mark.parametrize(
    ("allowed", "apps", "refused"),
    [
        pytest.param(frozenset({"checkout"}), ["billing"], ["billing"], id="one-other-app"),
        pytest.param(
            frozenset({"checkout"}),
            ["checkout", "zeta", "billing", "zeta"],
            ["billing", "zeta"],
            id="mixed-batch",
        ),
        pytest.param(
            frozenset({"a"}), ["z", "y", "x", "w", "a", "v"], ["v", "w", "x", "y", "z"], id="sorted"
        ),
        pytest.param(frozenset(), ["checkout"], ["checkout"], id="key-with-no-apps"),
        pytest.param(frozenset({"Checkout"}), ["checkout"], ["checkout"], id="case-sensitive"),
    ],
)
def test_authorize_refuses_other_apps_with_403(
    allowed: frozenset[str], apps: list[str], refused: list[str]
) -> None:
    with pytest.raises(AppNotAllowed) as info:
        authorize(allowed, apps)
    error = info.value
    assert (error.status, error.code) == (403, "forbidden_app")
    assert error.message == f"this API key may not send events for app(s): {', '.join(refused)}"
    assert error.details == [
        {"field": "app", "reason": f"{app!r} is not allowed for this key"} for app in refused
    ]
    for app in allowed:
        assert f"'{app}'" not in str(error.details)


def test_authorize_consumes_a_generator_of_apps() -> None:
    with pytest.raises(AppNotAllowed, match="billing"):
        authorize(frozenset({"checkout"}), (app for app in ["checkout", "billing"]))


def test_configured_digests_authenticate_the_plain_key() -> None:
    settings = Settings(OPS_API_KEYS={hashed_api_key("s3cret-key"): ["shop"], "plain-key": ["*"]})
    caller = authenticate(request_with({"X-API-Key": "s3cret-key"}), settings.api_key_apps)
    assert caller.apps == frozenset({"shop"})
    assert caller.key_digest == api_key_digest("s3cret-key")
    assert authenticate(request_with({"X-API-Key": "plain-key"}), settings.api_key_apps).apps == {
        "*"
    }
    with pytest.raises(MissingApiKey):
        authenticate(
            request_with({"X-API-Key": hashed_api_key("s3cret-key")}), settings.api_key_apps
        )


def test_keys_never_appear_in_settings_repr_or_errors() -> None:
    settings = Settings(OPS_API_KEYS={"s3cret-key": ["*"]})
    assert "s3cret-key" not in repr(settings)
    assert "s3cret-key" not in str(settings.model_dump())
    for broken in ('{"s3cret-key": "shop"}', "s3cret-key", '["s3cret-key"]'):
        with pytest.raises(ApiKeysInvalid) as refused:
            _ = Settings(OPS_API_KEYS=broken).api_key_apps
        assert "s3cret-key" not in str(refused.value)


def test_opsctl_hash_key_prints_the_configurable_form(capsys: pytest.CaptureFixture[str]) -> None:
    from opsctl.cli import main

    assert main(["hash-key", "abc"]) == 0
    assert capsys.readouterr().out.strip() == "sha256:" + api_key_digest("abc")
