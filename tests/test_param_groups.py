"""`build_param_groups`: rules by parameter name (first match wins), layer-wise decay numbered from module names for
every supported family (tiny real models built from their configs, and their PEFT LoRA versions), the weight-decay
exclusions of `transformers`' own `Trainer`, merging, the recorded plan, and every error."""

import json
import logging
import math
import re

import pytest
import torch
import transformers
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import HfArgumentParser, Trainer

from hf_lrsched import LRSchedTrainingArguments, build_param_groups, parameter_layer_ids
from hf_lrsched.param_groups import PLAN_KEYS, check_param_group_rules

from .helpers import tiny_bert

peft = pytest.importorskip("peft", reason="PEFT is an extra: pip install -e '.[trl]'")

GAMMA = 0.5  # powers of 2: every expected multiplier is exact
SIZES = dict(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
DECODER = dict(SIZES, num_key_value_heads=2, max_position_embeddings=32)

# family: (config, model class, an embedding parameter, a parameter of layer {i}, a head parameter, a LoRA target
# module of layer {i}, the number of layers L)
FAMILIES = {
    "bert": (
        lambda: transformers.BertConfig(**SIZES, max_position_embeddings=32),
        "BertForSequenceClassification",
        "bert.embeddings.word_embeddings.weight",
        "bert.encoder.layer.{i}.attention.self.query.weight",
        "classifier.weight",
        "bert.encoder.layer.{i}.attention.self.query",
        2,
    ),
    "roberta": (
        lambda: transformers.RobertaConfig(**SIZES, max_position_embeddings=32),
        "RobertaForSequenceClassification",
        "roberta.embeddings.position_embeddings.weight",
        "roberta.encoder.layer.{i}.output.dense.weight",
        "classifier.out_proj.weight",
        "roberta.encoder.layer.{i}.attention.self.value",
        2,
    ),
    "deberta": (
        lambda: transformers.DebertaConfig(**SIZES, max_position_embeddings=32),
        "DebertaForSequenceClassification",
        "deberta.embeddings.word_embeddings.weight",
        "deberta.encoder.layer.{i}.attention.self.in_proj.weight",
        "classifier.weight",
        "deberta.encoder.layer.{i}.attention.self.in_proj",
        2,
    ),
    "deberta-v2": (
        # relative attention: the shared `encoder.rel_embeddings` sit after the layers
        lambda: transformers.DebertaV2Config(
            **SIZES, max_position_embeddings=32, relative_attention=True, position_buckets=8, norm_rel_ebd="layer_norm"
        ),
        "DebertaV2ForSequenceClassification",
        "deberta.embeddings.word_embeddings.weight",
        "deberta.encoder.layer.{i}.attention.self.query_proj.weight",
        "deberta.encoder.rel_embeddings.weight",
        "deberta.encoder.layer.{i}.attention.self.query_proj",
        2,
    ),
    "electra": (
        lambda: transformers.ElectraConfig(**SIZES, embedding_size=8, max_position_embeddings=32),
        "ElectraForSequenceClassification",
        "electra.embeddings_project.weight",
        "electra.encoder.layer.{i}.intermediate.dense.weight",
        "classifier.dense.weight",
        "electra.encoder.layer.{i}.attention.self.query",
        2,
    ),
    "distilbert": (
        lambda: transformers.DistilBertConfig(
            vocab_size=64, dim=16, n_layers=2, n_heads=2, hidden_dim=32, max_position_embeddings=32
        ),
        "DistilBertForSequenceClassification",
        "distilbert.embeddings.word_embeddings.weight",
        "distilbert.transformer.layer.{i}.attention.q_lin.weight",
        "pre_classifier.weight",
        "distilbert.transformer.layer.{i}.attention.q_lin",
        2,
    ),
    "albert": (
        # two layer groups, so that layer numbers show; the default single group is tested on its own below
        lambda: transformers.AlbertConfig(**SIZES, embedding_size=8, max_position_embeddings=32, num_hidden_groups=2),
        "AlbertForSequenceClassification",
        "albert.encoder.embedding_hidden_mapping_in.weight",
        "albert.encoder.albert_layer_groups.{i}.albert_layers.0.attention.query.weight",
        "albert.pooler.weight",
        "albert.encoder.albert_layer_groups.{i}.albert_layers.0.attention.query",
        2,
    ),
    "gpt2": (
        lambda: transformers.GPT2Config(
            vocab_size=64, n_embd=16, n_layer=2, n_head=2, n_positions=32, bos_token_id=0, eos_token_id=0
        ),
        "GPT2LMHeadModel",
        "transformer.wpe.weight",
        "transformer.h.{i}.mlp.c_fc.weight",
        "transformer.ln_f.weight",
        "transformer.h.{i}.attn.c_attn",
        2,
    ),
    "llama": (
        lambda: transformers.LlamaConfig(**DECODER),
        "LlamaForCausalLM",
        "model.embed_tokens.weight",
        "model.layers.{i}.self_attn.q_proj.weight",
        "lm_head.weight",
        "model.layers.{i}.self_attn.q_proj",
        2,
    ),
    "mistral": (
        lambda: transformers.MistralConfig(**DECODER),
        "MistralForCausalLM",
        "model.embed_tokens.weight",
        "model.layers.{i}.mlp.down_proj.weight",
        "lm_head.weight",
        "model.layers.{i}.mlp.down_proj",
        2,
    ),
    "qwen2": (
        lambda: transformers.Qwen2Config(**DECODER),
        "Qwen2ForCausalLM",
        "model.embed_tokens.weight",
        "model.layers.{i}.self_attn.k_proj.bias",
        "model.norm.weight",
        "model.layers.{i}.self_attn.k_proj",
        2,
    ),
}


def build(family, seed=0):
    make_config, cls = FAMILIES[family][:2]
    torch.manual_seed(seed)
    return getattr(transformers, cls)(make_config())


def lora(model, family):
    target = FAMILIES[family][5].format(i=0).rsplit(".", 1)[-1]
    task = "SEQ_CLS" if "SequenceClassification" in type(model).__name__ else "CAUSAL_LM"
    return peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=[target], task_type=task))


