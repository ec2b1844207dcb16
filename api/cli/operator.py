"""Who the command line acts as: the operator, named after this machine's user."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.application.caller import Operator


def operator() -> Operator:
    """The user running the command, as the events it writes record it (`cli:<user>`). The use
    cases are imported here, when a command acts: not by every command that merely starts."""
    from api.application.caller import Operator

    try:
        return Operator(f"cli:{getpass.getuser()}")
    except (OSError, KeyError):  # no user name in the environment or the password database
        return Operator("cli")
