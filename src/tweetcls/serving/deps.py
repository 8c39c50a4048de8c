"""FastAPI dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tweetcls.serving.state import Service


async def get_service(request: Request) -> Service:
    """The app's :class:`~tweetcls.serving.state.Service` (``app.state.service``).

    ``async`` although it awaits nothing: FastAPI runs a plain ``def`` dependency in its
    thread pool, a thread hop per request that cost ~10% of the service's CPU."""
    return request.app.state.service


#: A route parameter that receives the app's service.
ServiceDep = Annotated[Service, Depends(get_service)]