def rates_by_name(model, groups):
    """`{name: group}` for every parameter in the groups, checking that none is in two groups."""
    names = {id(p): n for n, p in model.named_parameters()}
    found = {}
    for group in groups:
        for p in group["params"]:
            assert names[id(p)] not in found, f"{names[id(p)]} is in two groups"
            found[names[id(p)]] = group
    return found


def trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


# ---- layer-wise decay, family by family -------------------------------------------------------------------


@pytest.mark.parametrize("family", list(FAMILIES))
def test_layer_multipliers_follow_gamma_to_the_distance_from_the_head(family):
    model = build(family)
    _, _, embedding, layer, head, _, L = FAMILIES[family]
    groups = build_param_groups(model, 8.0, 0.01, layer_decay=GAMMA)
    by_name = rates_by_name(model, groups)
    assert set(by_name) == trainable(model)  # every trainable parameter, each in exactly one group
    assert by_name[embedding]["lr"] == 8.0 * GAMMA ** (L + 1)
    assert by_name[embedding]["lr_mult"] == GAMMA ** (L + 1)
    for i in range(L):
        assert by_name[layer.format(i=i)]["lr"] == 8.0 * GAMMA ** (L - i), layer.format(i=i)
        assert by_name[layer.format(i=i)]["name"].startswith(f"layer_{i}")
    assert by_name[head]["lr"] == 8.0 and by_name[head]["name"].startswith("head")
    # every rate is one of the L + 2 layer rates
    assert {g["lr_mult"] for g in groups} == {GAMMA ** (L + 1 - layer) for layer in range(L + 2)}
    layer_ids, num_layers = parameter_layer_ids(model)
    assert num_layers == L and layer_ids[embedding] == 0 and layer_ids[head] == L + 1


@pytest.mark.parametrize("family", list(FAMILIES))
def test_lora_parameters_get_the_multiplier_of_their_layer(family):
    model = lora(build(family), family)
    L, module = FAMILIES[family][6], FAMILIES[family][5]
    groups = build_param_groups(model, 1.0, 0.01, layer_decay=GAMMA, rules=[{"pattern": r"lora_B", "lr_mult": 3.0}])
    by_name = rates_by_name(model, groups)
    assert set(by_name) == trainable(model)  # the frozen base weights are left out, as Trainer leaves them
    assert not any(".base_layer." in name for name in by_name)
    for i in range(L):
        prefix = "base_model.model." + module.format(i=i)
        assert by_name[f"{prefix}.lora_A.default.weight"]["lr"] == GAMMA ** (L - i)
        assert by_name[f"{prefix}.lora_B.default.weight"]["lr"] == 3.0 * GAMMA ** (L - i)
        assert by_name[f"{prefix}.lora_B.default.weight"]["name"] == f"rule_0.layer_{i}"
    assert parameter_layer_ids(model)[1] == L  # L from the wrapped model's config


