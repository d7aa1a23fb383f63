"""What every RWKV converter shares: version detection, dimensions, the tokenizer in the file.

Version detection follows shared/reference/ARCHITECTURES.md §1.0.1 (key names, never shapes alone):
`att.k_k` → 7; `att.time_maa_x` → 6; `att.ln_x.weight` → 5; else 4.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..gguf_writer import GGUFWriter, ValueType
from .rwkv_vocab import gguf_world_tokens, load_world_vocab

_LAYER = re.compile(r"^blocks\.(\d+)\.")

# The RWKV chat template llama.cpp writes for World models ("User: …\n\nAssistant:").
CHAT_TEMPLATE = "\n".join([
    '{%- if not add_generation_prompt is defined -%}',
    '    {%- set add_generation_prompt = true -%}',
    '{%- endif -%}',
    "{%- set ns = namespace(system_prompt='') -%}",
    '{%- for message in messages -%}',
    "    {%- if message['role'] == 'system' -%}",
    "        {%- set ns.system_prompt = message['content'] -%}",
    '    {%- endif -%}',
    '{%- endfor -%}',
    '{{bos_token}}',
    "{%- if ns.system_prompt != '' -%}",
    "{{- 'System: ' + ns.system_prompt + '\\n\\n' -}}",
    '{%- endif -%}',
    '{%- for message in messages -%}',
    "    {%- if message['role'] == 'user' -%}",
    "        {{- 'User: ' + message['content']|trim + '\\n\\n' -}}",
    '    {%- endif -%}',
    "    {%- if message['role'] == 'assistant' and message['content'] is  not none -%}",
    "        {%- set content = message['content'] -%}",
    "        {%- if '</think>' in content -%}",
    "            {%- set content = content.split('</think>')[-1] -%}",
    '        {%- endif -%}',
    "        {{- 'Assistant: ' + content|trim + '\\n\\n' -}}",
    '    {%- endif -%}',
    '{%- endfor -%}',
    '{%- if add_generation_prompt -%}',
    "    {{- 'Assistant:' -}}",
    '    {%- if enable_thinking is defined and enable_thinking is false %}',
    "        {{- ' <think>\\n</think>' }}",
    '    {%- endif %}',
    '    {%- if enable_thinking is defined and enable_thinking is true %}',
    "        {{- ' <think>' }}",
    '    {%- endif %}',
    '{%- endif -%}',
])


def detect_version(tensors: dict[str, np.ndarray]) -> int:
    keys = tensors.keys()
    if any(k.endswith("att.k_k") for k in keys):
        return 7
    if any(k.endswith("att.time_maa_x") for k in keys):
        return 6
    if any(k.endswith("att.ln_x.weight") for k in keys):
        return 5
    if any(k.endswith("att.time_first") for k in keys):
        return 4
    raise ValueError("RWKV checkpoint: expected blocks.N.att.* keys of RWKV 4-7, found none "
                     f"(first keys: {', '.join(list(keys)[:5])})")


def n_layers(tensors: dict[str, np.ndarray]) -> int:
    ids = [int(m.group(1)) for k in tensors if (m := _LAYER.match(k))]
    if not ids:
        raise ValueError("RWKV checkpoint: expected blocks.N.* tensors, found none")
    return 1 + max(ids)


def require(tensors: dict[str, np.ndarray], key: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The tensor `key`, squeezed of leading 1s only when `shape` asks for fewer dimensions."""
    if key not in tensors:
        raise ValueError(f"checkpoint tensor {key!r}: expected, found nothing")
    a = np.asarray(tensors[key], dtype=np.float32)
    if shape is not None:
        if a.size != int(np.prod(shape)) or a.squeeze().shape != tuple(d for d in shape if d != 1):
            raise ValueError(f"checkpoint tensor {key!r}: expected shape {shape}, found {a.shape}")
        a = a.reshape(shape)
    return a


def bundled_world_vocab() -> Path:
    return Path(str(resources.files("pyrnn") / "data" / "rwkv_vocab_v20230424.txt"))


def write_world_tokenizer(w: GGUFWriter, n_vocab: int, vocab_path: Path | None = None) -> None:
    """tokenizer.ggml.* for the RWKV World vocabulary, exactly as llama.cpp writes them (§1.6)."""
    vocab = load_world_vocab(vocab_path or bundled_world_vocab())
    if len(vocab) > n_vocab:
        vocab = vocab[:n_vocab]  # a model with a cut-down vocabulary uses its first ids
    tokens, types = gguf_world_tokens(vocab, n_vocab)
    w.add_string("tokenizer.ggml.model", "rwkv")
    w.add_array("tokenizer.ggml.tokens", tokens, ValueType.STRING)
    w.add_array("tokenizer.ggml.token_type", types, ValueType.INT32)
    w.add_uint32("tokenizer.ggml.bos_token_id", 0)
    w.add_uint32("tokenizer.ggml.eos_token_id", 0)
    if n_vocab > 261:
        w.add_uint32("tokenizer.ggml.eot_token_id", 261)  # '\n\n', as llama.cpp
    w.add_string("tokenizer.chat_template", CHAT_TEMPLATE)


def write_general(w: GGUFWriter, arch: str, name: str, file_type: int) -> None:
    w.add_string("general.architecture", arch)
    w.add_string("general.name", name)
    w.add_uint32("general.file_type", file_type)
    w.add_uint32("general.quantization_version", 2)


def hf_to_blinkdl_v7(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """RWKV7ForCausalLM (fla layout) names → BlinkDL names; the values are identical (§1.4.5)."""
    out: dict[str, np.ndarray] = {}
    for k, v in tensors.items():
        n = k
        n = n.replace("model.embeddings.weight", "emb.weight").replace("lm_head.weight", "head.weight")
        n = n.replace("model.ln_out.", "ln_out.").replace("model.layers.", "blocks.")
        n = n.replace(".attn.", ".att.").replace(".pre_norm.", ".ln0.")
        out[n] = v
    return out


def config_int(config: dict[str, Any] | None, key: str, default: int) -> int:
    if config is None or config.get(key) is None:
        return default
    return int(config[key])
