"""Request and response schemas (pydantic), separate from the library's dataclasses."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

Channel = Literal["sms", "app", "chat", "email"]
Source = Literal["web_form", "app", "hotline", "email", "social", "chatbot", "branch"]

EXAMPLE_TEXT = "我的信用卡昨晚被盗刷1.2万元，还在扣款，再不处理我就打12378"


class TriageIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"text": EXAMPLE_TEXT, "channel": "sms"}]}
    )

    text: StrictStr = Field(description="the complaint, as the customer wrote it")
    channel: Channel = Field("sms", description="reply channel of the acknowledgement draft")
    source: Source | None = Field(None, description="where the complaint came from")
    customer_id: StrictStr | None = Field(None, max_length=128)
    received_at: datetime | None = Field(None, description="ISO 8601; default: now")
    idempotency_key: StrictStr | None = Field(None, max_length=128)


class HeadOut(BaseModel):
    label: str
    name: str
    confidence: float
    top: list[tuple[str, float]]
    needs_review: bool


class UrgencyOut(HeadOut):
    model_label: str
    raised_by: list[str]


class SignalOut(BaseModel):
    type: str
    text: str
    start: int | None
    end: int | None
    value: float | str | None = None
    turn: int | None = None


class RouteOut(BaseModel):
    department: str
    cc: list[str]
    queue: Literal["auto", "human_review"]


class SlaOut(BaseModel):
    first_response_by: datetime
    resolve_by: datetime


class AckOut(BaseModel):
    channel: Channel
    text: str


class ModelOut(BaseModel):
    name: str
    version: str


class TriageOut(BaseModel):
    ticket_id: str | None
    text_masked: str
    category: HeadOut
    issue: HeadOut
    urgency: UrgencyOut
    sentiment: HeadOut
    signals: list[SignalOut]
    amounts_yuan: list[float]
    route: RouteOut
    sla: SlaOut
    ack: AckOut
    evidence: list[str]
    model: ModelOut
    received_at: datetime


class HealthOut(BaseModel):
    status: str
    model: ModelOut | None = None


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody
