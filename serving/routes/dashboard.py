"""GET /dashboard: the complaint team lead's page, and its static files (no network needed at run time)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from serving.errors import ApiError

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).parent.parent / "static"
# The page keeps an API key in sessionStorage: allow no script, style or connection from elsewhere.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate (cheap: ETag) so an upgraded service never runs yesterday's script.
    "Cache-Control": "no-cache",
}


def static_file(relative: str) -> FileResponse:
    root = STATIC.resolve()
    try:
        path = (root / relative).resolve()
        found = path.is_relative_to(root) and path.is_file()
    except (OSError, ValueError):  # a name no file system accepts (a NUL byte, too long)
        found = False
    if not found:
        raise ApiError("not_found", f"no file {relative!r}")
    return FileResponse(path, headers=HEADERS)


@router.get("/dashboard")
async def dashboard() -> FileResponse:
    return static_file("dashboard.html")


@router.get("/dashboard/static/{relative:path}")
async def dashboard_static(relative: str) -> FileResponse:
    return static_file(relative)
