"""What a PRM checkpoint is: its family (from its weights, its head or its name), its model
with the head the family reads, and Skywork's value head, stored beside the weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ttc_agent.errors import ConfigurationError
from ttc_agent.verifiers.prm_families import Family

_NAMED: dict[str, Family] = {
    "math-shepherd": "step_tag",
    "qwen2.5-math-prm": "qwen_prm",
    "rlhflow": "rlhflow",
}
_HEAD = ("v_head.summary.weight", "v_head.summary.bias")


def detect_family(source: str, tokenizer: Any, config: Any) -> Family:
    """The family of a checkpoint, from its weights, its head or its name; never a guess.

    A causal LM could be read at many places, so a plain one is refused rather than read as
    Math-Shepherd: name the family.
    """
    if _weight_files(source, _HEAD[0]):
        return "skywork"
    architectures = " ".join(getattr(config, "architectures", None) or [])
    two_class_head = any(
        mark in architectures for mark in ("ProcessRewardModel", "PRM", "ForTokenClassification")
    )
    if "<extra_0>" in tokenizer.get_vocab() and two_class_head:
        return "qwen_prm"
    names = f"{source} {getattr(config, '_name_or_path', '')}".lower()
    for mark, family in _NAMED.items():
        if mark in names:
            return family
    raise ConfigurationError(
        f"cannot tell which PRM family {Path(source).name or source} belongs to ({architectures}"
        " has no PRM head this class recognises, and its name names no family): pass "
        "family='step_tag' (Math-Shepherd), 'rlhflow', 'qwen_prm' or 'skywork'"
    )


def value_head(source: str) -> tuple[Any, Any]:
    """Skywork's value head (weight [1, hidden], bias [1]) from the checkpoint's safetensors."""
    from safetensors import safe_open

    files = _weight_files(source, _HEAD[0])
    if not files:
        raise ConfigurationError(
            f"{source} has no value head ({_HEAD[0]} in its safetensors): the skywork family "
            "reads its step scores there"
        )
    with safe_open(str(files[0]), framework="pt") as weights:
        return weights.get_tensor(_HEAD[0]), weights.get_tensor(_HEAD[1])


def load_model(
    transformers: Any, source: str, family: Family, config: Any, dtype: Any, trust: bool
) -> Any:
    """The model with the head the family reads (the value head is read apart)."""
    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    dtype_key = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    options = {dtype_key: dtype, "trust_remote_code": trust}
    if family != "qwen_prm":
        return transformers.AutoModelForCausalLM.from_pretrained(source, **options)
    architectures = getattr(config, "architectures", None) or []
    if any(name.endswith("ForTokenClassification") for name in architectures):
        return transformers.AutoModelForTokenClassification.from_pretrained(source, **options)
    if not trust and "AutoModel" in (getattr(config, "auto_map", None) or {}):
        raise ConfigurationError(
            f"{source} ships its own model code ({', '.join(architectures)}): review it, then "
            "pass trust_remote_code=True"
        )
    return transformers.AutoModel.from_pretrained(source, **options)


def _weight_files(source: str, key: str) -> list[Path]:
    """The checkpoint's safetensors files holding ``key`` (none for other formats)."""
    from safetensors import safe_open

    index = _checkpoint_file(source, "model.safetensors.index.json")
    if index is not None:
        shard = json.loads(index.read_text()).get("weight_map", {}).get(key)
        path = _checkpoint_file(source, shard) if shard else None
        return [path] if path is not None else []
    single = _checkpoint_file(source, "model.safetensors")
    if single is None:
        return []
    with safe_open(str(single), framework="pt") as weights:
        return [single] if key in weights.keys() else []  # noqa: SIM118 (not a dict)


def _checkpoint_file(source: str, name: str) -> Path | None:
    """A file of a local checkpoint folder or of a Hub repository (fetched), if it has one."""
    folder = Path(source)
    if folder.is_dir():
        return folder / name if (folder / name).is_file() else None
    from transformers.utils import cached_file

    path = cached_file(
        source,
        name,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
    )
    return Path(path) if path else None
