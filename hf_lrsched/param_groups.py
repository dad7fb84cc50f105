"""Param groups for an LR plan: rates by parameter name (ordered regular-expression rules, first match wins),
layer-wise learning-rate decay, and weight decay exactly as `transformers`' `Trainer` applies it.

[`build_param_groups`] returns the optimizer's param groups; each records the plan it follows (`name`, `lr_mult`,
`min_lr`, `min_lr_ratio`, `start_step`, `warmup_steps`, the keys of `PLAN_KEYS`) for the scheduler to read.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import torch
from transformers.utils import logging

from ._validation import check_float, check_int, numbers_from_strings, suggest

logger = logging.get_logger(__name__)

__all__ = [
    "PLAN_KEYS",
    "RULE_KEYS",
    "build_param_groups",
    "check_layer_decay",
    "check_param_group_rules",
    "group_labels",
    "has_param_group_plan",
    "parameter_layer_ids",
    "parse_param_group_rules",
]

# The keys a rule may set, and the keys every param group built here records besides `params`, `lr` and
# `weight_decay` (what the scheduler reads).
RULE_KEYS = ("pattern", "name", "lr_mult", "weight_decay", "min_lr", "min_lr_ratio", "start_step", "warmup_steps")
PLAN_KEYS = ("name", "lr_mult", "min_lr", "min_lr_ratio", "start_step", "warmup_steps")

# The stacks of layers found without `layer_pattern`, each with the config attribute that holds its number of layers:
# ALBERT's shared layer groups (`albert.encoder.albert_layer_groups.<g>.`), then the `encoder.layer.<i>.` of
# BERT, RoBERTa, DeBERTa(-v2) and ELECTRA, DistilBERT's `transformer.layer.<i>.`, GPT-2's `transformer.h.<i>.` and the
# `model.layers.<i>.` of Llama, Mistral and Qwen2 (any prefix, PEFT's `base_model.model.` included).
LAYER_STACKS = (
    (r"(?:^|\.)albert_layer_groups\.(\d+)\.", "num_hidden_groups"),
    (r"(?:^|\.)(?:layer|layers|h)\.(\d+)\.", "num_hidden_layers"),
)

_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")


def check_layer_decay(layer_decay, option: str = "layer_decay") -> float:
    """Return `layer_decay` (gamma) as a `float` in `(0, 1]`, else raise naming `option`."""
    return check_float(option, layer_decay, low=0.0, high=1.0, low_open=True)


def check_param_group_rules(rules, option: str = "rules") -> list[dict[str, Any]]:
    """
    Check an LR plan's rules and return them as a list of dicts with every key of `RULE_KEYS` (unset ones `None`).

    Each error names the rule (`rules[1]`), the key and what is allowed: an unknown key (with the closest valid name),
    a missing `pattern` or one that is not a valid regular expression, `lr_mult` not a finite number above 0,
    `weight_decay` or `min_lr` below 0, `min_lr_ratio` outside `[0, 1)`, both `min_lr` and `min_lr_ratio`, a negative
    or non-integer `start_step` or `warmup_steps`, booleans given as numbers, two rules with one `name`.

    Args:
        rules (`list[dict]` or `None`):
            The rules, in order; `None` is no rule.
        option (`str`, *optional*, defaults to `"rules"`):
            The name of the option in messages (`lr_param_groups` for the training arguments).
    """
    if rules is None:
        return []
    if isinstance(rules, (str, bytes, Mapping)) or not isinstance(rules, Sequence):
        raise TypeError(
            f"`{option}` must be a list of dicts (one per rule, each with a `pattern`), got {rules!r} "
            f"({type(rules).__name__})."
        )
    checked: list[dict[str, Any]] = []
    names: dict[str, int] = {}
    for index, rule in enumerate(rules):
        where = f"{option}[{index}]"
        if not isinstance(rule, Mapping):
            raise TypeError(
                f"`{where}` must be a dict with a `pattern` and any of {list(RULE_KEYS[1:])}, got {rule!r} "
                f"({type(rule).__name__})."
            )
        for key in rule:
            if key not in RULE_KEYS:
                raise ValueError(
                    f"`{where}` has an unknown key {key!r}; the keys are {list(RULE_KEYS)}.{suggest(key, RULE_KEYS)}"
                )
        if "pattern" not in rule:
            raise ValueError(f"`{where}` has no `pattern`: a regular expression searched in each parameter's name.")
        out: dict[str, Any] = dict.fromkeys(RULE_KEYS)
        pattern = rule["pattern"]
        if not isinstance(pattern, str):
            raise TypeError(f"`{where}['pattern']` must be a string (a regular expression), got {pattern!r}.")
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"`{where}['pattern']`={pattern!r} is not a valid regular expression: {error}.") from None
        out["pattern"] = pattern
        name = rule.get("name")
        if name is not None:
            if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
                raise ValueError(
                    f"`{where}['name']` must be a non-empty string of letters, digits, '_' and '-', got {name!r}."
                )
            if name == "default":
                raise ValueError(f"`{where}['name']`='default' is the name of the parameters no rule matches.")
            if name in names:
                raise ValueError(f"`{where}['name']`={name!r} is already the name of `{option}[{names[name]}]`.")
            names[name] = index
            out["name"] = name
        if rule.get("lr_mult") is not None:
            out["lr_mult"] = check_float(f"{where}['lr_mult']", rule["lr_mult"], low=0.0, low_open=True)
        if rule.get("weight_decay") is not None:
            out["weight_decay"] = check_float(f"{where}['weight_decay']", rule["weight_decay"], low=0.0)
        if rule.get("min_lr") is not None and rule.get("min_lr_ratio") is not None:
            raise ValueError(
                f"`{where}` sets both `min_lr`={rule['min_lr']!r} (an absolute floor) and "
                f"`min_lr_ratio`={rule['min_lr_ratio']!r} (a fraction of the group's base rate); keep one."
            )
        if rule.get("min_lr") is not None:
            out["min_lr"] = check_float(f"{where}['min_lr']", rule["min_lr"], low=0.0)
        if rule.get("min_lr_ratio") is not None:
            out["min_lr_ratio"] = check_float(
                f"{where}['min_lr_ratio']", rule["min_lr_ratio"], low=0.0, high=1.0, high_open=True
            )
        for key in ("start_step", "warmup_steps"):
            if rule.get(key) is not None:
                out[key] = check_int(f"{where}['{key}']", rule[key], minimum=0)
        checked.append(out)
    return checked


def parse_param_group_rules(value, option: str = "lr_param_groups") -> list[dict[str, Any]] | None:
    """
    Read an LR plan's rules as configs give them, check them with [`check_param_group_rules`] and return them with the
    keys they set: a list of dicts, a JSON string of one (the command line: `--lr_param_groups '[{"pattern": ...}]'`),
    or `None`. Numbers given as strings (YAML reads `1e-6` as a string) are read as numbers for the numeric keys;
    `pattern` and `name` are left as they are.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(
                f'`{option}` must be a JSON list of rules, e.g. \'[{{"pattern": "classifier", "lr_mult": 10}}]\''
                f"; got {value!r}, which is not valid JSON: {error}."
            ) from None
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        value = [
            numbers_from_strings(rule, keep=("pattern", "name"), integers=("start_step", "warmup_steps"))
            if isinstance(rule, Mapping)
            else rule
            for rule in value
        ]
    check_param_group_rules(value, option)
    return value