def test_a_peft_classifier_saved_in_full_is_the_head():
    model = lora(build("bert"), "bert")
    by_name = rates_by_name(model, build_param_groups(model, 1.0, layer_decay=GAMMA))
    assert by_name["base_model.model.classifier.modules_to_save.default.weight"]["lr"] == 1.0
    assert by_name["base_model.model.classifier.modules_to_save.default.weight"]["name"] == "head"


def test_albert_shares_one_layer_group_which_counts_as_one_layer():
    torch.manual_seed(0)
    config = transformers.AlbertConfig(**SIZES, embedding_size=8, max_position_embeddings=32)  # 2 layers, 1 group
    model = transformers.AlbertForSequenceClassification(config)
    layer_ids, num_layers = parameter_layer_ids(model)
    assert num_layers == 1 and layer_ids["albert.encoder.albert_layer_groups.0.albert_layers.0.ffn.weight"] == 1
    by_name = rates_by_name(model, build_param_groups(model, 1.0, 0.01, layer_decay=GAMMA))
    assert by_name["albert.embeddings.word_embeddings.weight"]["lr"] == GAMMA**2
    assert by_name["albert.encoder.embedding_hidden_mapping_in.weight"]["lr"] == GAMMA**2
    assert by_name["albert.encoder.albert_layer_groups.0.albert_layers.0.ffn.weight"]["lr"] == GAMMA
    assert by_name["classifier.weight"]["lr"] == 1.0
    assert {g["name"] for g in by_name.values()} == {
        "embeddings",
        "embeddings.no_decay",
        "layer_0",
        "layer_0.no_decay",
        "head",
        "head.no_decay",
    }


def test_gpt2_tied_head_is_one_parameter_in_the_embeddings_group():
    model = build("gpt2")
    assert model.lm_head.weight is model.transformer.wte.weight
    groups = build_param_groups(model, 1.0, layer_decay=GAMMA)
    assert sum(p is model.lm_head.weight for g in groups for p in g["params"]) == 1
    assert rates_by_name(model, groups)["transformer.wte.weight"]["name"] == "embeddings"


def test_frozen_parameters_are_left_out_and_keep_the_numbering():
    model = tiny_bert()  # one layer: L = 1
    for p in model.bert.embeddings.parameters():
        p.requires_grad_(False)
    by_name = rates_by_name(model, build_param_groups(model, 1.0, layer_decay=GAMMA))
    assert set(by_name) == trainable(model) and not any("embeddings" in n for n in by_name)
    assert by_name["bert.encoder.layer.0.output.dense.weight"]["lr"] == GAMMA
    assert by_name["bert.pooler.dense.weight"]["lr"] == 1.0


class Blocks(torch.nn.Module):
    """A model of no supported family: `embed`, `blocks.<i>`, `out`."""

    def __init__(self, num_blocks=3):
        super().__init__()
        self.embed = torch.nn.Embedding(8, 4)
        self.blocks = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(num_blocks))
        self.out = torch.nn.Linear(4, 2)


def test_another_model_needs_layer_pattern_and_the_error_says_so():
    with pytest.raises(ValueError, match=r"`layer_pattern`.*Its numbered modules: 'blocks.<i>' \(3 indices\)"):
        build_param_groups(Blocks(), 1.0, layer_decay=GAMMA)
    model = Blocks()
    by_name = rates_by_name(model, build_param_groups(model, 1.0, layer_decay=GAMMA, layer_pattern=r"blocks\.(\d+)\."))
    assert by_name["embed.weight"]["lr"] == GAMMA**4
    assert [by_name[f"blocks.{i}.weight"]["lr"] for i in range(3)] == [GAMMA**3, GAMMA**2, GAMMA]
    assert by_name["out.weight"]["lr"] == 1.0 and by_name["out.weight"]["name"] == "head"


