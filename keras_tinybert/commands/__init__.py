"""Sub-commands of the `keras-tinybert` CLI.

Each module here defines `add_arguments(parser)` and `run(args) -> int`; `cli.py` finds
them by name (`COMMANDS`), so a command lives beside nothing but its own arguments.
"""
