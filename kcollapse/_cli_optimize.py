"""Sub-commands defined outside kcollapse.cli (placeholder)."""

from __future__ import annotations


def register(subparsers) -> None:
    """Add this module's sub-commands to ``subparsers``."""