def test_two_stacks_of_layers_are_refused_not_numbered_together():
    class EncoderDecoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = Blocks(2), Blocks(2)

    with pytest.raises(ValueError, match=r"finds layer 0 \('decoder.blocks.0.weight'\) after layer 1.*more than one"):
        build_param_groups(EncoderDecoder(), 1.0, layer_decay=GAMMA, layer_pattern=r"blocks\.(\d+)\.")
    model = EncoderDecoder()  # one stack: the decoder's; the encoder comes before it, as embeddings do
    by_name = rates_by_name(
        model, build_param_groups(model, 1.0, layer_decay=GAMMA, layer_pattern=r"decoder\.blocks\.(\d+)\.")
    )
    assert by_name["encoder.blocks.1.weight"]["lr"] == GAMMA**3 and by_name["decoder.blocks.1.weight"]["lr"] == GAMMA


# ---- weight decay -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", list(FAMILIES))
def test_weight_decay_exclusions_are_the_trainers(family):
    for model in (build(family), lora(build(family), family)):
        by_name = rates_by_name(model, build_param_groups(model, 1.0, 0.01, layer_decay=GAMMA))
        decaying = {name for name, group in by_name.items() if group["weight_decay"] > 0}
        expected = set(Trainer.get_decay_parameter_names(None, model)) & trainable(model)
        assert decaying == expected
        assert all(by_name[n]["name"].endswith(".no_decay") for n in set(by_name) - expected)


def test_without_a_plan_the_groups_are_the_trainers_two():
    model = tiny_bert()
    groups = build_param_groups(model, 1e-3, 0.01)
    assert [(g["name"], g["lr"], g["weight_decay"]) for g in groups] == [
        ("default", 1e-3, 0.01),
        ("default.no_decay", 1e-3, 0.0),
    ]
    decay = set(Trainer.get_decay_parameter_names(None, model))
    names = {id(p): n for n, p in model.named_parameters()}
    assert [names[id(p)] for p in groups[0]["params"]] == [n for n, _ in model.named_parameters() if n in decay]
    assert all(g[k] == d for g in groups for k, d in zip(PLAN_KEYS[1:], (1.0, None, None, 0, 0)))


def test_a_rules_weight_decay_applies_to_decaying_parameters_only():
    model = tiny_bert()
    groups = build_param_groups(model, 1.0, 0.01, rules=[{"pattern": r"^classifier\.", "weight_decay": 0.5}])
    by_name = rates_by_name(model, groups)
    assert by_name["classifier.weight"]["weight_decay"] == 0.5
    assert by_name["classifier.bias"]["weight_decay"] == 0.0
    # excluded from decay, the rule's bias has the settings of every other excluded parameter: one group
    assert by_name["classifier.bias"]["name"] == "default.no_decay+rule_0.no_decay"
    assert by_name["bert.pooler.dense.weight"]["weight_decay"] == 0.01


def test_decay_parameters_given_replace_the_trainers():
    model = tiny_bert()
    groups = build_param_groups(model, 1.0, 0.01, decay_parameters={"classifier.weight"})
    assert [[id(p) for p in g["params"]] for g in groups if g["weight_decay"]] == [[id(model.classifier.weight)]]


# ---- rules, merging, the recorded plan --------------------------------------------------------------------


def test_first_matching_rule_wins_and_unmatched_keep_the_defaults():
    model = tiny_bert()
    rules = [
        {"pattern": r"encoder\.layer\.0\.attention", "lr_mult": 2.0, "name": "attention"},
        {"pattern": r"encoder\.", "lr_mult": 3.0, "start_step": 10, "warmup_steps": 5, "min_lr_ratio": 0.1},
    ]
    by_name = rates_by_name(model, build_param_groups(model, 1.0, rules=rules))
    assert by_name["bert.encoder.layer.0.attention.self.query.weight"]["lr"] == 2.0
    assert by_name["bert.encoder.layer.0.attention.self.query.weight"]["start_step"] == 0
    rule_1 = by_name["bert.encoder.layer.0.output.dense.weight"]
    assert (rule_1["lr"], rule_1["start_step"], rule_1["warmup_steps"], rule_1["min_lr_ratio"], rule_1["min_lr"]) == (
        3.0,
        10,
        5,
        0.1,
        None,
    )
    assert by_name["classifier.weight"]["lr"] == 1.0 and by_name["classifier.weight"]["name"] == "default"


