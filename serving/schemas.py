"""Request and response schemas (pydantic), separate from the library's dataclasses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr

Channel = Literal["sms", "app", "chat", "email"]
Source = Literal["web_form", "app", "hotline", "email", "social", "chatbot", "branch"]


def _no_control_characters(value: str) -> str:
    # Identifiers and notes are stored as they are; control characters (NUL above all,
    # which PostgreSQL text cannot hold) are refused here rather than failing in the store.
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value):
        raise ValueError("control characters are not allowed")
    return value


def _plausible_time(value: datetime) -> datetime:
    # Deadlines are computed from it: a year far away overflows date arithmetic, and before
    # 1901 the bank's zone had an offset in seconds that ISO 8601 output cannot carry.
    if not 1970 <= value.year < 2100:
        raise ValueError("must be between 1970 and 2099")
    return value


Moment = Annotated[datetime, AfterValidator(_plausible_time)]
Name = Annotated[StrictStr, AfterValidator(_no_control_characters)]
Key = Annotated[StrictStr, AfterValidator(_no_control_characters), Field(min_length=1, max_length=128)]

EXAMPLE_TEXT = "我的信用卡昨晚被盗刷1.2万元，还在扣款，再不处理我就打12378"


class TriageIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"text": EXAMPLE_TEXT, "channel": "sms"}]}
    )

    text: StrictStr = Field(description="the complaint, as the customer wrote it")
    channel: Channel = Field("sms", description="reply channel of the acknowledgement draft")
    source: Source | None = Field(None, description="where the complaint came from")
    customer_id: Key | None = None
    received_at: Moment | None = Field(None, description="ISO 8601; default: now")
    idempotency_key: Key | None = Field(None, description="a repeat returns the original ticket")


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


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[TriageIn] = Field(min_length=1, description="at most the configured batch size (256 by default)")


class BatchOut(BaseModel):
    results: list[TriageOut]


Role = Literal["customer", "bot", "agent"]


class TurnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    text: StrictStr
    time: Moment | None = None


class HandoffIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "conversation": [
                        {"role": "customer", "text": "我的信用卡被盗刷了两万元"},
                        {"role": "bot", "text": "请问您是否已冻结卡片？"},
                        {"role": "customer", "text": "冻结了，还在扣款！转人工！"},
                    ],
                    "channel": "chat",
                }
            ]
        },
    )

    conversation: list[TurnIn] = Field(min_length=1, max_length=200)
    channel: Channel = "chat"
    source: Source | None = "chatbot"
    customer_id: Key | None = None
    received_at: Moment | None = None
    idempotency_key: Key | None = Field(None, description="a repeat returns the original ticket")


class SentimentPoint(BaseModel):
    turn: int
    label: str


class HandoffNoteOut(BaseModel):
    summary: str
    first_sentence: str
    sentiment_trajectory: list[SentimentPoint]
    trend: str
    signals: list[SignalOut]


class HandoffOut(TriageOut):
    handoff: HandoffNoteOut | None = Field(
        None, description="null only when the idempotency key replays a ticket that came in through /v1/triage"
    )


class FeedbackIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"ticket_id": "TS20261123-000042", "urgency": "P1", "note": "客户称仍在扣款"}]},
    )

    ticket_id: Name = Field(max_length=32)
    category: StrictStr | None = None
    issue: StrictStr | None = None
    urgency: StrictStr | None = None
    sentiment: StrictStr | None = None
    note: Name | None = Field(None, max_length=2000)


class FeedbackOut(BaseModel):
    id: int
    ticket_id: str
    labels: dict[str, str]
    note: str | None
    author: str
    created_at: datetime


Status = Literal["new", "in_progress", "replied", "resolved"]
SlaState = Literal["on_track", "due_soon", "breached", "met"]


class TicketSlaOut(BaseModel):
    first_response_by: datetime
    resolve_by: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    first_response: SlaState
    resolution: SlaState


class TicketOut(BaseModel):
    ticket_id: str
    status: Status
    status_name: str
    assignee: str | None
    customer_id: str | None
    source: str | None
    channel: str
    category: str
    issue: str
    urgency: str
    sentiment: str
    department: str
    queue: str
    needs_review: bool
    received_at: datetime
    created_at: datetime
    updated_at: datetime
    reopened: int
    sla: TicketSlaOut
    text_masked: str
    result: HandoffOut | TriageOut  # a handoff ticket keeps its note
    feedback: list[FeedbackOut] | None = None


class TicketPage(BaseModel):
    items: list[TicketOut]
    next_cursor: str | None


class TicketPatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"status": "in_progress", "assignee": "张三"}]}
    )

    status: Status | None = None
    assignee: Name | None = Field(None, min_length=1, max_length=64)


class AuditOut(BaseModel):
    actor: str
    action: str
    at: datetime
    detail: dict[str, object]


class ReloadOut(BaseModel):
    changed: bool
    model: ModelOut
    previous: ModelOut | None = None
