"""`kt.Config`: defaults in one place, validated on construction, and the command
line's flags made from it."""

import argparse
import dataclasses

import pytest

import keras_tinybert as kt
from keras_tinybert.commands import distill, finetune_teacher
from keras_tinybert.commands.options import config_from_args
from keras_tinybert.config import parse_shape


def test_parse_shape():
    assert parse_shape("4L-312H-1200I") == {"num_layers": 4, "hidden_dim": 312,
                                            "intermediate_dim": 1200, "num_heads": None}
    assert parse_shape("2L-64H-128I-4A")["num_heads"] == 4
    with pytest.raises(ValueError, match="4L-312H-1200I"):
        parse_shape("4 layers")


def test_values_are_checked_and_normalised():
    config = kt.Config(layer_map="2,4,6", corpus="wiki.txt")
    assert config.layer_map == [2, 4, 6] and config.corpus == ["wiki.txt"]
    assert kt.Config().learning_rate_schedule == "constant"
    assert kt.Config(stage="finetune").learning_rate_schedule == "cosine"
    with pytest.raises(ValueError, match=r"Unknown stage 'bogus': use one of \['finetune'"):
        kt.Config(stage="bogus")
    with pytest.raises(ValueError, match=r"warmup is a fraction"):
        kt.Config().replace(warmup=1.5)
    with pytest.raises(ValueError, match="NL-HH-II"):
        kt.Config(student_shape="tiny")


def test_from_dict_names_where_and_the_known_options():
    with pytest.raises(ValueError, match=r"^stage 2: unknown option\(s\) \['learnig_rate'\]; "
                       r"the options are \['stage', 'teacher'"):
        kt.Config.from_dict({"learnig_rate": 1}, where="stage 2")
    with pytest.raises(ValueError, match=r"^stage 2: batch_size must be at least 1"):
        kt.Config.from_dict({"batch_size": 0}, where="stage 2")
    assert kt.Config.from_dict(kt.Config(seed=5).to_dict()) == kt.Config(seed=5)


@pytest.mark.parametrize("command", [distill, finetune_teacher])
def test_command_line_defaults_are_the_configs(command):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    required = {"teacher": "bert_tiny", "task": "sst2"}
    argv = ["--model" if command is finetune_teacher else "--teacher", "bert_tiny",
            "--task", "sst2"]
    config = config_from_args(parser.parse_args(argv))
    assert config == kt.Config(**required)
    flags = {action.dest for action in parser._actions}
    assert set(command.FLAGS) <= flags and "skip_malformed" in flags
    fields = {field.name: field for field in dataclasses.fields(kt.Config)}
    for action in parser._actions:
        if action.dest in fields:
            assert action.default == fields[action.dest].default, action.dest


def test_command_line_flags_keep_their_meaning():
    parser = argparse.ArgumentParser()
    distill.add_arguments(parser)
    args = parser.parse_args([
        "--stage", "prediction", "--no-cache-teacher", "--layer-map", "2,4",
        "--corpus", "a.txt", "b.txt", "--lr", "3e-5", "--schedule", "cosine",
        "--skip-malformed", "--new-projections", "--max-examples", "8"])
    config = config_from_args(args)
    assert (config.stage, config.cache_teacher, config.layer_map) == (
        "prediction", False, [2, 4])
    assert (config.corpus, config.lr, config.schedule) == (["a.txt", "b.txt"], 3e-5,
                                                           "cosine")
    assert config.skip_malformed and config.new_projections and config.max_examples == 8
    with pytest.raises(SystemExit):
        parser.parse_args(["--stage", "finetune"])  # distill runs distillation stages
