"""User-facing errors.  Anything raised as a :class:`LagcHandError` carries a
message written for the person who ran the command (or the add-on user): it
says what is wrong and, where possible, what to do."""


class LagcHandError(Exception):
    exit_code = 2


class InputError(LagcHandError):
    """Bad input: a missing, corrupt, empty or unsupported video or file."""


class ModelFileError(LagcHandError):
    """A hand-model file (open model or official MANO) is missing or malformed."""


class EngineUnavailable(LagcHandError):
    """An engine was asked for but cannot run here (e.g. no checkpoint)."""


class Cancelled(LagcHandError):
    """The job was cancelled by the user."""

    exit_code = 130
