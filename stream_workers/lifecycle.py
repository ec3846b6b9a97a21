"""Adapting our start()/stop() resources to mode's service lifecycle (Faust's worker)."""

from __future__ import annotations

from typing import Protocol

from mode import Service


class Resource(Protocol):
    """Anything with idempotent async start() and stop()."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class ResourceService(Service):
    """Starts a resource in the background (a dependency that is down must not block the
    worker's boot; users wait on it themselves) and stops it with the worker."""

    def __init__(self, resource: Resource, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._resource = resource

    async def on_start(self) -> None:
        """Begin starting the resource."""
        self.add_future(self._resource.start())

    async def on_stop(self) -> None:
        """Stop the resource."""
        await self._resource.stop()