def parameter_layer_ids(model: torch.nn.Module, *, layer_pattern: str | None = None) -> tuple[dict[str, int], int]:
    r"""
    Number the parameters of `model` by layer, as layer-wise learning-rate decay does: `0` for the embeddings, `l + 1`
    for the model's layer `l`, `L + 1` for the head.

    A parameter's layer comes from its name. Without `layer_pattern`, the built-in patterns find `encoder.layer.<i>.`
    (BERT, RoBERTa, DeBERTa, DeBERTa-v2, ELECTRA), `transformer.layer.<i>.` (DistilBERT), `transformer.h.<i>.`
    (GPT-2), `model.layers.<i>.` (Llama, Mistral, Qwen2) and ALBERT's `albert_layer_groups.<g>.`, under any prefix
    (PEFT's `base_model.model.` included), and `L` is the config's `num_hidden_layers` (`n_layer`, `n_layers`).
    ALBERT shares its layers: `L` is `num_hidden_groups` and each layer group counts as one layer, so with the
    default single group the whole encoder is one layer (`L = 1`) however many times it is applied.

    Parameters before the first layer (in `named_parameters()` order) are layer 0: the embeddings, with ELECTRA's
    `embeddings_project` and ALBERT's `embedding_hidden_mapping_in`. Every other parameter outside the layers is layer
    `L + 1`: the final norm, the pooler, the classifier or LM head, and DeBERTa-v2's relative position embeddings,
    which every layer shares (as BEiT's shared relative position bias is).

    Args:
        model ([`~torch.nn.Module`]):
            The model, frozen parameters included (they keep their layer numbers).
        layer_pattern (`str`, *optional*):
            For any other model: a regular expression with one group capturing the layer index, searched in each
            parameter's name, e.g. `r"\.block\.(\d+)\."`; then `L` is one more than the largest index it captures.

    Returns:
        `tuple[dict[str, int], int]`: the layer number of every parameter by name, and `L`.
    """
    names = [name for name, _ in model.named_parameters()]
    model_name = type(model).__name__
    if layer_pattern is not None:
        if not isinstance(layer_pattern, str):
            raise TypeError(f"`layer_pattern` must be a string (a regular expression), got {layer_pattern!r}.")
        try:
            regex = re.compile(layer_pattern)
        except re.error as error:
            raise ValueError(
                f"`layer_pattern`={layer_pattern!r} is not a valid regular expression: {error}."
            ) from None
        if regex.groups != 1:
            raise ValueError(
                f"`layer_pattern`={layer_pattern!r} must have exactly one group capturing the layer index, e.g. "
                rf"r'\.block\.(\d+)\.'; it has {regex.groups}."
            )
        indices = _layer_indices(names, regex, f"`layer_pattern`={layer_pattern!r}")
        if not indices:
            raise ValueError(
                f"`layer_pattern`={layer_pattern!r} matches no parameter name of {model_name}.{_numbered_modules(names)}"
            )
        num_layers = max(indices.values()) + 1
    else:
        found = (
            (_layer_indices(names, re.compile(pattern), f"the built-in layer pattern {pattern!r}"), attribute)
            for pattern, attribute in LAYER_STACKS
        )
        indices, attribute = next(((i, a) for i, a in found if i), ({}, ""))
        if not indices:
            raise ValueError(
                f"`layer_decay` cannot number the layers of {model_name}: no parameter name matches a built-in layer "
                "pattern (BERT, RoBERTa, DeBERTa(-v2), ELECTRA, DistilBERT, ALBERT, GPT-2, Llama, Mistral, Qwen2). "
                r"Pass `layer_pattern`, a regular expression with one group capturing the layer index, e.g. "
                rf"layer_pattern=r'\.block\.(\d+)\.'.{_numbered_modules(names)}"
            )
        configured = _config_num_layers(model, attribute)
        num_layers = max(indices.values()) + 1 if configured is None else configured
        if max(indices.values()) >= num_layers:
            raise ValueError(
                f"{model_name} has a layer {max(indices.values())} but its config's `{attribute}` is {num_layers}; "
                "pass `layer_pattern` to say which names are its layers."
            )
    first = names.index(next(iter(indices)))  # `indices` follows the order of `names`
    layer_ids = {
        name: indices[name] + 1 if name in indices else (0 if position < first else num_layers + 1)
        for position, name in enumerate(names)
    }
    return layer_ids, num_layers


