"""The HTTP API over real HTTP: results, auth, and the bad-input table of SPEC section 8."""

from __future__ import annotations

import httpx
import pytest

from tests.serving.conftest import LiveServer

EXAMPLE = "我的信用卡6222021234567890128昨晚被盗刷1.2万元，还在扣款，再不处理我就打12378"


def test_triage_returns_the_result_object(client: httpx.Client) -> None:
    r = client.post("/v1/triage", json={"text": EXAMPLE, "channel": "app", "received_at": "2026-11-23T09:15:00+08:00"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["text_masked"].startswith("我的信用卡6222 **** **** 0128")
    assert body["urgency"]["label"] == "P1"
    assert body["sla"]["first_response_by"] == "2026-11-23T09:30:00+08:00"
    assert body["ack"]["channel"] == "app"
    assert "6222021234567890128" not in r.text


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "model": None}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model"]["name"] == "tfidf-baseline"


def test_openapi_documents_the_triage_call(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert "/v1/triage" in spec["paths"]
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthorized"),
        ({"Authorization": "Bearer wrong"}, 401, "unauthorized"),
        ({"Authorization": "Basic aW50YWtlLWtleQ=="}, 401, "unauthorized"),
        ({"Authorization": "Bearer agent-key"}, 200, None),
        ({"Authorization": "Bearer admin-key"}, 200, None),
    ],
)
def test_auth(server: LiveServer, headers: dict[str, str], status: int, code: str | None) -> None:
    r = httpx.post(f"{server.url}/v1/triage", json={"text": "年费乱收"}, headers=headers)
    assert r.status_code == status
    if code:
        assert r.json()["error"]["code"] == code


BAD_INPUTS = [
    # (raw body, content type, status, code)
    (b"{not json", "application/json", 400, "invalid_json"),
    ('{"text": "信用卡被盗刷"}'.encode("gbk"), "application/json", 400, "invalid_encoding"),
    (b'{"text": ""}', "application/json", 422, "empty_text"),
    (b'{"text": "   "}', "application/json", 422, "empty_text"),
    (('{"text": "' + "长" * 5001 + '"}').encode(), "application/json", 413, "text_too_long"),
    (b'{"text": 12345}', "application/json", 422, "validation_error"),
    (b'{"text": ["a"]}', "application/json", 422, "validation_error"),
    (b'{"text": null}', "application/json", 422, "validation_error"),
    (b"{}", "application/json", 422, "validation_error"),
    (b"[]", "application/json", 422, "validation_error"),
    (b'{"text": "hi", "channel": "fax"}', "application/json", 422, "validation_error"),
    (b'{"text": "hi", "source": "pigeon"}', "application/json", 422, "validation_error"),
    (b'{"text": "hi", "received_at": "yesterday"}', "application/json", 422, "validation_error"),
    (b'{"text": "hi", "surprise": 1}', "application/json", 422, "validation_error"),
]


@pytest.mark.parametrize(("body", "ctype", "status", "code"), BAD_INPUTS)
def test_bad_input_gets_a_clear_error(client: httpx.Client, body: bytes, ctype: str, status: int, code: str) -> None:
    r = client.post("/v1/triage", content=body, headers={"Content-Type": ctype})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["message"]
    assert "Traceback" not in r.text


def test_oversized_body_is_refused_before_reading(client: httpx.Client) -> None:
    r = client.post(
        "/v1/triage", content=b'{"text": "' + b"a" * (2 << 20) + b'"}', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "text_too_long"


def test_unknown_route_is_a_json_404(client: httpx.Client) -> None:
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"text": "年费乱收", "idempotency_key": ""},
        {"text": "年费乱收", "idempotency_key": "a\x00b"},
        {"text": "年费乱收", "customer_id": "c\x00"},
        {"text": "年费乱收", "customer_id": ""},
        {"text": "年费乱收", "received_at": "1900-01-01T00:00:00"},
        {"text": "年费乱收", "received_at": "9999-12-31T23:59:59"},
        {"text": "年费乱收", "received_at": "0001-01-01T00:00:00+08:00"},
    ],
)
def test_bad_identifiers_and_times_are_refused(client: httpx.Client, body: dict) -> None:
    r = client.post("/v1/triage", json=body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


def test_control_characters_in_text_are_dropped_not_stored(client: httpx.Client) -> None:
    r = client.post("/v1/triage", json={"text": "信用卡\x00年费\x07乱收"})
    assert r.status_code == 200 and r.json()["text_masked"] == "信用卡年费乱收"
