"""Shared helper for the in-process CLI tests (``from _cli_helpers import run``)."""

from kcollapse import cli


def run(capsys, *argv):
    """Run ``kcollapse ARGV`` in-process: ``(exit code, stdout, stderr)`` (argparse's own exits included)."""
    try:
        code = cli.main(list(argv))
    except SystemExit as e:  # argparse's own errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err
