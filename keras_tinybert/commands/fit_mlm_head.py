"""`keras-tinybert fit-mlm-head`: a masked-LM head for an encoder that ships without one.

    keras-tinybert fit-mlm-head --encoder PRETRAINED \\
        --corpus sst2/train.tsv wikitext-2/valid.txt --eval wikitext-2/test.txt \\
        --output runs/minilm-mlm [--unfreeze-top N] [--epochs 3] [--max-examples N]

trains a new, tied masked-LM head on the (frozen) encoder with BERT's masking, prints
masked-token top-1 / top-10 accuracy on held-out text and saves a keras-hub masked LM to
`--output`, which `keras-tinybert augment --mlm OUTPUT` loads
(`keras_tinybert.augment.mlm_head.fit_mlm_head`).
"""

import sys


def add_arguments(parser):
    parser.add_argument("--encoder", required=True,
                        help="keras-hub preset, Hugging Face folder or saved run/.keras")
    parser.add_argument("--corpus", required=True, nargs="+",
                        help="training text: .txt files/folders/globs (WikiText layout "
                        "understood) or GLUE TSVs (TASK:PATH, or a path in a folder "
                        "named after the task)")
    parser.add_argument("--eval", nargs="+",
                        help="held-out text for top-1/top-10 (default: 5%% of --corpus)")
    parser.add_argument("--output", required=True, help="new or empty output folder")
    parser.add_argument("--unfreeze-top", type=int, default=0,
                        help="also train the encoder's top N blocks (default 0: frozen)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--maskings", type=int, default=1,
                        help="frozen encoder: maskings of the corpus computed once each")
    parser.add_argument("--max-examples", type=int, help="train on N sampled sentences")
    parser.add_argument("--eval-examples", type=int, help="evaluate on N sampled sentences")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per batch")
    parser.add_argument("--token-batch-size", type=int, default=256,
                        help="frozen encoder: masked tokens per head-training step")
    parser.add_argument("--lr", type=float,
                        help="peak learning rate (default 1e-3 frozen, 2e-4 unfrozen)")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)


def run(args):
    """Fit and save; bad input prints the problem (no traceback) and returns 2."""
    from keras_tinybert.augment.mlm_head import fit_mlm_head

    try:
        fit_mlm_head(
            args.encoder, args.corpus, args.output, eval_files=args.eval,
            unfreeze_top=args.unfreeze_top, epochs=args.epochs, maskings=args.maskings,
            max_examples=args.max_examples, eval_examples=args.eval_examples,
            batch_size=args.batch_size, token_batch_size=args.token_batch_size,
            learning_rate=args.lr, sequence_length=args.seq_len, seed=args.seed,
            log=lambda message: print(message, flush=True))
    except (ValueError, FileNotFoundError) as error:
        print(f"keras-tinybert fit-mlm-head: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.output} (keras-tinybert augment --mlm {args.output})")
    return 0
