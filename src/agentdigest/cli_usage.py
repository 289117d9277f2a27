"""How the command line's usage is shown: arguments in help as click shows them, and Typer's words for a bad
option value ("Input should be greater than or equal to 1") as the config's errors say it. ``cli`` prints them.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any


def plain_arguments(command: Any) -> Any:
    """``command`` with its subcommands' arguments shown in help as click shows them: ``REPORT_ID PERIOD`` and
    ``[REPORT_ID]...``, not Typer's ``{REPORT_ID}`` and ``REPORT_ID <list[str]>`` (a Python type means nothing
    to a reader of the help). Typer has no setting for it, so the two display methods are replaced on each
    argument where this Typer has them; another Typer keeps its own display."""
    for sub in getattr(command, "commands", {}).values():
        for param in sub.params:
            if param.param_type_name != "argument":
                continue
            if hasattr(param, "display_type_rich"):
                param.display_type_rich = lambda ctx: None
            if hasattr(param, "_usage_display_name"):
                param._usage_display_name = partial(_usage_name, param)
    return command


def _usage_name(param: Any) -> str:
    name = param.metavar or (param.name or "").upper()
    return (name if param.required else f"[{name}]") + ("..." if param.nargs != 1 else "")


TYPER_WORDS = re.compile(r"Input should be (?:(a valid integer).*|(greater than or equal to|less than or equal to) (\S+))")
TYPER_SAYS = {"a valid integer": "expected an integer", "greater than or equal to": "expected {} or more",
              "less than or equal to": "expected at most {}"}