def test_groups_with_identical_settings_merge_and_are_named_by_their_parts():
    model = tiny_bert()
    rules = [{"pattern": r"^classifier\.", "lr_mult": 2.0}, {"pattern": r"pooler", "lr_mult": 2.0}]
    groups = build_param_groups(model, 1.0, rules=rules)  # no weight decay: decaying and excluded merge too
    assert [(g["name"], len(g["params"])) for g in groups] == [("default", 21), ("rule_1+rule_0", 4)]
    # layer decay with gamma = 1 gives every layer the same rate
    assert [g["name"] for g in build_param_groups(model, 1.0, 0.1, layer_decay=1.0)] == [
        "embeddings+layer_0+head",
        "embeddings.no_decay+layer_0.no_decay+head.no_decay",
    ]


def test_the_groups_drive_a_real_optimizer_and_survive_its_state_dict():
    model = tiny_bert()
    rules = [{"pattern": "classifier", "lr_mult": 10.0, "start_step": 3, "min_lr": 1e-4, "name": "classifier"}]
    groups = build_param_groups(model, 1e-3, 0.01, layer_decay=0.8, rules=rules)
    optimizer = torch.optim.AdamW(groups, lr=1e-3)
    model(input_ids=torch.tensor([[1, 2, 3]]), labels=torch.tensor([1])).loss.backward()
    optimizer.step()
    reloaded = torch.optim.AdamW(build_param_groups(model, 1e-3, 0.01, layer_decay=0.8, rules=rules), lr=1e-3)
    reloaded.load_state_dict(optimizer.state_dict())
    for before, after in zip(optimizer.param_groups, reloaded.param_groups):
        assert {k: before[k] for k in ("lr", "weight_decay", *PLAN_KEYS)} == {
            k: after[k] for k in ("lr", "weight_decay", *PLAN_KEYS)
        }
    assert optimizer.param_groups[-2]["name"] == "classifier.head"
    assert optimizer.param_groups[-2]["min_lr"] == 1e-4 and optimizer.param_groups[-2]["start_step"] == 3


def test_a_rule_that_takes_nothing_is_logged_by_name(caplog):
    model = tiny_bert()
    rules = [{"pattern": "encoder"}, {"pattern": r"layer\.0\.", "lr_mult": 2.0}, {"pattern": "vision_tower"}]
    with caplog.at_level(logging.WARNING):
        build_param_groups(model, 1.0, rules=rules)
    assert "`rules[1]` (pattern 'layer\\\\.0\\\\.') takes no parameter" in caplog.text
    assert "taken by an earlier rule (first match wins)" in caplog.text
    assert "`rules[2]` (pattern 'vision_tower') takes no parameter" in caplog.text
    assert "matches no trainable parameter name" in caplog.text
    assert "rules[0]" not in caplog.text


# Random plans on the tiny BERT, against an independent reading of the contract.
BERT = tiny_bert()
BERT_NAMES = [n for n, _ in BERT.named_parameters()]
FRAGMENTS = ["bias", "LayerNorm", r"layer\.0\.", "attention", "embeddings", "^classifier", "dense", "query|key"]


def expected_layer(name):
    if "embeddings" in name:
        return 0
    match = re.search(r"encoder\.layer\.(\d+)\.", name)
    return int(match.group(1)) + 1 if match else 2  # L = 1: the head is layer 2


