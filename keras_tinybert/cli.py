"""The `keras-tinybert` command line: one sub-command per module in `commands/`.

It behaves as users of command-line tools expect:

- quiet: TensorFlow's start-up logs and warnings nobody can act on are not shown
  (`keras_tinybert.quiet`); `-v/--verbose` shows them;
- `--help` answers at once: TensorFlow is imported only to run a command;
- errors are one line, `keras-tinybert: error: <message>` on stderr: exit status 2 for
  a problem with the input or the machine (a missing file, a bad value, a malformed
  recipe, no network), 1 for anything else (a bug: the line says to run again with
  `--debug`), 130 after Ctrl-C; `--debug` prints the traceback as well.
"""

import argparse
import importlib
import os
import sys
import traceback

from keras_tinybert import __version__

PROG = "keras-tinybert"

# sub-command -> (module in keras_tinybert.commands, one-line help)
COMMANDS = {
    "fit-mlm-head": ("fit_mlm_head", "fit a masked-LM head on an encoder that ships without one (for augment --mlm)"),
    "augment": ("augment", "the paper's data augmentation (MLM + GloVe) to a GLUE TSV"),
    "finetune-teacher": ("finetune_teacher", "fine-tune a pre-trained keras-hub text model (a teacher) on a GLUE task"),
    "distill": ("distill", "one stage of TinyBERT distillation, as a new run"),
    "export": ("export", "export a student to SavedModel / TFLite and verify parity"),
    "evaluate": ("evaluate", "GLUE metric, size and CPU latency of a model or run"),
}

# Exceptions that mean "the input or the machine is wrong", not the program: a bad value
# (ValueError), a missing or existing file, a permission, a full disk, no network
# (OSError: FileNotFoundError, FileExistsError, PermissionError, requests' errors...).
USER_ERRORS = (ValueError, OSError)
DEBUG_HINT = f"{PROG}: run again with --debug for the traceback"


def _output_options():
    """-v and --debug, accepted before and after the sub-command."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="show TensorFlow's logs and every warning")
    options.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="print the traceback of an error")
    return options


def build_parser():
    output = _output_options()
    parser = argparse.ArgumentParser(
        prog=PROG, parents=[output],
        description="TinyBERT Transformer distillation for Keras / keras-hub.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text,
                                 parents=[output])
        mod = importlib.import_module(f"keras_tinybert.commands.{module}")
        mod.add_arguments(command)
        command.set_defaults(_run=mod.run, _backend=getattr(mod, "BACKEND", None))
    return parser


def _is_user_error(error):
    if isinstance(error, USER_ERRORS):
        return True
    # A recipe that is not valid YAML (PyYAML is imported only when a recipe is read).
    yaml = sys.modules.get("yaml")
    return yaml is not None and isinstance(error, yaml.YAMLError)


def _raised_here(error):
    """Whether `error` was raised by this package's code (so its message is ours)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    package = os.path.dirname(os.path.abspath(__file__))
    return tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(
        package + os.sep)


def report(error, debug=False):
    """Print `error` as a command-line tool does; return the exit status."""
    if debug:
        traceback.print_exception(error)
    if isinstance(error, KeyboardInterrupt):
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
    if isinstance(error, SystemExit):  # raise SystemExit("message"): a user error
        print(f"{PROG}: error: {error.code}", file=sys.stderr)
        return 2
    if _is_user_error(error):
        print(f"{PROG}: error: {error}", file=sys.stderr)
        if not debug and isinstance(error, ValueError) and not _raised_here(error):
            print(DEBUG_HINT, file=sys.stderr)  # a library's message: maybe a bug of ours
        return 2
    first_line = (str(error).strip().splitlines() or [""])[0]
    print(f"{PROG}: error: {type(error).__name__}: {first_line}", file=sys.stderr)
    if not debug:
        print(DEBUG_HINT, file=sys.stderr)
    return 1


def _use_backend(backend):
    """Run a command that needs one Keras backend (`BACKEND` in its module: export's
    TensorFlow graphs) on it, before Keras is imported, saying so once."""
    chosen = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend and chosen != backend and "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = backend
        print(f"note: this command runs on {backend} (KERAS_BACKEND={chosen} ignored here; "
              "the model file is the same on every backend)")


def main(argv=None):
    """Run one command; return its exit status (0 when it succeeds)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or argparse's own "usage: ... error: ..."
        return exit_.code or 0
    debug = getattr(args, "debug", False)
    _use_backend(args._backend)
    try:
        if getattr(args, "verbose", False):
            return args._run(args) or 0
        from keras_tinybert import quiet

        with quiet.quiet():
            return args._run(args) or 0
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        return report(exit_, debug)
    except (Exception, KeyboardInterrupt) as error:
        return report(error, debug)


if __name__ == "__main__":
    sys.exit(main())
