"""Operator routes (v1): dead letters, failed tasks, ledger lookups. Thin calls into gateway.services."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from gateway.deps import OperatorKey, ReadKey
from gateway.responses import KEYED, problems
from gateway.services import dead_letters, failed_tasks, ledger_lookup

router = APIRouter(prefix="/api/v1", responses=problems(*KEYED))
Name = Annotated[str | None, Query(max_length=256, pattern=r"^[^\x00]*$")]
# Within a 32-bit integer: larger ids overflow the database's integer (a 500, not a 404).
LetterId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class DeadLetterSummary(BaseModel):
    """A refused message: why, which task, where from; `requeueable` when it holds a message a worker can take."""

    id: int
    at: datetime
    reason: str
    task_name: str
    task_id: str
    queue: str
    source: str
    detail: str
    raw_size: int | None
    requeueable: bool


class DeadLetterPage(BaseModel):
    """Dead letters newest first; `next_before_id` continues."""

    dead_letters: list[DeadLetterSummary]
    next_before_id: int | None


class DeadLetterDetail(DeadLetterSummary):
    """A dead letter with its excerpt and raw message, secrets masked."""

    body_excerpt: str
    raw: str | None


class LetterQuery(BaseModel):
    """Which dead letters."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=64)
    queue: str | None = Field(default=None, max_length=64)
    task_name: str | None = Field(default=None, max_length=256)
    since: datetime | None = None
    until: datetime | None = None

    def to_filter(self) -> dead_letters.LetterFilter:
        """The service's filter."""
        return dead_letters.LetterFilter(self.reason, self.queue, self.task_name, self.since, self.until)


class BulkRequeue(LetterQuery):
    """Requeue every requeueable dead letter a filter matches: `dry_run` first, then with its count."""

    dry_run: bool = True
    expected: int | None = Field(default=None, ge=0)


class BulkRequeueResult(BaseModel):
    """A dry run's count, or the ids requeued."""

    dry_run: bool
    matched: int
    requeued: list[int] = Field(default_factory=list)


class Requeued(DeadLetterSummary):
    """The dead letter sent again, and the queue it went to."""

    queue: str


class Discard(BaseModel):
    """Why a dead letter is deleted (kept in the audit trail)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")


@router.get("/dead-letters", response_model=DeadLetterPage, tags=["dead letters"], responses=problems(422))
def list_dead_letters(
    _who: OperatorKey,
    reason: Annotated[str | None, Query(max_length=64)] = None,
    queue: Annotated[str | None, Query(max_length=64)] = None,
    task_name: Name = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> DeadLetterPage:
    """Dead letters matching the filter, newest first."""
    given = dead_letters.LetterFilter(reason, queue, task_name, since, until)
    return DeadLetterPage.model_validate(dead_letters.search(given, limit, before_id))


@router.get(
    "/dead-letters/{letter_id}", response_model=DeadLetterDetail, tags=["dead letters"], responses=problems(404, 422)
)
def show_dead_letter(letter_id: LetterId, _who: OperatorKey) -> DeadLetterDetail:
    """One dead letter with its raw message (secrets masked)."""
    return DeadLetterDetail.model_validate(dead_letters.show(letter_id))


@router.post(
    "/dead-letters/{letter_id}/requeue",
    response_model=Requeued,
    tags=["dead letters"],
    responses=problems(404, 409, 413, 422),
)
def requeue_dead_letter(letter_id: LetterId, who: OperatorKey) -> Requeued:
    """Send the dead letter's message to its queue again (409 `not_requeueable` for bytes that are no message)."""
    return Requeued.model_validate(dead_letters.requeue(letter_id, actor=f"key:{who.key_id}"))


@router.post(
    "/dead-letters/requeue", response_model=BulkRequeueResult, tags=["dead letters"], responses=problems(409, 413, 422)
)
def requeue_matching(body: BulkRequeue, who: OperatorKey) -> BulkRequeueResult:
    """Bulk requeue: `dry_run` counts; `dry_run: false` with `expected` requeues (409 when the count changed)."""
    if body.dry_run or body.expected is None:
        return BulkRequeueResult(dry_run=True, matched=dead_letters.count_requeueable(body.to_filter()))
    done = dead_letters.requeue_matching(body.to_filter(), body.expected, actor=f"key:{who.key_id}")
    return BulkRequeueResult(dry_run=False, matched=body.expected, requeued=done)