rule_strategy = st.fixed_dictionaries(
    {"pattern": st.sampled_from(FRAGMENTS)},
    optional={
        "lr_mult": st.sampled_from([0.25, 0.5, 1.0, 2.0]),
        "weight_decay": st.sampled_from([0.0, 0.1]),
        "min_lr_ratio": st.sampled_from([0.0, 0.1]),
        "start_step": st.integers(0, 3),
        "warmup_steps": st.integers(0, 3),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=st.lists(rule_strategy, max_size=4),
    layer_decay=st.none() | st.sampled_from([0.5, 0.9, 1.0]),
    weight_decay=st.sampled_from([0.0, 0.01]),
)
def test_random_plans_give_every_parameter_its_first_rule_and_layer_factor(rules, layer_decay, weight_decay):
    logging.disable(logging.WARNING)  # rules that take nothing are expected here
    try:
        groups = build_param_groups(BERT, 0.1, weight_decay, layer_decay=layer_decay, rules=rules)
    finally:
        logging.disable(logging.NOTSET)
    by_name = rates_by_name(BERT, groups)
    assert list(by_name) != [] and set(by_name) == set(BERT_NAMES)
    decay = set(Trainer.get_decay_parameter_names(None, BERT))
    for name in BERT_NAMES:
        rule = next((r for r in rules if re.search(r["pattern"], name)), {})
        layer_factor = 1.0 if layer_decay is None else layer_decay ** (2 - expected_layer(name))
        group = by_name[name]
        assert group["lr_mult"] == rule.get("lr_mult", 1.0) * layer_factor
        assert math.isclose(group["lr"], 0.1 * group["lr_mult"])
        assert group["weight_decay"] == (rule.get("weight_decay", weight_decay) if name in decay else 0.0)
        assert (group["start_step"], group["warmup_steps"], group["min_lr_ratio"]) == (
            rule.get("start_step", 0),
            rule.get("warmup_steps", 0),
            rule.get("min_lr_ratio"),
        )
    settings_of = [tuple(g[k] for k in ("lr", "weight_decay", *PLAN_KEYS[1:])) for g in groups]
    assert len(set(settings_of)) == len(groups)  # identical settings are one group
    assert len({g["name"] for g in groups}) == len(groups)  # names are unique
    firsts = [min(BERT_NAMES.index(n) for n in rates_by_name(BERT, [g])) for g in groups]
    assert firsts == sorted(firsts)  # ordered by their first parameter


# ---- errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rules, error, message",
    [
        ([{"pattern": "a", "lr_mul": 2.0}], ValueError, r"`rules\[0\]` has an unknown key 'lr_mul'.*'lr_mult'\?"),
        ([{"pattern": "a"}, {"pattern": "(unclosed"}], ValueError, r"`rules\[1\]\['pattern'\]`='\(unclosed' is not"),
        ([{"lr_mult": 2.0}], ValueError, r"`rules\[0\]` has no `pattern`"),
        ([{"pattern": 3}], TypeError, r"`rules\[0\]\['pattern'\]` must be a string"),
        ([{"pattern": "a", "lr_mult": 0.0}], ValueError, r"`rules\[0\]\['lr_mult'\]` must be in \(0, inf\), got 0"),
        ([{"pattern": "a", "lr_mult": -1}], ValueError, r"`rules\[0\]\['lr_mult'\]` must be in \(0, inf\)"),
        ([{"pattern": "a", "lr_mult": math.inf}], ValueError, r"`rules\[0\]\['lr_mult'\]` must be a finite"),
        ([{"pattern": "a", "lr_mult": math.nan}], ValueError, r"`rules\[0\]\['lr_mult'\]` must be a finite"),
        ([{"pattern": "a", "lr_mult": True}], TypeError, r"`rules\[0\]\['lr_mult'\]` must be a real number"),
        ([{"pattern": "a", "lr_mult": "2"}], TypeError, r"`rules\[0\]\['lr_mult'\]` must be a real number"),
        ([{"pattern": "a", "weight_decay": -0.1}], ValueError, r"`rules\[0\]\['weight_decay'\]` must be in \[0, inf"),
        (
            [{"pattern": "a", "min_lr": 0.0, "min_lr_ratio": 0.1}],
            ValueError,
            r"`rules\[0\]` sets both `min_lr`=0.0 .* and `min_lr_ratio`=0.1",
        ),
        ([{"pattern": "a", "min_lr_ratio": 1.0}], ValueError, r"`rules\[0\]\['min_lr_ratio'\]` must be in \[0, 1\)"),
        ([{"pattern": "a", "min_lr": -1e-6}], ValueError, r"`rules\[0\]\['min_lr'\]` must be in \[0, inf\)"),
        ([{"pattern": "a", "start_step": -1}], ValueError, r"`rules\[0\]\['start_step'\]` must be an integer >= 0"),
        ([{"pattern": "a", "warmup_steps": -5}], ValueError, r"`rules\[0\]\['warmup_steps'\]` must be an integer >="),
        ([{"pattern": "a", "start_step": True}], TypeError, r"`rules\[0\]\['start_step'\]` must be an integer"),
        ([{"pattern": "a", "warmup_steps": 2.5}], TypeError, r"`rules\[0\]\['warmup_steps'\]` must be an integer"),
        ([{"pattern": "a", "name": "x"}, {"pattern": "b", "name": "x"}], ValueError, r"already the name of `rules\[0"),
        ([{"pattern": "a", "name": "a+b"}], ValueError, r"`rules\[0\]\['name'\]` must be a non-empty string"),
        ([{"pattern": "a", "name": "default"}], ValueError, r"'default' is the name of the parameters no rule"),
        ({"pattern": "a"}, TypeError, r"`rules` must be a list of dicts"),
        ('[{"pattern": "a"}]', TypeError, r"`rules` must be a list of dicts"),
        (["a"], TypeError, r"`rules\[0\]` must be a dict with a `pattern`"),
    ],
)
def test_bad_rules_are_refused_naming_the_rule_and_key(rules, error, message):
    with pytest.raises(error, match=message):
        build_param_groups(tiny_bert(), 1.0, rules=rules)


