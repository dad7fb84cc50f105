"""Every bad input of the math page's Validation section (docs/schedules/math.md) raises at construction, naming parameter, value and range."""

import math
import re
from argparse import ArgumentTypeError

import pytest
import torch
from transformers.hf_argparser import string_to_bool

from hf_lrsched import (
    get_cosine_with_growing_restarts_schedule,
    get_schedule,
    get_warmup_cosine_schedule,
)
from hf_lrsched._validation import check_bool, numbers_from_strings
from hf_lrsched.param_groups import parse_param_group_rules
from hf_lrsched.training_args import _convert_str_values

from .helpers import make_optimizer

W, T = 10, 100

# (case id, schedule, positional (W, T), keyword arguments, exception, pieces of the message)
CASES = [
    ("negative T", "warmup_cosine", (0, -5), {}, ValueError, ["num_training_steps", "-5", ">= 1"]),
    ("zero T", "warmup_cosine", (0, 0), {}, ValueError, ["num_training_steps", "0", ">= 1"]),
    ("float T", "warmup_cosine", (0, 100.5), {}, TypeError, ["num_training_steps", "100.5", "integer"]),
    ("bool T", "warmup_cosine", (0, True), {}, TypeError, ["num_training_steps", "True", "integer"]),
    ("None T", "warmup_cosine", (0, None), {}, TypeError, ["num_training_steps", "None"]),
    ("negative W", "warmup_cosine", (-1, T), {}, ValueError, ["num_warmup_steps", "-1", "[0, 100]"]),
    ("W > T", "warmup_cosine", (101, T), {}, ValueError, ["num_warmup_steps", "101", "[0, 100]"]),
    ("float W", "warmup_cosine", (2.5, T), {}, TypeError, ["num_warmup_steps", "2.5", "'auto'"]),
    ("bool W", "warmup_cosine", (False, T), {}, TypeError, ["num_warmup_steps", "False"]),
    ("W word", "warmup_cosine", ("automatic", T), {}, TypeError, ["num_warmup_steps", "'automatic'", "'auto'"]),
    ("m = 1", "warmup_cosine", (W, T), dict(min_lr_ratio=1.0), ValueError, ["min_lr_ratio", "1.0", "[0, 1)"]),
    ("m < 0", "warmup_cosine", (W, T), dict(min_lr_ratio=-0.1), ValueError, ["min_lr_ratio", "-0.1", "[0, 1)"]),
    ("m nan", "warmup_cosine", (W, T), dict(min_lr_ratio=math.nan), ValueError, ["min_lr_ratio", "nan", "finite"]),
    ("m str", "warmup_cosine", (W, T), dict(min_lr_ratio="0.1"), TypeError, ["min_lr_ratio", "'0.1'", "real number"]),
    (
        "s = 1",
        "warmup_cosine",
        (W, T),
        dict(warmup_start_ratio=1.0),
        ValueError,
        ["warmup_start_ratio", "1.0", "[0, 1)"],
    ),
    ("s < 0", "warmup_cosine", (W, T), dict(warmup_start_ratio=-0.5), ValueError, ["warmup_start_ratio", "-0.5"]),
    ("k = 0", "warmup_cosine", (W, T), dict(warmup_exp_rate=0.0), ValueError, ["warmup_exp_rate", "0.0", "(0, inf)"]),
    ("k inf", "warmup_cosine", (W, T), dict(warmup_exp_rate=math.inf), ValueError, ["warmup_exp_rate", "inf"]),
    (
        "warmup type",
        "warmup_cosine",
        (W, T),
        dict(warmup_type="exp"),
        ValueError,
        ["warmup_type", "'exp'", "linear", "Did you mean 'exponential'"],
    ),
    (
        "both floors",
        "warmup_cosine",
        (W, T),
        dict(min_lr=1e-5, min_lr_ratio=0.1),
        ValueError,
        ["min_lr_ratio=0.1", "min_lr=1e-05", "not both"],
    ),
    (
        "min_lr >= lr",
        "warmup_cosine",
        (W, T),
        dict(min_lr=20.0),
        ValueError,
        ["min_lr", "20.0", "param group 0", "lr=10.0"],
    ),
    ("min_lr < 0", "warmup_cosine", (W, T), dict(min_lr=-1.0), ValueError, ["min_lr", "-1.0", "[0, inf)"]),
    (
        "auto cap",
        "warmup_cosine",
        ("auto", T),
        dict(max_auto_warmup_ratio=1.5),
        ValueError,
        ["max_auto_warmup_ratio", "1.5", "[0, 1]"],
    ),
    ("last_epoch", "warmup_cosine", (W, T), dict(last_epoch=-2), ValueError, ["last_epoch", "-2", ">= -1"]),
    (
        "r < 1",
        "cosine_with_growing_restarts",
        (W, T),
        dict(cycle_mult=0.5),
        ValueError,
        ["cycle_mult", "0.5", "[1, inf)"],
    ),
    ("r nan", "cosine_with_growing_restarts", (W, T), dict(cycle_mult=math.nan), ValueError, ["cycle_mult", "nan"]),
    ("warmup_type int", "warmup_cosine", (W, T), dict(warmup_type=1), TypeError, ["warmup_type", "1", "linear"]),
    ("decay_type None", "wsd", (W, T), dict(decay_type=None), TypeError, ["decay_type", "None", "1-sqrt"]),
    (
        "gamma 0",
        "cosine_with_growing_restarts",
        (W, T),
        dict(cycle_decay=0.0),
        ValueError,
        ["cycle_decay", "0.0", "(0, 1]"],
    ),
    (
        "gamma > 1",
        "cosine_with_growing_restarts",
        (W, T),
        dict(cycle_decay=1.1),
        ValueError,
        ["cycle_decay", "1.1", "(0, 1]"],
    ),
    (
        "both cycle modes",
        "cosine_with_growing_restarts",
        (W, T),
        dict(num_cycles=2, first_cycle_steps=10),
        ValueError,
        ["num_cycles=2", "first_cycle_steps=10", "not both"],
    ),
    (
        "zero cycles",
        "cosine_with_growing_restarts",
        (W, T),
        dict(num_cycles=0),
        ValueError,
        ["num_cycles", "0", ">= 1"],
    ),
    ("float cycles", "cosine_with_growing_restarts", (W, T), dict(num_cycles=2.5), TypeError, ["num_cycles", "2.5"]),
    (
        "zero first cycle",
        "cosine_with_growing_restarts",
        (W, T),
        dict(first_cycle_steps=0),
        ValueError,
        ["first_cycle_steps", "0", ">= 1"],
    ),
    (
        "negative R",
        "cosine_with_growing_restarts",
        (W, T),
        dict(restart_warmup_steps=-1),
        ValueError,
        ["restart_warmup_steps", "-1", ">= 0"],
    ),
    (
        "R too long, free",
        "cosine_with_growing_restarts",
        (W, T),
        dict(first_cycle_steps=5, restart_warmup_steps=5),
        ValueError,
        ["restart_warmup_steps", "5", "first_cycle_steps=5"],
    ),
    (
        "cycles under a step",
        "cosine_with_growing_restarts",
        (W, T),
        dict(num_cycles=10, cycle_mult=2.0),
        ValueError,
        ["num_cycles`=10", "cycle_mult=2.0", "90 decay steps", "cycle 0", "at least 1 step"],
    ),
    (
        "more cycles than steps",
        "cosine_with_growing_restarts",
        (W, T),
        dict(num_cycles=91, cycle_mult=1.0),
        ValueError,
        ["num_cycles`=91", "90 decay steps"],
    ),
    (
        "R too long, fit",
        "cosine_with_growing_restarts",
        (W, T),
        dict(num_cycles=3, cycle_mult=1.0, restart_warmup_steps=30),
        ValueError,
        ["cycle 1", "30 steps long", "restart_warmup_steps=30"],
    ),
    ("no decay phase", "cosine_with_growing_restarts", (T, T), {}, ValueError, ["0 decay steps"]),
    (
        "r^n overflows",
        "cosine_with_growing_restarts",
        (0, 10**6),
        dict(num_cycles=5000, cycle_mult=1.5),
        ValueError,
        ["num_cycles`=5000", "does not fit"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_at_construction(case):
    _, name, (warmup, total), kwargs, exception, pieces = case
    with pytest.raises(exception) as info:
        get_schedule(name, make_optimizer(), warmup, total, **kwargs)
    for piece in pieces:
        assert piece in str(info.value), f"{piece!r} not in: {info.value}"


def test_min_lr_names_the_offending_group():
    optimizer = make_optimizer(groups=[1e-2, 1e-5])
    with pytest.raises(ValueError, match=re.escape("param group 1 has lr=1e-05")):
        get_warmup_cosine_schedule(optimizer, 0, 10, min_lr=1e-4)


def test_nothing_is_stepped_before_the_error():
    optimizer = make_optimizer()
    with pytest.raises(ValueError):
        get_cosine_with_growing_restarts_schedule(optimizer, 0, 10, num_cycles=20)
    assert optimizer.param_groups[0]["lr"] == 10.0 and "initial_lr" not in optimizer.param_groups[0]


def test_arguments_after_the_first_three_are_keyword_only():
    with pytest.raises(TypeError):
        get_warmup_cosine_schedule(make_optimizer(), 0, 10, "exponential")


def test_auto_needs_betas_even_through_the_registry():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="no `betas`"):
        get_schedule("cosine", optimizer, "auto", 100)


def test_schedule_options_of_the_wrong_type_are_type_errors():
    from hf_lrsched.registry import parse_schedule_kwargs

    with pytest.raises(TypeError, match=r"`lr_schedule_kwargs` must be a dict \(or a JSON object string\).*got \[1\]"):
        parse_schedule_kwargs([1])
    with pytest.raises(ValueError, match="must be a JSON object"):  # a string is the right type, with a wrong value
        parse_schedule_kwargs("[1]")
    with pytest.raises(TypeError, match="A schedule name must be a string, got None"):
        get_schedule(None, make_optimizer(), 0, 10)


# ---- one reading of booleans and of numbers written as strings, for every option that takes them -------------------

WORDS = ["yes", "no", "true", "false", "t", "f", "y", "n", "1", "0"]


@pytest.mark.parametrize(
    "written",
    [case(w) for w in WORDS for case in (str.lower, str.upper, str.title)]
    + ["maybe", "", " true", "false ", "on", "off", "2", "none", "truee", "yes!"],
)
def test_a_boolean_written_as_a_string_reads_as_hfargumentparser_reads_it(written):
    # What `HfArgumentParser` accepts on the command line (`string_to_bool`), and nothing else: a JSON or YAML config
    # (which skips the command line's conversion) may not read " true" as true where the command line refuses it.
    try:
        expected = string_to_bool(written)
    except ArgumentTypeError:
        with pytest.raises(ValueError, match=rf"`save_lr_curve` must be a boolean .*got {re.escape(repr(written))}"):
            check_bool("save_lr_curve", written)
    else:
        assert check_bool("save_lr_curve", written) is expected


@pytest.mark.parametrize("written", [1, 0, None, 1.0, [True]])
def test_a_boolean_is_never_read_from_another_type(written):
    with pytest.raises(ValueError, match=rf"`auto_warmup` must be a boolean .*got {re.escape(repr(written))}"):
        check_bool("auto_warmup", written)


NUMBERS = {
    "1e-2": 0.01,
    "3": 3,
    "+3": 3,
    "-0.5": -0.5,
    ".5": 0.5,
    "2.": 2.0,
    " 4 ": 4,
    "1E3": 1000.0,
    "inf": math.inf,
    "-Infinity": -math.inf,
}
NOT_NUMBERS = ["min", "", "1_000", "0x10", "1e", "3 4", "e5", "nanx"]


@pytest.mark.parametrize("written", [*NUMBERS, *NOT_NUMBERS])
def test_a_number_written_as_a_string_reads_alike_in_schedule_options_and_the_lr_plan(written):
    # One converter: `lr_schedule_kwargs` (at any depth: a `phases` list holds dicts) and the LR plan's rules read a
    # string as the same number, or leave it as written for the check to name.
    in_options = _convert_str_values({"phases": [{"shape": "linear", "to": written}]})["phases"][0]["to"]
    in_rule = numbers_from_strings({"lr_mult": written}, keep=("pattern", "name"))["lr_mult"]
    expected = NUMBERS.get(written, written)
    for value in (in_options, in_rule):
        assert value == expected and type(value) is type(expected), (written, value)


def test_the_lr_plan_keeps_its_names_and_reads_its_counts_as_integers():
    rules = parse_param_group_rules(
        [{"pattern": "1", "name": "10", "lr_mult": "1e1", "min_lr": "1e-6", "start_step": "3", "warmup_steps": "+2"}]
    )
    assert rules == [
        {"pattern": "1", "name": "10", "lr_mult": 10.0, "min_lr": 1e-6, "start_step": 3, "warmup_steps": 2}
    ]
    assert type(rules[0]["start_step"]) is int and type(rules[0]["warmup_steps"]) is int
    with pytest.raises(
        TypeError, match=re.escape("`lr_param_groups[0]['start_step']` must be an integer >= 0, got '3.0'")
    ):
        parse_param_group_rules([{"pattern": "a", "start_step": "3.0"}])
    with pytest.raises(
        ValueError, match=re.escape("`lr_param_groups[0]['lr_mult']` must be a finite number in (0, inf), got inf")
    ):
        parse_param_group_rules([{"pattern": "a", "lr_mult": "inf"}])