@router.post(
    "/dead-letters/{letter_id}/discard",
    response_model=DeadLetterSummary,
    tags=["dead letters"],
    responses=problems(404, 409, 413, 422),
)
def discard_dead_letter(letter_id: LetterId, body: Discard, who: OperatorKey) -> DeadLetterSummary:
    """Delete a dead letter for good; the reason goes to the audit trail."""
    return DeadLetterSummary.model_validate(dead_letters.discard(letter_id, f"key:{who.key_id}", body.reason))


class FailedTask(BaseModel):
    """A task that ended FAILURE, as the result backend keeps it."""

    task_id: str
    name: str | None
    queue: str | None
    exception: str
    date_done: datetime | None
    retried_as: str | None = Field(description="The id of the retry sent, if any.")


class Retried(BaseModel):
    """The retry sent for a failed task."""

    task_id: str
    name: str
    new_task_id: str


@router.get("/failed-tasks", response_model=list[FailedTask], tags=["failed tasks"], responses=problems(422))
def list_failed(
    _who: OperatorKey, name: Name = None, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    """Tasks that ended FAILURE (kept as long as results are, a day), newest first."""
    return failed_tasks.search(name, limit)


@router.post(
    "/failed-tasks/{task_id}/retry",
    response_model=Retried,
    tags=["failed tasks"],
    responses=problems(404, 409, 413, 422),
)
def retry_failed(task_id: Annotated[str, Field(max_length=64)], who: OperatorKey) -> dict[str, Any]:
    """Send a failed task again: same name, arguments and queue, a new id."""
    return failed_tasks.retry(task_id, actor=f"key:{who.key_id}")


class AccountEvent(BaseModel):
    """One event that touched an account: its outcome and the balance before and after."""

    event_id: str | None
    event_type: str | None
    status: str | None
    codes: list[str]
    before: str | None
    after: str | None
    anomalies: list[dict[str, Any]]
    at: datetime | None


class AccountView(BaseModel):
    """An account's shadow state and its latest events."""

    account: str
    currency: str
    balance: str
    overdraft_limit: str
    closed: bool
    last_sequence: int
    events: list[AccountEvent]


class Rejections(BaseModel):
    """Rejected events per deciding code over a time range."""

    since: datetime
    until: datetime | None
    codes: dict[str, int]


class StoredResult(BaseModel):
    """A stored quick-run result: the public contract's shape (docs/ledger.md#result), its other fields kept."""

    model_config = ConfigDict(extra="allow")

    event_id: str
    status: str
    codes: list[str]
    correlation_id: str | None = None


class RecentResult(StoredResult):
    """A stored quick-run result and when it was processed."""

    processed_at: datetime


@router.get("/ledger/accounts/{account_id}", response_model=AccountView, tags=["ledger"], responses=problems(404, 422))
def ledger_account(
    account_id: Annotated[str, Field(min_length=1, max_length=128)],
    _who: ReadKey,
    last: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    """An account's shadow balance and its last `last` events with their results."""
    return ledger_lookup.account(account_id, last)


@router.get(
    "/ledger/correlations/{correlation_id}",
    response_model=list[StoredResult],
    tags=["ledger"],
    responses=problems(404, 422),
)
def ledger_by_correlation(
    correlation_id: Annotated[str, Field(min_length=1, max_length=200)],
    _who: ReadKey,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """The quick-run results carrying a correlation id, newest first."""
    return ledger_lookup.by_correlation(correlation_id, limit)


@router.get("/ledger/recent", response_model=list[RecentResult], tags=["ledger"], responses=problems(422))
def ledger_recent(
    _who: ReadKey,
    status: Literal["accepted", "rejected", "duplicate", "skipped"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    """The latest quick-run results, newest first (of one status if given)."""
    return ledger_lookup.recent(limit, status)


@router.get("/ledger/rejections", response_model=Rejections, tags=["ledger"], responses=problems(422))
def ledger_rejections(_who: ReadKey, since: datetime, until: datetime | None = None) -> Rejections:
    """Rejected events per deciding code, processed since `since` (and before `until`)."""
    return Rejections(since=since, until=until, codes=ledger_lookup.rejections(since, until))
