"""Routes of the reports service: validate → authorise → one transaction (change + event) → respond."""

from __future__ import annotations

from uuid import UUID

from quart import Blueprint, Response
from quart_schema import validate_querystring, validate_request, validate_response

from services.kit.app import current_db, handler_deadline
from services.kit.contract import links, responses
from services.kit.problem import Problem
from services.kit.security import current_user_id, require_scope
from services.reports import events
from services.reports.schemas import Report, ReportList, ReportListQuery, ReportRequest, SummaryOut
from services.reports.state import reports_state
from services.reports.store import read_model, report_jobs

bp = Blueprint("reports", __name__)


def _report(row: report_jobs.JobRow) -> Report:
    return Report.model_validate(row.public())


@bp.get("/reports/summary")
@require_scope("reports:read")
@validate_response(SummaryOut)
async def get_summary() -> SummaryOut:
    """The caller's live statistics, from the read model the todo events keep (eventually consistent)."""
    async with current_db().connection() as conn:
        summary = await read_model.summary(conn, current_user_id())
    return SummaryOut.model_validate(summary, from_attributes=True)


@bp.post("/reports")
@require_scope("reports:write")
@validate_request(ReportRequest)
@validate_response(Report, 202)
@links(202, get_report="report_id", get_report_file="report_id")
@responses(describe={429: "The caller already has MAX_UNFINISHED_JOBS reports queued or running (Retry-After)."})
async def request_report(data: ReportRequest) -> tuple[Report, int, dict[str, str]]:
    """Queue a report; the worker renders it. 429 while the caller has too many unfinished ones."""
    owner = current_user_id()
    limit = reports_state().settings.max_unfinished_jobs
    async with current_db().transaction() as conn:
        try:
            row = await report_jobs.create_job(conn, owner, data.format, max_unfinished=limit)
        except read_model.AccountDeleted:
            raise Problem(403, "this account has been deleted") from None
        if row is None:
            raise Problem(
                429, f"you already have {limit} reports queued or running; wait for one", headers={"Retry-After": "5"}
            )
        await events.report_requested(conn, row)
    return _report(row), 202, {"Location": f"/reports/{row.id}"}


@bp.get("/reports")
@require_scope("reports:read")
@validate_querystring(ReportListQuery)
@validate_response(ReportList)
@responses(400, describe={400: "The cursor was not made by this service."})
async def list_reports(query_args: ReportListQuery) -> ReportList:
    """The caller's reports, newest first, one keyset page at a time (``next_cursor``, like todos)."""
    try:
        after = report_jobs.decode_cursor(query_args.cursor) if query_args.cursor else None
    except report_jobs.BadCursor:
        raise Problem(400, "the cursor is not valid for this listing") from None
    async with current_db().connection() as conn:
        rows = await report_jobs.list_jobs(conn, current_user_id(), limit=query_args.limit + 1, after=after)
    page, more = rows[: query_args.limit], len(rows) > query_args.limit
    return ReportList(
        items=[_report(r) for r in page], next_cursor=report_jobs.encode_cursor(page[-1]) if more else None
    )


@bp.get("/reports/<uuid:report_id>")
@require_scope("reports:read")
@validate_response(Report)
async def get_report(report_id: UUID) -> Report:
    """One report's status and progress."""
    async with current_db().connection() as conn:
        row = await report_jobs.get_job(conn, current_user_id(), report_id)
    if row is None:
        raise Problem(404, "report not found")
    return _report(row)


@bp.get("/reports/<uuid:report_id>/file")
@handler_deadline(25.0)  # a whole rendered file from the database; the gateway allows 30 s
@require_scope("reports:read")
@responses(
    409,
    describe={200: "The rendered report.", 409: "The report is not done (yet); it has no file."},
    content={
        200: {
            "text/csv": {"schema": {"type": "string"}},
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object"}},
        }
    },
)
async def get_report_file(report_id: UUID) -> Response:
    """The rendered file (409 while the report is not done)."""
    owner = current_user_id()
    async with current_db().connection() as conn:
        file = await report_jobs.get_file(conn, owner, report_id)
        if file is None:
            row = await report_jobs.get_job(conn, owner, report_id)
            if row is None:
                raise Problem(404, "report not found")
            raise Problem(409, f"the report is {row.status}, it has no file", headers={"Retry-After": "2"})
    return Response(
        file.body,
        content_type=file.content_type,
        headers={"Content-Disposition": f'attachment; filename="{file.filename}"', "Cache-Control": "private"},
    )
