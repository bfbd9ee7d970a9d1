"""The `keras-tinybert` command line: one sub-command per module in `commands/`."""

import argparse
import importlib
import sys

# sub-command -> (module in keras_tinybert.commands, one-line help)
COMMANDS = {
    "augment": ("augment", "the paper's data augmentation (MLM + GloVe) to a GLUE TSV"),
    "finetune-teacher": ("finetune_teacher", "fine-tune a pre-trained BERT teacher on a GLUE task"),
    "distill": ("distill", "one stage of TinyBERT distillation, as a new run"),
    "export": ("export", "export a student to SavedModel / TFLite and verify parity"),
    "evaluate": ("evaluate", "GLUE metric, size and CPU latency of a model or run"),
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-tinybert",
        description="TinyBERT Transformer distillation for Keras / keras-hub.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(f"keras_tinybert.commands.{module}")
        mod.add_arguments(command)
        command.set_defaults(_run=mod.run)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args._run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
