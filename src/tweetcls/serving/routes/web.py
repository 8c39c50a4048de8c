"""``GET /``: the web page (its scripts and styles are mounted at ``/static`` by the app)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import FileResponse

#: The page's files (``index.html``, ``app.js``, ...), packaged with the service.
STATIC_DIR = resources.files("tweetcls.serving") / "static"

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    """The page: type a tweet or upload a CSV."""
    return FileResponse(str(STATIC_DIR / "index.html"), media_type="text/html")
