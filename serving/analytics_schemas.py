"""Response schemas of the analytics endpoints (GET /v1/analytics/*)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from serving.schemas import ModelOut

VolumeBy = Literal["category", "issue", "urgency", "department"]
Bucket = Literal["day", "hour"]
SlaState = Literal["on_track", "due_soon", "breached", "met"]
SlaTarget = Literal["first_response", "resolution"]


class VolumeSeries(BaseModel):
    key: str = Field(description="label id (the department's name for by=department)")
    name: str = Field(description="Chinese name")
    counts: list[int] = Field(description="one count per bucket, in the order of `buckets`")
    total: int


class VolumeOut(BaseModel):
    by: VolumeBy
    bucket: Bucket
    timezone: str
    since: datetime
    until: datetime
    buckets: list[datetime] = Field(description="start of each bucket: local midnight or the local hour")
    series: list[VolumeSeries] = Field(description="every key, zeros included: the taxonomy's order first")
    total: int


class AlertOut(BaseModel):
    category: str
    window: str = Field(description="'24h' (or the hours asked for) ending now, or 'today' since local midnight")
    observed: int = Field(description="tickets in the window")
    expected: float = Field(description="mean of the same stretch of time on the baseline days")
    score: float = Field(description="-log10 of the chance of at least `observed` under the baseline")
    since: datetime = Field(description="start of the window")


class OpenTicketOut(BaseModel):
    ticket_id: str
    urgency: str
    category: str
    issue: str
    department: str
    status: str
    received_at: datetime
    first_response_by: datetime
    resolve_by: datetime
    first_response: SlaState
    resolution: SlaState
    due_target: SlaTarget = Field(description="the next deadline to meet: first response until answered")
    due_at: datetime


class SlaCounts(BaseModel):
    first_response: dict[SlaState, int]
    resolution: dict[SlaState, int]


class OverviewOut(BaseModel):
    now: datetime
    timezone: str
    since: datetime = Field(description="start of the window of `received` and `abstain_rate`")
    until: datetime
    model: ModelOut | None = Field(description="the model serving now; null until it is loaded")
    received: int = Field(description="tickets received in the window")
    needs_review: int = Field(description="those left for a person by the model (a head below its threshold)")
    abstain_rate: float | None = Field(description="needs_review / received; null with no ticket")
    open_total: int = Field(description="tickets not yet resolved, whenever received")
    open_by_urgency: dict[str, int]
    open_by_status: dict[str, int]
    sla: SlaCounts = Field(description="service-level state of the open tickets")
    overdue: int = Field(description="open tickets whose next deadline (`due_at`) has passed")
    due_soon: int = Field(description="open tickets whose next deadline is at most `due_soon_minutes` away")
    due_soon_minutes: int
    tickets: list[OpenTicketOut] = Field(description="open tickets, most urgent first, then the nearest deadline")
    truncated: bool = Field(description="more open tickets than `limit`")


class LabelOut(BaseModel):
    id: str
    name: str


class LabelsOut(BaseModel):
    category: list[LabelOut]
    issue: list[LabelOut]
    urgency: list[LabelOut]
    sentiment: list[LabelOut]
    status: list[LabelOut]
