"""CLI for ``--model`` (placeholder until the model lands; see kcollapse.cli.MODEL_MODULES)."""

from __future__ import annotations


def add_args(parser) -> None:
    """Add this model's flags to ``parser`` in its own argument group."""


def run(command, args) -> dict:
    from .cli import UsageError

    raise UsageError(f"--model {args.model} is not implemented yet")
