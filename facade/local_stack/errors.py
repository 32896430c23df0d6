"""The error a launch step raises when something cannot be started."""

from __future__ import annotations


class LaunchError(Exception):
    """Something could not be started; the message says what and what to do."""