def test_rule_errors_can_name_the_training_argument():
    with pytest.raises(ValueError, match=r"`lr_param_groups\[0\]\['lr_mult'\]`"):
        check_param_group_rules([{"pattern": "a", "lr_mult": 0}], option="lr_param_groups")


@pytest.mark.parametrize(
    "layer_decay, error, message",
    [
        (0.0, ValueError, r"`layer_decay` must be in \(0, 1\], got 0.0"),
        (1.5, ValueError, r"`layer_decay` must be in \(0, 1\], got 1.5"),
        (-0.5, ValueError, r"`layer_decay` must be in \(0, 1\]"),
        (math.nan, ValueError, r"`layer_decay` must be a finite number in \(0, 1\]"),
        (True, TypeError, r"`layer_decay` must be a real number, got True"),
        ("0.9", TypeError, r"`layer_decay` must be a real number"),
    ],
)
def test_bad_layer_decay_is_refused(layer_decay, error, message):
    with pytest.raises(error, match=message):
        build_param_groups(tiny_bert(), 1.0, layer_decay=layer_decay)


@pytest.mark.parametrize(
    "layer_pattern, message",
    [
        (r"blocks\.\d+\.", r"must have exactly one group capturing the layer index.*it has 0"),
        (r"(blocks)\.(\d+)\.", r"must have exactly one group.*it has 2"),
        (r"(blocks\.\d+\.", r"is not a valid regular expression"),
        (r"heads\.(\d+)\.", r"matches no parameter name of Blocks\. Its numbered modules: 'blocks.<i>'"),
        (r"(blocks)\.\d+\.", r"captures 'blocks' in 'blocks.0.weight', not a layer index"),
    ],
)
def test_bad_layer_pattern_is_refused(layer_pattern, message):
    with pytest.raises(ValueError, match=message):
        build_param_groups(Blocks(), 1.0, layer_decay=GAMMA, layer_pattern=layer_pattern)


def test_layer_pattern_without_layer_decay_is_refused():
    with pytest.raises(ValueError, match=r"`layer_pattern`=.*numbers layers for `layer_decay`, which is not set"):
        build_param_groups(Blocks(), 1.0, layer_pattern=r"blocks\.(\d+)\.")


def test_an_absolute_floor_above_a_groups_base_rate_is_refused():
    rules = [{"pattern": "embeddings", "min_lr": 0.3}]  # the embeddings train at 0.5^2 = 0.25 with L = 1
    with pytest.raises(ValueError, match=r"`rules\[0\]\['min_lr'\]`=0.3 must be below .* has lr=0.25"):
        build_param_groups(tiny_bert(), 1.0, layer_decay=GAMMA, rules=rules)
    build_param_groups(tiny_bert(), 1.0, rules=rules)  # 0.3 < 1.0: fine without the layer factor


def test_a_model_with_nothing_to_train_is_refused():
    model = tiny_bert().requires_grad_(False)
    with pytest.raises(ValueError, match="no parameter with `requires_grad=True`"):
        build_param_groups(model, 1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(learning_rate=-1.0), r"`learning_rate` must be in \[0, inf\)"),
        (dict(learning_rate=1.0, weight_decay=-0.1), r"`weight_decay` must be in \[0, inf\)"),
    ],
)
def test_bad_rate_or_weight_decay_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_param_groups(tiny_bert(), **kwargs)


def test_a_config_with_fewer_layers_than_the_names_is_refused():
    model = build("bert")
    model.config.num_hidden_layers = 1
    with pytest.raises(ValueError, match=r"has a layer 1 but its config's `num_hidden_layers` is 1"):
        build_param_groups(model, 1.0, layer_decay=GAMMA)


# ---- the training arguments: lr_layer_decay and lr_param_groups, checked when parsed ------------------------

