"""The pre-run rules gate: decide whether a graded run may start, and say why in words a user can act on.

``--closed`` stops on OPEN or INVALID, ``--open`` stops on INVALID, ``--allow-invalid-params`` lets an INVALID
run go with a warning, and without a mode the run goes with a warning that its results are not submittable.
Messages: for OPEN, each parameter that keeps the run out of CLOSED; for INVALID, each issue with its expected
and actual values, then "fix these and re-run".
"""

from __future__ import annotations

from dataclasses import dataclass

from mlps.rules import Issue, Validation, Verdict


@dataclass
class GateDecision:
    proceed: bool
    level: str  # "info", "warning" or "error"
    message: str


def _issue_line(issue: Issue) -> str:
    text = issue.message
    if issue.parameter:
        text = f"{issue.parameter}: {text}"
    if issue.expected is not None or issue.actual is not None:
        text += f" (expected {_show(issue.expected)}, actual {_show(issue.actual)})"
    return text


def _show(value) -> str:
    return "unset" if value is None else str(value)


def format_open(verdict: Verdict) -> str:
    """Each parameter that keeps the run out of CLOSED."""
    issues = [i for i in verdict.issues if i.validation == Validation.OPEN]
    lines = [f"{len(issues)} setting(s) keep this run out of CLOSED (allowed in OPEN):"]
    lines += [f"  - {_issue_line(i)}" for i in issues]
    return "\n".join(lines)


def format_invalid(verdict: Verdict) -> str:
    """Each INVALID issue with expected and actual, then the call to action."""
    issues = [i for i in verdict.issues if i.validation == Validation.INVALID]
    lines = [f"{len(issues)} problem(s) make this run INVALID:"]
    lines += [f"  - {_issue_line(i)}" for i in issues]
    lines.append("fix these and re-run")
    return "\n".join(lines)


def format_verdict(verdict: Verdict) -> str:
    if verdict.validation == Validation.INVALID:
        text = format_invalid(verdict)
        if any(i.validation == Validation.OPEN for i in verdict.issues):
            text += "\n" + format_open(verdict)
        return text
    if verdict.validation == Validation.OPEN:
        return format_open(verdict)
    return "all checked parameters are allowed in CLOSED"


def decide(verdict: Verdict, mode: str | None, allow_invalid_params: bool = False) -> GateDecision:
    """Apply the gate's policy to a verdict. ``mode`` is ``"closed"``, ``"open"`` or None.

    closed: OPEN or INVALID stops; open: INVALID stops; ``allow_invalid_params`` turns an INVALID stop into a
    warning; no mode: always proceeds with a warning that the results are not submittable.
    """
    level = verdict.validation
    if mode is None:  # no submission category asked for: grade for information, never block
        detail = "" if level == Validation.CLOSED else "\n" + format_verdict(verdict)
        return GateDecision(True, "warning", f"verdict {level.name}: running without --closed or --open, so the "
                            "results are not submittable" + detail)
    if level == Validation.INVALID:
        if allow_invalid_params:
            return GateDecision(True, "warning", "running an INVALID configuration because of "
                                "--allow-invalid-params; the results cannot be submitted\n" + format_verdict(verdict))
        return GateDecision(False, "error", format_verdict(verdict))
    if mode == "closed" and level == Validation.OPEN:
        return GateDecision(False, "error", "--closed was requested but this configuration is only valid for OPEN\n"
                            + format_open(verdict) + "\nre-run with --open, or restore these settings")
    if level == Validation.OPEN:
        return GateDecision(True, "info", "running as an OPEN configuration\n" + format_open(verdict))
    return GateDecision(True, "info", "verdict CLOSED: every checked parameter is allowed in CLOSED")


def enforce(verdict: Verdict, mode: str | None, allow_invalid_params: bool = False) -> GateDecision:
    """:func:`decide`, raising :class:`mlps.ValidationError` (exit 7) when the run must not start."""
    decision = decide(verdict, mode, allow_invalid_params)
    if not decision.proceed:
        from mlps.errors import ValidationError

        first, _, rest = decision.message.partition("\n")
        code = "E302" if verdict.validation == Validation.OPEN else "E301"
        hint = rest or "fix these and re-run"
        if verdict.validation == Validation.INVALID and mode != "closed":
            hint += "\n(or pass --allow-invalid-params to run it anyway, unsubmittable)"
        raise ValidationError(f"rules gate refused the run: {first}", issues=verdict.issues, suggestion=hint,
                              code=code)
    return decision
