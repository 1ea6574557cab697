"""Domain errors that views turn into flash messages or HTTP statuses."""


class DomainError(Exception):
    """A request the rules refuse; `message` is shown to the user, `field` names the input."""

    status = 400

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    """The object does not exist or is outside what the user may see (never reveal which)."""

    status = 404


class Forbidden(DomainError):
    """The user sees the object but may not do this to it."""

    status = 403