PLAN = [
    {"pattern": r"^classifier\.", "lr_mult": 10.0, "name": "classifier"},
    {"pattern": "embeddings", "start_step": 5, "warmup_steps": 10, "min_lr": 1e-6},
]


def parse(argv):
    return HfArgumentParser(LRSchedTrainingArguments).parse_args_into_dataclasses(args=argv)[0]


def test_the_plan_parses_from_the_command_line_and_builds_the_groups(tmp_path):
    args = parse(
        ["--output_dir", str(tmp_path), "--lr_layer_decay", "0.5", "--lr_param_groups", json.dumps(PLAN)]
        + ["--learning_rate", "1e-3", "--weight_decay", "0.01", "--lr_schedule", "warmup_cosine"]
    )
    assert args.lr_layer_decay == 0.5 and args.lr_param_groups == PLAN
    model = tiny_bert()
    groups = build_param_groups(
        model, args.learning_rate, args.weight_decay, layer_decay=args.lr_layer_decay, rules=args.lr_param_groups
    )
    by_name = rates_by_name(model, groups)
    assert (
        by_name["classifier.weight"]["lr"] == 1e-3 * 10.0 and by_name["classifier.weight"]["name"] == "classifier.head"
    )
    embeddings = by_name["bert.embeddings.word_embeddings.weight"]
    assert (embeddings["lr"], embeddings["start_step"], embeddings["warmup_steps"], embeddings["min_lr"]) == (
        1e-3 * 0.25,
        5,
        10,
        1e-6,
    )
    assert parse(["--output_dir", str(tmp_path)]).lr_param_groups is None  # unset: no plan


def test_the_plan_parses_from_json_and_yaml_and_survives_to_dict(tmp_path):
    # PLAN's floor and start need a schedule of ours (a transformers scheduler would ignore them)
    config = {"output_dir": str(tmp_path), "lr_layer_decay": 0.8, "lr_param_groups": PLAN, "lr_schedule": "wsd"}
    (tmp_path / "args.json").write_text(json.dumps(config))
    # PyYAML reads `1e-6` (no dot) as a string: the plan's numbers are read as numbers all the same
    (tmp_path / "args.yaml").write_text(yaml.safe_dump(config).replace("1.0e-06", "1e-6"))
    assert "min_lr: 1e-6" in (tmp_path / "args.yaml").read_text()
    parser = HfArgumentParser(LRSchedTrainingArguments)
    for (args,) in (
        parser.parse_json_file(str(tmp_path / "args.json")),
        parser.parse_yaml_file(tmp_path / "args.yaml"),
    ):
        assert args.lr_layer_decay == 0.8 and args.lr_param_groups == PLAN
        assert LRSchedTrainingArguments(**args.to_dict()).lr_param_groups == PLAN
        assert json.loads(args.to_json_string())["lr_param_groups"] == PLAN


@pytest.mark.parametrize(
    "argv, error, message",
    [
        (["--lr_layer_decay", "1.5"], ValueError, r"`lr_layer_decay` must be in \(0, 1\], got 1.5"),
        (["--lr_layer_decay", "0"], ValueError, r"`lr_layer_decay` must be in \(0, 1\], got 0.0"),
        (
            ["--lr_param_groups", '[{"pattern": "(oops"}]'],
            ValueError,
            r"`lr_param_groups\[0\]\['pattern'\]`='\(oops' is not a valid regular expression",
        ),
        (
            ["--lr_param_groups", '[{"pattern": "a", "warmup_step": 3}]'],
            ValueError,
            r"`lr_param_groups\[0\]` has an unknown key 'warmup_step'.*Did you mean 'warmup_steps'",
        ),
        (["--lr_param_groups", "classifier=10"], ValueError, r"`lr_param_groups` must be a JSON list of rules"),
        (["--lr_param_groups", '{"pattern": "a"}'], TypeError, r"`lr_param_groups` must be a list of dicts"),
        (
            ["--lr_param_groups", '[{"pattern": "a", "lr_mult": true}]'],
            TypeError,
            r"`lr_param_groups\[0\]\['lr_mult'\]` must be a real number, got True",
        ),
    ],
)
def test_a_bad_plan_fails_when_parsed(tmp_path, argv, error, message):
    with pytest.raises(error, match=message):
        parse(["--output_dir", str(tmp_path), *argv])
