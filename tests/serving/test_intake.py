"""Batch triage, conversation handoff and repeat detection over real HTTP, on both stores."""

from __future__ import annotations

import uuid

import httpx
import pytest

TEXTS = ["信用卡年费乱收，之前说好免年费的", "手机银行一直闪退登录不了", "理财产品亏损，销售时说保本"]


def test_batch_keeps_order_and_opens_one_ticket_each(client: httpx.Client, agent: httpx.Client) -> None:
    r = client.post("/v1/triage/batch", json={"items": [{"text": t, "channel": "app"} for t in TEXTS]})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["text_masked"] for x in results] == TEXTS
    numbers = [x["ticket_id"] for x in results]
    assert len(set(numbers)) == 3 and numbers == sorted(numbers)
    assert all(agent.get(f"/v1/tickets/{n}").status_code == 200 for n in numbers)


def test_batch_replays_known_keys_and_numbers_only_new_items(client: httpx.Client) -> None:
    key = uuid.uuid4().hex
    first = client.post("/v1/triage", json={"text": TEXTS[0], "idempotency_key": key}).json()
    batch = client.post(
        "/v1/triage/batch", json={"items": [{"text": TEXTS[1]}, {"text": TEXTS[0], "idempotency_key": key}]}
    ).json()["results"]
    assert batch[1] == first and batch[0]["ticket_id"] != first["ticket_id"]


@pytest.mark.parametrize(
    ("items", "status", "code", "index"),
    [
        ([{"text": "好"}, {"text": ""}], 422, "empty_text", "item 1"),
        ([{"text": "好"}, {"text": "长" * 5001}], 413, "text_too_long", "item 1"),
        ([{"text": "好"}, {"text": 3}], 422, "validation_error", "items.1"),
        ([], 422, "validation_error", "items"),
        ([{"text": "好"}] * 257, 413, "batch_too_large", "257"),
    ],
)
def test_batch_is_validated_as_a_whole(
    client: httpx.Client, agent: httpx.Client, items: list, status: int, code: str, index: str
) -> None:
    before = agent.get("/v1/tickets", params={"limit": 1}).json()["items"]
    r = client.post("/v1/triage/batch", json={"items": items})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and index in r.json()["error"]["message"]
    assert agent.get("/v1/tickets", params={"limit": 1}).json()["items"] == before  # nothing stored


CONVERSATION = [
    {"role": "customer", "text": "你好，我的信用卡被盗刷了两万元"},
    {"role": "bot", "text": "请问您是否已冻结卡片？您可以在App中冻结。"},
    {"role": "customer", "text": "冻结了，可是还在扣款！你们到底管不管！我要投诉到12378！"},
]


def test_handoff_stores_the_case_with_its_note(client: httpx.Client, agent: httpx.Client) -> None:
    r = client.post("/v1/handoff", json={"conversation": CONVERSATION, "customer_id": "c-handoff"})
    assert r.status_code == 200, r.text
    body = r.json()
    note = body["handoff"]
    assert note["summary"] and note["first_sentence"]
    assert [p["turn"] for p in note["sentiment_trajectory"]] == [0, 2]
    assert {"fraud_in_progress", "regulator"} <= {s["type"] for s in note["signals"]}
    assert all(s["turn"] == 2 for s in note["signals"] if s["type"] == "regulator")
    assert body["urgency"]["label"] == "P1" and body["ticket_id"] in body["ack"]["text"]
    stored = agent.get(f"/v1/tickets/{body['ticket_id']}").json()
    assert stored["source"] == "chatbot" and stored["result"]["handoff"] == note
    assert "冻结卡片" not in stored["text_masked"]  # only the customer's turns make the case


def test_an_idempotency_key_replays_across_triage_and_handoff(client: httpx.Client) -> None:
    """Found by the fuzz test: a handoff replaying a key first used on /v1/triage answered 500."""
    key = f"shared-{uuid.uuid4()}"
    first = client.post("/v1/triage", json={"text": "信用卡年费乱收，要求退还", "idempotency_key": key})
    assert first.status_code == 200, first.text
    again = client.post("/v1/handoff", json={"conversation": CONVERSATION, "idempotency_key": key})
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replay"] == "true"
    assert again.json()["ticket_id"] == first.json()["ticket_id"] and again.json()["handoff"] is None
    key = f"shared-{uuid.uuid4()}"
    made = client.post("/v1/handoff", json={"conversation": CONVERSATION, "idempotency_key": key}).json()
    replay = client.post("/v1/triage", json={"text": "信用卡年费乱收", "idempotency_key": key})
    assert replay.status_code == 200 and replay.json()["ticket_id"] == made["ticket_id"]


@pytest.mark.parametrize(
    ("conversation", "code"),
    [
        ([], "validation_error"),
        ([{"role": "bot", "text": "您好"}], "empty_text"),
        ([{"role": "robot", "text": "您好"}], "validation_error"),
        ([{"role": "customer", "text": "长" * 5001}], "text_too_long"),
    ],
)
def test_bad_handoff(client: httpx.Client, conversation: list, code: str) -> None:
    r = client.post("/v1/handoff", json={"conversation": conversation})
    assert r.status_code in (413, 422) and r.json()["error"]["code"] == code, r.text


def test_third_ticket_of_a_customer_is_a_repeat(client: httpx.Client) -> None:
    customer = "repeat-" + uuid.uuid4().hex[:8]
    results = [client.post("/v1/triage", json={"text": TEXTS[1], "customer_id": customer}).json() for _ in range(3)]
    kinds = [{s["type"] for s in r["signals"]} for r in results]
    assert "repeat" not in kinds[0] and "repeat" not in kinds[1] and "repeat" in kinds[2]
    assert results[2]["urgency"]["label"] in ("P1", "P2")
    assert "repeat" in results[2]["urgency"]["raised_by"] or results[2]["urgency"]["model_label"] in ("P1", "P2")
