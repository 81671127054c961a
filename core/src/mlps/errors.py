"""One error hierarchy for mlps: every error carries a code, a message, details and a suggestion.

The CLI renders an :class:`MlpsError` as ``error: <message>`` plus ``hint: <suggestion>`` and exits with
its :attr:`exit_code`; tracebacks appear only under ``--debug``. Plugins raise these (or subclasses) for
anything a user can fix.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit codes of the ``mlps`` command (documented in docs/user-guide.md)."""

    SUCCESS = 0
    INTERNAL_ERROR = 1  # a bug: unexpected exception
    USAGE = 2  # bad command line, option value or configuration file
    FILESYSTEM = 3  # a path is missing, not writable, the wrong kind, or the disk is full
    DEPENDENCY = 4  # the environment lacks something the run needs (binary, module, MPI, SSH)
    PLUGIN = 5  # the plugin providing this command failed to load
    BENCHMARK_FAILED = 6  # the benchmark ran and failed
    VALIDATION_FAILED = 7  # the rules gate refused the run (CLOSED/OPEN/INVALID)
    INTERRUPTED = 8  # Ctrl-C or SIGTERM


class MlpsError(Exception):
    """Base of every error a user may see. ``code`` is a stable string id (``E...``)."""

    code = "E901"
    exit_code = ExitCode.INTERNAL_ERROR

    def __init__(self, message: str, *, suggestion: str | None = None, details: dict | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.message = message
        self.suggestion = suggestion
        self.details = dict(details or {})
        if code:
            self.code = code

    def to_dict(self) -> dict:
        return {"type": type(self).__name__, "code": self.code, "message": self.message,
                "suggestion": self.suggestion, "details": self.details,
                "exit_code": int(self.exit_code)}

    def __str__(self) -> str:
        return self.message


class ConfigurationError(MlpsError):
    """A bad option value, parameter, host list or configuration file."""

    code = "E102"
    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, parameter: str | None = None, expected=None, actual=None, **kw):
        details = kw.pop("details", None) or {}
        for key, value in (("parameter", parameter), ("expected", expected), ("actual", actual)):
            if value is not None:
                details[key] = value
        super().__init__(message, details=details, **kw)
        self.parameter = parameter


class FileSystemError(MlpsError):
    code = "E401"
    exit_code = ExitCode.FILESYSTEM

    def __init__(self, message: str, *, path=None, operation: str | None = None, **kw):
        details = kw.pop("details", None) or {}
        if path is not None:
            details["path"] = str(path)
        if operation:
            details["operation"] = operation
        super().__init__(message, details=details, **kw)


class DependencyError(MlpsError):
    """Something the run needs is not installed or not reachable."""

    code = "E204"
    exit_code = ExitCode.DEPENDENCY


class MPIError(DependencyError):
    code = "E501"


class PluginError(MlpsError):
    """A plugin failed to load, or registered something invalid."""

    code = "E601"
    exit_code = ExitCode.PLUGIN


class ExecutionError(MlpsError):
    """The benchmark ran and failed (non-zero exit, no results, ...)."""

    code = "E201"
    exit_code = ExitCode.BENCHMARK_FAILED


class ValidationError(MlpsError):
    """The rules gate refused the run."""

    code = "E301"
    exit_code = ExitCode.VALIDATION_FAILED

    def __init__(self, message: str, *, issues=(), **kw):
        super().__init__(message, **kw)
        self.issues = list(issues)


class Interrupted(MlpsError):
    code = "E203"
    exit_code = ExitCode.INTERRUPTED
