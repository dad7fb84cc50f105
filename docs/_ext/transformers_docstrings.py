"""A Griffe extension that lets mkdocstrings render docstrings written in `transformers`' style.

The source keeps the ecosystem's convention:

    Args:
        optimizer ([`~torch.optim.Optimizer`]):
            The optimizer ...
        warmup_type (`str`, *optional*, defaults to `"linear"`):
            ...
        warmup_start_ratio, warmup_exp_rate, ...:
            As in [`get_warmup_cosine_schedule`].

    Returns:
        [`ScheduleLR`]: a `LambdaLR` ...

Before Griffe parses a docstring (Google style), this rewrites it so that the site shows types as types and defaults
as defaults: a parameter's type and default come from the signature (the annotation and the default value), so the
header keeps only the name; a row naming several parameters becomes one row each, and so does a `Raises` row naming
several exceptions (`` `ValueError` or `TypeError`: ... ``), each exception without its backticks; `Returns` keeps
its text, its type coming from the return annotation; and `[`name`]` cross-references become links (autorefs for
hf_lrsched's own API, the upstream documentation for torch and transformers, code otherwise).
"""

from __future__ import annotations

import re

import griffe

SECTIONS = {"Args", "Arguments", "Attributes", "Returns", "Raises"}
HEADER = re.compile(
    r"^(?P<names>\*{0,2}[A-Za-z_][\w]*(?:,\s*\*{0,2}[A-Za-z_]\w*)*)\s*(?:\((?P<type>.*)\))?:\s*(?P<rest>.*)$"
)
XREF = re.compile(r"\[`(?P<target>~?[\w.]+)`\](?![\[(])")
# A `Raises` entry as transformers writes it: `` `ValueError`: text ``, or several exceptions sharing one text
# (`` `ValueError` or `TypeError`: text ``).
RAISES = re.compile(r"^(?P<names>`?[A-Z]\w*`?(?:(?:\s+or\s+|,\s*)`?[A-Z]\w*`?)*):\s*(?P<rest>.*)$")
LEADING_TYPE = re.compile(r"^(?:\[`~?[\w.]+`\]|`[^`]+`)(?:\s*or\s*(?:\[`~?[\w.]+`\]|`[^`]+`))*\s*:\s*")

EXTERNAL = {
    "torch.optim.Optimizer": "https://docs.pytorch.org/docs/stable/optim.html#torch.optim.Optimizer",
    "torch.optim.lr_scheduler.LambdaLR": "https://docs.pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.LambdaLR.html",
    "torch.optim.lr_scheduler.LRScheduler": "https://docs.pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate",
    "transformers.TrainingArguments": "https://huggingface.co/docs/transformers/main_classes/trainer#transformers.TrainingArguments",
    "transformers.Trainer": "https://huggingface.co/docs/transformers/main_classes/trainer#transformers.Trainer",
    "transformers.TrainerCallback": "https://huggingface.co/docs/transformers/main_classes/callback#transformers.TrainerCallback",
}
# hf_lrsched's names as the API page renders them (autorefs identifiers).
OWN = {
    **{
        name: f"hf_lrsched.{name}"
        for name in (
            "get_warmup_cosine_schedule",
            "get_exponential_warmup_cosine_schedule",
            "get_cosine_with_growing_restarts_schedule",
            "get_wsd_schedule",
            "resolve_auto_warmup_steps",
            "resolve_num_warmup_steps",
            "ScheduleLR",
            "ScheduleInfo",
            "describe",
            "get_schedule",
            "get_schedule_factory",
            "register_schedule",
            "unregister_schedule",
            "available_schedules",
            "schedule_description",
            "schedule_multipliers",
        )
    },
    "ScheduleEntry": "hf_lrsched.registry.ScheduleEntry",
    "get_schedule_entry": "hf_lrsched.registry.get_schedule_entry",
    "check_schedule": "hf_lrsched.preview.check_schedule",
    "PROBE_TRAINING_STEPS": "hf_lrsched.preview.PROBE_TRAINING_STEPS",
    "LRSchedArguments": "hf_lrsched.training_args.LRSchedArguments",
    "LRSchedTrainingArguments": "hf_lrsched.training_args.LRSchedTrainingArguments",
    "LRSchedMixin": "hf_lrsched.trainer.LRSchedMixin",
    "LRSchedTrainer": "hf_lrsched.trainer.LRSchedTrainer",
    "LRCurveCallback": "hf_lrsched.callbacks.LRCurveCallback",
    "SnapshotCallback": "hf_lrsched.callbacks.SnapshotCallback",
}


