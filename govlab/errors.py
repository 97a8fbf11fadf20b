"""Exceptions that cross module boundaries.

Every message here may reach a client (HTTP body, CLI stderr), so none may ever
quote a raw value of a data column: they name columns, roles, masks and attributes only.
"""


class GovlabError(Exception):
    """Base class: an error whose message is safe to show to the caller."""

    #: The dataset the refused request was about, when known (the audit files it there).
    dataset: str | None = None


class PolicyError(GovlabError):
    """The policy text or model is invalid (parse, schema or mask errors)."""

    def __init__(self, message: str, reasons: list[str] | None = None) -> None:
        super().__init__(message)
        self.reasons = reasons or [message]


class AccessDenied(GovlabError):
    """The principal may not see this data (unknown role, missing or ill-shaped attribute)."""


class ServiceUnavailable(GovlabError):
    """A dependency (Redis) is not answering; the request may succeed later (HTTP 503)."""


class BadRequest(GovlabError):
    """The caller asked for something malformed (unknown dataset, bad page, masked sort)."""


class ConfigError(GovlabError, ValueError):
    """A deployment setting (an environment variable) has a value govlab cannot use."""


class TableNotFound(GovlabError):
    """The table has not been seeded in this format yet."""