def build_param_groups(
    model: torch.nn.Module,
    learning_rate: float,
    weight_decay: float = 0.0,
    *,
    layer_decay: float | None = None,
    rules: Sequence[Mapping[str, Any]] | None = None,
    layer_pattern: str | None = None,
    decay_parameters: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    r"""
    Build the optimizer's param groups for an LR plan: rates by parameter name and layer-wise learning-rate decay.

    Every parameter with `requires_grad` (as [`~transformers.Trainer`] takes them) is in exactly one group. Its base
    learning rate is

    $$
    \text{lr} = \text{learning\_rate} \times \text{lr\_mult} \times \gamma^{\,L + 1 - l}
    $$

    where `lr_mult` is that of the first rule whose `pattern` is found in the parameter's name (`re.search`; 1 when
    no rule matches or the rule sets none), `gamma` is `layer_decay` (the factor is 1 without it) and `l` the
    parameter's layer: 0 for the embeddings, `i + 1` for the model's layer `i`, `L + 1` for the head and everything
    else outside the layers (see [`parameter_layer_ids`] for how each model family is numbered, ALBERT's shared
    layers included).
    With `gamma = 0.9` and `L = 12`, the head trains at `learning_rate`, layer 11 at `0.9 x` it and the embeddings at
    `0.9^13 = 0.25 x` it.

    Weight decay is excluded exactly as `Trainer.create_optimizer` excludes it
    (`Trainer.get_decay_parameter_names`: biases and LayerNorm/RMSNorm weights get 0.0); the other parameters get
    their rule's `weight_decay`, else `weight_decay`.

    Parameters with identical settings share one param group; groups are ordered by the first of their parameters in
    `model.named_parameters()`. Each group is a dict with `params`, `lr`, `weight_decay` and the plan the scheduler
    follows: `name` (e.g. `"embeddings"`, `"layer_3.no_decay"`, `"lora.layer_0"`, `"head"`, `"default"`; a group
    that merges several joins their names with `+`), `lr_mult` (the whole multiplier above), `min_lr` and
    `min_lr_ratio` (the group's own floor, `None` to follow the schedule's), `start_step` and `warmup_steps`
    (the group is frozen before `start_step`, then ramped in over `warmup_steps`; 0 and 0 by default).

    A rule that takes no trainable parameter (it matches none, or only ones an earlier rule takes) is logged as a
    warning naming it.

    Args:
        model ([`~torch.nn.Module`]):
            The model to train, a PEFT model included (rules see the full names, `base_model.model.` prefix and
            `lora_A`/`lora_B` included).
        learning_rate (`float`):
            The base learning rate, `>= 0`.
        weight_decay (`float`, *optional*, defaults to 0.0):
            The weight decay of parameters that decay and that no rule gives its own, `>= 0`.
        layer_decay (`float`, *optional*):
            The layer-wise decay `gamma`, in `(0, 1]`. Unset: no layer factor.
        rules (`list[dict]`, *optional*):
            Ordered rules; the first whose `pattern` is found in a parameter's name applies to it. Keys:
            `pattern` (`str`, a regular expression, required), `name` (`str`, the group's name; `rule_<i>` by
            default), `lr_mult` (`float > 0`), `weight_decay` (`float >= 0`, for parameters that decay),
            `min_lr` (`float >= 0`, below the group's base rate) or `min_lr_ratio` (`float` in `[0, 1)`),
            `start_step` (`int >= 0`), `warmup_steps` (`int >= 0`).
        layer_pattern (`str`, *optional*):
            With `layer_decay`, for a model that the built-in patterns do not number: a regular expression with one
            group capturing the layer index (see [`parameter_layer_ids`]).
        decay_parameters (`Collection[str]`, *optional*):
            The names of the parameters that decay. Defaults to `Trainer.get_decay_parameter_names(model)`; a
            Trainer subclass passes its own `self.get_decay_parameter_names(model)`.

    Returns:
        `list[dict]`: the param groups, for any `torch.optim.Optimizer`.

    Example:

    ```python
    groups = build_param_groups(
        model,
        2e-5,
        weight_decay=0.01,
        layer_decay=0.9,
        rules=[{"pattern": r"classifier\.", "lr_mult": 10.0, "name": "classifier"}],
    )
    optimizer = torch.optim.AdamW(groups, lr=2e-5)
    ```
    """
    learning_rate = check_float("learning_rate", learning_rate, low=0.0)
    weight_decay = check_float("weight_decay", weight_decay, low=0.0)
    checked_rules = check_param_group_rules(rules)
    if layer_decay is not None:
        layer_decay = check_layer_decay(layer_decay)
        layer_ids, num_layers = parameter_layer_ids(model, layer_pattern=layer_pattern)
    elif layer_pattern is not None:
        raise ValueError(f"`layer_pattern`={layer_pattern!r} numbers layers for `layer_decay`, which is not set.")
    if decay_parameters is None:
        decay_parameters = _trainer_decay_parameter_names(model)
    decay_parameters = set(decay_parameters)

    patterns = [re.compile(rule["pattern"]) for rule in checked_rules]
    taken = [0] * len(checked_rules)
    matched = [0] * len(checked_rules)
    groups: dict[tuple, dict[str, Any]] = {}
    labels: dict[tuple, list[tuple[str, bool]]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        hits = [i for i, pattern in enumerate(patterns) if pattern.search(name)]
        for i in hits:
            matched[i] += 1
        rule = checked_rules[hits[0]] if hits else dict.fromkeys(RULE_KEYS)
        parts = []
        if hits:
            taken[hits[0]] += 1
            parts.append(rule["name"] or f"rule_{hits[0]}")
        lr_mult = 1.0 if rule["lr_mult"] is None else rule["lr_mult"]
        if layer_decay is not None:
            layer = layer_ids[name]
            lr_mult *= layer_decay ** (num_layers + 1 - layer)
            parts.append("embeddings" if layer == 0 else "head" if layer == num_layers + 1 else f"layer_{layer - 1}")
        decays = name in decay_parameters
        group_decay = (weight_decay if rule["weight_decay"] is None else rule["weight_decay"]) if decays else 0.0
        lr = learning_rate * lr_mult
        if rule["min_lr"] is not None and not rule["min_lr"] < lr:
            raise ValueError(
                f"`rules[{hits[0]}]['min_lr']`={rule['min_lr']} must be below the base learning rate of the "
                f"parameters it matches, but {name!r} has lr={lr}; lower `min_lr` or use `min_lr_ratio`."
            )
        start_step, warmup_steps = rule["start_step"] or 0, rule["warmup_steps"] or 0
        plan = (lr_mult, group_decay, rule["min_lr"], rule["min_lr_ratio"], start_step, warmup_steps)
        if plan not in groups:
            groups[plan] = {
                "params": [],
                "lr": lr,
                "weight_decay": group_decay,
                "name": None,
                "lr_mult": lr_mult,
                "min_lr": rule["min_lr"],
                "min_lr_ratio": rule["min_lr_ratio"],
                "start_step": start_step,
                "warmup_steps": warmup_steps,
            }
            labels[plan] = []
        groups[plan]["params"].append(param)
        labels[plan].append((".".join(parts) or "default", decays))

    if not groups:
        raise ValueError(
            f"{type(model).__name__} has no parameter with `requires_grad=True`: there is nothing to optimize."
        )
    for index, rule in enumerate(checked_rules):
        if not taken[index]:
            why = (
                f"every trainable parameter it matches ({matched[index]}) is taken by an earlier rule (first match wins)"
                if matched[index]
                else "it matches no trainable parameter name"
            )
            logger.warning(
                f"`rules[{index}]` (pattern {rule['pattern']!r}) takes no parameter of {type(model).__name__}: {why}."
            )
    for plan, group in groups.items():
        group["name"] = _group_name(labels[plan])
    return list(groups.values())


def has_param_group_plan(args) -> bool:
    """Whether `args` set an LR plan (`lr_layer_decay` or `lr_param_groups`): the Trainer then builds the optimizer's
    param groups with [`build_param_groups`]."""
    return getattr(args, "lr_layer_decay", None) is not None or bool(getattr(args, "lr_param_groups", None))


#: The keys of an LR plan's rule that only a schedule of hf_lrsched follows: a group's own floor, start and ramp.
SCHEDULE_PLAN_KEYS = ("min_lr", "min_lr_ratio", "start_step", "warmup_steps")


def check_rules_for_schedule(rules, schedule: str | None, option: str = "lr_param_groups") -> None:
    """
    Refuse a rule's own floor, start or ramp (`min_lr`, `min_lr_ratio`, a non-zero `start_step` or `warmup_steps`)
    when the schedule is not one of hf_lrsched's: a `transformers` scheduler would ignore it.

    Args:
        rules (`list[dict]`, *optional*):
            The LR plan's rules, as [`parse_param_group_rules`] returns them.
        schedule (`str`, *optional*):
            The `transformers` scheduler in words, for the message (e.g. "`lr_schedule`='linear' (transformers'
            scheduler)"); `None` for a schedule of hf_lrsched, which follows every key.
        option (`str`, *optional*, defaults to `"lr_param_groups"`):
            The option's name, for the message.

    Raises:
        `ValueError`: naming the rule, the key and the scheduler.
    """
    if schedule is None:
        return
    for index, rule in enumerate(rules or []):
        for key in SCHEDULE_PLAN_KEYS:
            if rule.get(key) is not None and (key.startswith("min_lr") or rule[key]):
                raise ValueError(
                    f"`{option}[{index}]` sets `{key}`={rule[key]!r}, which only the schedules of hf_lrsched follow "
                    f"(a group's own floor, start and ramp); {schedule} would ignore it. Set `lr_schedule` to one of "
                    f"ours (warmup_cosine, wsd, phases, ...), or remove `{key}`."
                )


def group_labels(param_groups) -> list[str]:
    """A readable label per param group, for trackers and the LR curve: the group's `name` (set by
    [`build_param_groups`]) where it is a string used by no other group, else `group_<i>`."""
    names = [group.get("name") for group in param_groups]
    return [
        name if isinstance(name, str) and name and names.count(name) == 1 else f"group_{index}"
        for index, name in enumerate(names)
    ]


def _group_name(labels: Iterable[tuple[str, bool]]) -> str:
    """`"layer_3"`, `"layer_3.no_decay"`, or `"a+b"` for a group that merges several: a part that has both decaying
    and excluded parameters in the group is named without the `no_decay` suffix."""
    kinds: dict[str, set[bool]] = {}
    for label, decays in labels:
        kinds.setdefault(label, set()).add(decays)
    return "+".join(label if True in seen else f"{label}.no_decay" for label, seen in kinds.items())


def _layer_indices(names: list[str], regex: re.Pattern, what: str) -> dict[str, int]:
    """`{name: layer index}` for the names `regex` matches; one stack of layers, in order, or a `ValueError`."""
    indices: dict[str, int] = {}
    for name in names:
        match = regex.search(name)
        if match is None:
            continue
        index = int(match.group(1)) if match.group(1) and match.group(1).isdigit() else None
        if index is None:
            raise ValueError(f"{what} captures {match.group(1)!r} in {name!r}, not a layer index (digits).")
        if indices and index < indices[next(reversed(indices))]:
            previous = next(reversed(indices))
            raise ValueError(
                f"{what} finds layer {index} ({name!r}) after layer {indices[previous]} ({previous!r}): it matches "
                "more than one stack of layers. Pass `layer_pattern`, a regular expression with one group capturing "
                "the index of the layers to decay, that matches one stack only."
            )
        indices[name] = index
    return indices


def _config_num_layers(model: torch.nn.Module, attribute: str) -> int | None:
    get_base_model = getattr(model, "get_base_model", None)  # a PEFT model
    base = get_base_model() if callable(get_base_model) else model
    value = getattr(getattr(base, "config", None), attribute, None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _numbered_modules(names: list[str]) -> str:
    """A hint for `layer_pattern`: the numbered modules in the names (`" Its numbered modules: 'encoder.block'..."`)."""
    counts: Counter[tuple[str, str]] = Counter()
    for name in names:
        for match in re.finditer(r"(?:^|\.)([A-Za-z_][\w.]*?)\.(\d+)\.", name):
            counts[(match.group(1), match.group(2))] += 1
    stacks = Counter(prefix for prefix, _ in counts)
    if not stacks:
        return ""
    listed = ", ".join(f"'{prefix}.<i>' ({n} indices)" for prefix, n in stacks.most_common(3))
    return f" Its numbered modules: {listed}."


def _trainer_decay_parameter_names(model: torch.nn.Module) -> list[str]:
    """The names `Trainer.create_optimizer` gives weight decay, by the Trainer's own method (which reads no state of
    the Trainer), so that the exclusions follow `transformers`' exactly."""
    from transformers import Trainer

    return Trainer.get_decay_parameter_names(None, model)  # type: ignore[arg-type]
