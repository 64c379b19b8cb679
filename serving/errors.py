"""Every error leaves as {"error": {"code", "message"}} with the status of SPEC section 8."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from triage.errors import TriageError

log = logging.getLogger("triage.serving")

STATUS = {
    "invalid_json": 400,
    "invalid_encoding": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "invalid_transition": 409,
    "reload_failed": 409,
    "text_too_long": 413,
    "batch_too_large": 413,
    "empty_text": 422,
    "validation_error": 422,
    "unknown_label": 422,
    "rate_limited": 429,
    "not_ready": 503,
}


class ApiError(Exception):
    def __init__(self, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers


def error_response(code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=STATUS.get(code, 400), headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str]:
    errors = exc.errors()
    for e in errors:
        if e.get("type") == "json_invalid":
            return "invalid_json", "the body is not valid JSON"
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return "validation_error", f"{where or 'body'}: {first.get('msg', 'invalid request')}"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.code, exc.message, exc.headers)

    @app.exception_handler(TriageError)
    async def _triage(_: Request, exc: TriageError) -> JSONResponse:
        return error_response(exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(*_validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's "error parsing the body": tell bad bytes from bad JSON.
            try:
                (await request.body()).decode("utf-8")
            except UnicodeDecodeError:
                return error_response("invalid_encoding", "the body is not valid UTF-8")
            return error_response("invalid_json", "the body is not valid JSON")
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}.get(
            exc.status_code, "validation_error"
        )
        return JSONResponse({"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code)

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # A value the database refuses (out of range, a character it cannot store): the caller's input.
        return error_response("validation_error", "a value in the request cannot be stored")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error: %s", type(exc).__name__)
        return JSONResponse({"error": {"code": "internal", "message": "internal error"}}, status_code=500)
