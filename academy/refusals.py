"""The one base class for refusals a user can read.

A service that refuses a request (a locked module, a submission over quota, a
re-grade of files that are gone) raises a subclass of `Refusal` with a sentence
for the person who asked and the HTTP status that answers it. Views catch
`Refusal` alone: they never map exception types to messages by hand.
"""

from __future__ import annotations


class Refusal(Exception):
    """A request the rules refuse. `message` is shown as it is; `status` answers the request."""

    status: int = 400

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return self.message
