"""Where `augment --mlm` finds a masked LM: a trained head, or an error naming fit-mlm-head.

The paper's candidates come from a *pre-trained* masked LM. keras-hub's
`MaskedLM.from_preset` quietly puts a new, random head on any encoder it can load (a
backbone-only preset, a Hugging Face `BertModel` folder), and a random head's
"candidates" are noise. So each source is checked for a trained head first:

- a `.keras` file, or a run folder holding one: a saved keras-hub `MaskedLM`;
- a keras-hub preset: a folder saved by `save_to_preset` (`fit-mlm-head`'s output) or,
  with a network, a preset name or Kaggle handle: its `task.json` must be a `MaskedLM`
  and it must hold task weights;
- a Hugging Face BERT checkpoint, a folder or an `hf://` handle (with a network), of a
  `BertForMaskedLM` / `BertForPreTraining`: keras-hub converts the encoder and the
  tokenizer; the head (`cls.predictions.*`: dense, GELU, layer norm, and the vocabulary
  bias, the projection being the tied word embedding) is ported here the way keras-hub
  ports the encoder's weights.

Anything else, an encoder without its masked-LM head, is a `ValueError` naming
`keras-tinybert fit-mlm-head`, which fits one.
"""

import pathlib

import numpy as np

HF_HEAD = "cls.predictions."  # BertForMaskedLM / BertForPreTraining: BertLMPredictionHead
HF_ARCHITECTURES = ("BertForMaskedLM", "BertForPreTraining")


def load_masked_lm(spec):
    """A keras-hub `MaskedLM`, preprocessor included, whose head was trained.

    Args:
        spec: a `.keras` file or run folder, a keras-hub preset (folder, name or
            handle) or a Hugging Face BERT folder / `hf://` handle with its MLM head.

    Raises:
        ValueError: `spec` cannot be read, or holds an encoder without a masked-LM head
            (the message says how to fit one).
        FileNotFoundError: a `.keras` path that does not exist.
    """
    from keras_tinybert.runs import find_model_file, load_model

    spec = str(spec)
    path = pathlib.Path(spec)
    if path.suffix == ".keras" and not path.is_file():
        raise FileNotFoundError(f"No masked-LM file at {path}.")
    if find_model_file(path) is not None:
        return _checked(load_model(path), spec)
    loader = _preset_loader(spec)
    if "model_type" in loader.config:  # keras-hub's test for a Transformers checkpoint
        return _from_transformers(spec, loader.config)
    return _from_keras_preset(spec)


def no_head_error(spec, why):
    """The error for an encoder given where a masked LM is needed: what to run instead."""
    return ValueError(
        f"{spec} has no trained masked-LM head ({why}). Fit one on it: `keras-tinybert "
        f"fit-mlm-head --encoder {spec} --corpus TEXT_FILES --output MLM_DIR`, then "
        "`--mlm MLM_DIR`; or give a masked LM with its head (a `fit-mlm-head` output, a "
        "`.keras` MaskedLM, or a Hugging Face BertForMaskedLM such as "
        "hf://google-bert/bert-base-uncased, the paper's model, with a network)."
    )


def _checked(model, spec):
    """`model` if it is a keras-hub masked LM with a preprocessor."""
    import keras_hub

    if not isinstance(model, keras_hub.models.MaskedLM):
        raise no_head_error(spec, f"it holds a {type(model).__name__}, not a keras-hub "
                                  "MaskedLM")
    if model.preprocessor is None:
        raise ValueError(f"The masked LM in {spec} has no preprocessor (its tokenizer "
                         "is needed): save it with its preprocessor.")
    return model


def _preset_loader(spec):
    from keras_hub.src.utils.preset_utils import get_preset_loader

    try:
        return get_preset_loader(spec)
    except Exception as error:  # keras-hub raises several types for a bad preset
        raise ValueError(
            f"Could not read a masked LM from {spec!r} ({error}). Give a `.keras` file, "
            "a keras-hub preset (a `fit-mlm-head` output folder, or a preset name with "
            "a network) or a Hugging Face BERT folder with its masked-LM head."
        ) from error


def _from_keras_preset(spec):
    """A keras-hub preset's masked LM, if the preset holds one with its weights."""
    import keras_hub
    from keras_hub.src.utils import preset_utils as P

    if not P.check_file_exists(spec, P.TASK_CONFIG_FILE):
        raise no_head_error(spec, "the preset holds an encoder and no task")
    task_cls = P.check_config_class(P.load_json(spec, P.TASK_CONFIG_FILE))
    if not issubclass(task_cls, keras_hub.models.MaskedLM):
        raise no_head_error(spec, f"its task is a {task_cls.__name__}")
    if not P.check_file_exists(spec, P.TASK_WEIGHTS_FILE):
        raise no_head_error(spec, "its masked-LM task was saved without weights")
    return _checked(keras_hub.models.MaskedLM.from_preset(spec), spec)


def _from_transformers(spec, config):
    """keras-hub's masked LM for a Hugging Face BERT checkpoint, its head ported."""
    import keras_hub
    from keras_hub.src.utils.transformers.safetensor_utils import SafetensorLoader

    from keras_tinybert.augment.mlm_head import mlm_head, new_masked_lm

    architecture = (config.get("architectures") or ["(none)"])[0]
    if config["model_type"] != "bert":
        raise ValueError(
            f"{spec} is a Hugging Face {config['model_type']} checkpoint: porting its "
            "masked-LM head is done for BERT only. Load it with keras-hub's "
            "`MaskedLM` class for the family, port the head, and save it with "
            "`save_to_preset`; or fit one with `keras-tinybert fit-mlm-head`.")
    if architecture not in HF_ARCHITECTURES:
        raise no_head_error(spec, f"its checkpoint is a {architecture}")
    backbone = keras_hub.models.Backbone.from_preset(spec)
    tokenizer = keras_hub.models.Tokenizer.from_preset(spec)
    masked_lm = new_masked_lm(backbone, tokenizer)
    with SafetensorLoader(spec, prefix="") as loader:
        try:
            port_bert_head(mlm_head(masked_lm), loader)
        except KeyError as error:
            raise no_head_error(spec, f"its weights lack {error}") from error
    return masked_lm


def port_bert_head(head, loader):
    """Hugging Face `BertLMPredictionHead` weights into keras-hub's `MaskedLMHead`.

    `logits = LN(gelu(h Wᵀ + b)) Eᵀ + b_v`: `W` (torch's [out, in], so transposed), `b`,
    the layer norm (named `weight/bias` or, in the original checkpoints, `gamma/beta`)
    and `b_v`; `E`, the word embedding, is the encoder's (tied in both).
    """
    def get(name):
        try:
            return loader.get_tensor(HF_HEAD + name)
        except Exception as error:  # a missing key: KeyError, or safetensors' own error
            raise KeyError(HF_HEAD + name) from error

    try:
        gamma, beta = get("transform.LayerNorm.weight"), get("transform.LayerNorm.bias")
    except KeyError:
        gamma, beta = get("transform.LayerNorm.gamma"), get("transform.LayerNorm.beta")
    head._intermediate_dense.kernel.assign(np.transpose(get("transform.dense.weight")))
    head._intermediate_dense.bias.assign(get("transform.dense.bias"))
    head._intermediate_layer_norm.gamma.assign(gamma)
    head._intermediate_layer_norm.beta.assign(beta)
    head._bias.assign(get("bias"))
