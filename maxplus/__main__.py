"""Command line: ``python -m maxplus reproduce ...`` (also the ``maxplus`` script)."""

from __future__ import annotations

import sys

COMMANDS = {"reproduce": "run the paper's experiments and write results (see --help)"}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m maxplus COMMAND [options]\n\ncommands:")
        for name, text in COMMANDS.items():
            print(f"  {name:<10} {text}")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "reproduce":
        from .reproduce import main as reproduce

        return reproduce(rest)
    print(f"error: unknown command {command!r}; known: {', '.join(COMMANDS)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
