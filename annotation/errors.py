"""Domain errors raised by services and selectors; the API maps them to HTTP codes.

Each carries a message a person can act on and the HTTP status it stands for.
"""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidGrade(DomainError):
    status_code = 400


class InvalidInput(DomainError):
    status_code = 400


class NotAnExpert(DomainError):
    status_code = 403


class ClipNotFound(DomainError):
    status_code = 404


class VoteNotFound(DomainError):
    status_code = 404


class AlreadyVoted(DomainError):
    status_code = 409


class UndoWindowPassed(DomainError):
    status_code = 409


class ClipNotOffered(DomainError):
    """A vote for a clip never handed to this expert, or no longer wanted."""

    status_code = 409


class VoteFinal(DomainError):
    """The site reveals the panel after each vote, so votes cannot change."""

    status_code = 409


class ClipInactive(DomainError):
    status_code = 409


class ReviewClosed(DomainError):
    status_code = 409


class RecordingNotFound(DomainError):
    status_code = 404
