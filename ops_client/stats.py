"""What the client did with the events it was given."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ClientStats:
    """Counters since the client started; `dropped` and `rejected` events are lost."""

    tracked: int = 0  #: events given to track()
    sent: int = 0  #: events the gateway acknowledged (201)
    dropped: int = 0  #: events refused because the buffer was full
    rejected: int = 0  #: events the gateway refused for good (4xx other than 429)
    retries: int = 0  #: request attempts repeated after 429, 5xx or a network error