def link(match: re.Match) -> str:
    """One `[`name`]` as a link: ours through autorefs, torch's and transformers' to their docs, else as code."""
    target = match.group("target")
    short = target.startswith("~")
    path = target.lstrip("~")
    shown = path.rsplit(".", 1)[-1] if short else path
    name = path.rsplit(".", 1)[-1]
    if path in EXTERNAL:
        return f"[`{shown}`]({EXTERNAL[path]})"
    if name in OWN and (path == name or path.startswith("hf_lrsched")):
        return f"[`{shown}`][{OWN[name]}]"
    return f"`{shown}`"


def rewrite(text: str, known: set[str]) -> str:
    """The docstring `text` in Griffe's Google style; `known` are the names whose type the signature gives."""
    lines = text.split("\n")
    out: list[str] = []
    section, entry_indent, i = None, None, 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped.endswith(":") and stripped[:-1] in SECTIONS:
            section, entry_indent = stripped[:-1], None
            out.append(line)
            i += 1
            continue
        if section is not None and stripped and entry_indent is not None and indent < entry_indent:
            section = None
        if section is None or not stripped:
            out.append(line)
            i += 1
            continue
        entry_indent = indent if entry_indent is None else entry_indent
        if section == "Returns" and indent == entry_indent:
            out.append(" " * indent + LEADING_TYPE.sub("", stripped))
            i += 1
            continue
        match = None
        if indent == entry_indent and section in ("Args", "Arguments", "Attributes"):
            match = HEADER.match(stripped)
        elif indent == entry_indent and section == "Raises":
            match = RAISES.match(stripped)
        if match is None:
            out.append(line)
            i += 1
            continue
        body = []  # the entry's description: the rest of the header line and the deeper lines below it
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
            body.append(lines[j])
            j += 1
        blank = 0  # blank lines after the entry: kept after it, since the next section needs one before it
        while body and not body[-1].strip():
            body.pop()
            blank += 1
        if section == "Raises":  # one row per exception, its name bare (Griffe shows it as code)
            for name in re.findall(r"[A-Z]\w*", match.group("names")):
                out.append(" " * indent + f"{name}: {match.group('rest')}".rstrip())
                out.extend(body)
            out.extend([""] * blank)
            i = j
            continue
        names = [name.strip() for name in match.group("names").split(",")]
        kind = match.group("type")
        for name in names:
            header = f"{name}:"
            if kind and name.lstrip("*") not in known:  # no annotation to take the type from: keep it, cleaned
                header = f"{name} ({clean_type(kind)}):"
            rest = match.group("rest")
            out.append(" " * indent + header + (f" {rest}" if rest else ""))
            out.extend(body)
        out.extend([""] * blank)
        i = j
    return XREF.sub(link, "\n".join(out))


def clean_type(kind: str) -> str:
    """`` `float`, *optional*, defaults to 5.0 `` -> `float`: the type only (the default is the signature's)."""
    first = re.split(r",\s*\*optional\*|,\s*defaults to", kind)[0]
    first = XREF.sub(lambda m: m.group("target").lstrip("~").rsplit(".", 1)[-1], first)
    return first.replace("`", "").strip()


class TransformersDocstrings(griffe.Extension):
    """Rewrite each docstring before it is parsed; see the module's docstring."""

    def on_module_instance(self, *, mod: griffe.Module, **kwargs) -> None:
        if mod.docstring is not None:
            mod.docstring.value = rewrite(mod.docstring.value, set())

    def on_function_instance(self, *, func: griffe.Function, **kwargs) -> None:
        if func.docstring is not None:
            known = {p.name for p in func.parameters if p.annotation is not None}
            func.docstring.value = rewrite(func.docstring.value, known)

    def on_class_members(self, *, cls: griffe.Class, **kwargs) -> None:
        if cls.docstring is None:
            return
        known = {name for name, member in cls.members.items() if getattr(member, "annotation", None) is not None}
        init = cls.members.get("__init__")
        if isinstance(init, griffe.Function):
            known |= {p.name for p in init.parameters if p.annotation is not None}
        cls.docstring.value = rewrite(cls.docstring.value, known)
