"""llama-quantize's per-tensor type choice ("recipes" such as Q4_K_M), ported from llama.cpp.

Follows ``src/llama-quant.cpp`` of llama.cpp at commit 007dbbf3fd17eefe9b47fee45f48f7ba5e62b714 (MIT; the copy
vendored by llama-cpp-python 0.3.36, llama.cpp 0c1e5709 of 2026-10-01, has the same rules for these file types):
``tensor_get_category``, ``tensor_allows_quantization``, ``llama_tensor_get_type_impl``,
``tensor_type_fallback``, ``llama_tensor_get_type``, ``init_quantize_state_counters``,
``llama_ftype_get_default_type``, ``tensor_requires_imatrix``, and the tensor order of
``llama_model_loader::weight_name_comparer`` (layer number, then name), in which llama-quantize visits and
writes tensors (the ``i_attention_wv`` / ``i_ffn_down`` counters depend on it).

Only the file types whose tensor types pyquant can produce are ported (no IQ*/TQ*/MXFP4 recipes).
Differences from older llama.cpp worth knowing: at this commit a fused ``attn_qkv`` tensor takes the
``attn_v`` rules (older releases gave it Q5_K under Q4_K_M), and a tied ``token_embd`` takes the
``output`` rules (Q6_K, or Q8_0 when its rows are not a multiple of 256).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

T = GGMLQuantizationType
F = LlamaFileType

__all__ = [
    "ARCHITECTURES", "ModelInfo", "Recipe", "RecipeError", "RECIPES", "TensorChoice", "choose_types",
    "llama_order", "recipe_of",
]


class RecipeError(ValueError):
    """An unknown recipe, or a tensor llama-quantize's rules cannot place (the message says which)."""


@dataclass(frozen=True)
class Recipe:
    """A llama-quantize file type: its name, ``general.file_type`` number and default tensor type."""

    name: str
    ftype: int
    default: GGMLQuantizationType

    @property
    def is_quantized(self) -> bool:
        return self.default not in (T.F32, T.F16, T.BF16)


#: llama-quantize's file types that pyquant can produce, by name (llama_ftype_get_default_type).
RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("Q4_0", F.MOSTLY_Q4_0, T.Q4_0),
        Recipe("Q4_1", F.MOSTLY_Q4_1, T.Q4_1),
        Recipe("Q5_0", F.MOSTLY_Q5_0, T.Q5_0),
        Recipe("Q5_1", F.MOSTLY_Q5_1, T.Q5_1),
        Recipe("Q8_0", F.MOSTLY_Q8_0, T.Q8_0),
        Recipe("Q2_K", F.MOSTLY_Q2_K, T.Q2_K),
        Recipe("Q2_K_S", F.MOSTLY_Q2_K_S, T.Q2_K),
        Recipe("Q3_K_S", F.MOSTLY_Q3_K_S, T.Q3_K),
        Recipe("Q3_K_M", F.MOSTLY_Q3_K_M, T.Q3_K),
        Recipe("Q3_K_L", F.MOSTLY_Q3_K_L, T.Q3_K),
        Recipe("Q4_K_S", F.MOSTLY_Q4_K_S, T.Q4_K),
        Recipe("Q4_K_M", F.MOSTLY_Q4_K_M, T.Q4_K),
        Recipe("Q5_K_S", F.MOSTLY_Q5_K_S, T.Q5_K),
        Recipe("Q5_K_M", F.MOSTLY_Q5_K_M, T.Q5_K),
        Recipe("Q6_K", F.MOSTLY_Q6_K, T.Q6_K),
        Recipe("F16", F.MOSTLY_F16, T.F16),
        Recipe("BF16", F.MOSTLY_BF16, T.BF16),
        Recipe("F32", F.ALL_F32, T.F32),
    )
}
#: llama-quantize's aliases (QUANT_OPTIONS in tools/quantize/quantize.cpp).
ALIASES = {"Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M"}

#: Architectures the rules are checked for (any other ``general.architecture`` gets the generic rules).
ARCHITECTURES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3", "bert", "falcon")


def recipe_of(name: str | Recipe) -> Recipe:
    """Resolve a recipe name as llama-quantize does (case-insensitive, ``Q4_K`` = ``Q4_K_M``)."""
    if isinstance(name, Recipe):
        return name
    key = str(name).strip().upper()
    key = ALIASES.get(key, key)
    if key in RECIPES:
        return RECIPES[key]
    raise RecipeError(
        f"unknown recipe or type {name!r}; expected one of {', '.join(list(RECIPES) + list(ALIASES))}"
    )


def _block(t: GGMLQuantizationType) -> int:
    return GGML_QUANT_SIZES[t][0]


def _is_quantized(t: GGMLQuantizationType) -> bool:
    return t not in (T.F32, T.F16, T.BF16, T.F64, T.I8, T.I16, T.I32, T.I64)


# ----------------------------------------------------------------------------------------------------------
# the model's hyper-parameters that the rules read


@dataclass(frozen=True)
class ModelInfo:
    """What the rules read of a model: ``n_layer`` (``<arch>.block_count``), heads (for ``n_gqa``), experts."""

    arch: str = ""
    n_layer: int = 0
    n_head: int = 0
    n_head_kv: int = 0
    n_expert: int = 0

    @property
    def n_gqa(self) -> int:
        """llama_hparams::n_gqa() for layer 0 (0 when n_head_kv is 0)."""
        return self.n_head // self.n_head_kv if self.n_head_kv else 0

    @property
    def is_70b(self) -> bool:
        """llama.cpp's LLM_TYPE_70B (the only model size the rules look at)."""
        if self.arch == "llama":
            return self.n_layer == 80 and self.n_head != self.n_head_kv  # 80 layers without GQA: LLaMA-1 65B
        return {"qwen2": 80, "deci": 80, "olmo": 80, "jais2": 68}.get(self.arch) == self.n_layer

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], arch: str | None = None) -> ModelInfo:
        arch = arch or metadata.get("general.architecture") or ""

        def first(key: str, default: int = 0) -> int:
            v = metadata.get(f"{arch}.{key}")
            if v is None:
                return default
            if hasattr(v, "__len__") and not isinstance(v, str):  # per-layer arrays: layer 0, as n_gqa(0) does
                return int(v[0]) if len(v) else default
            return int(v)

        n_head = first("attention.head_count")
        return cls(
            arch=str(arch),
            n_layer=first("block_count"),
            n_head=n_head,
            n_head_kv=first("attention.head_count_kv", n_head),
            n_expert=first("expert_count"),
        )


# ----------------------------------------------------------------------------------------------------------
# tensor order and categories

_BLK = re.compile(r"blk\.([+-]?\d+)")


def _layer(name: str) -> int:
    m = _BLK.match(name)
    return int(m.group(1)) if m else -1


def llama_order(names: Iterable[str]) -> list[str]:
    """llama_model_loader's weight order: by layer number (non-layer tensors first), then by name (bytes)."""
    return sorted(names, key=lambda n: (_layer(n), n.encode("utf-8")))


TOKEN_EMBD, ATTENTION_Q, ATTENTION_V, ATTENTION_K, ATTENTION_QKV, ATTENTION_KV_B, ATTENTION_OUTPUT = range(7)
FFN_UP, FFN_GATE, FFN_DOWN, OUTPUT, OTHER = range(7, 12)


def category(name: str) -> int:
    """llama.cpp's tensor_get_category."""
    if name == "output.weight":
        return OUTPUT
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return TOKEN_EMBD
    for needle, cat in (
        ("attn_qkv.weight", ATTENTION_QKV), ("attn_kv_b.weight", ATTENTION_KV_B), ("attn_v.weight", ATTENTION_V),
        ("attn_k.weight", ATTENTION_K), ("attn_q.weight", ATTENTION_Q), ("attn_output.weight", ATTENTION_OUTPUT),
        ("ffn_up", FFN_UP), ("ffn_gate", FFN_GATE), ("ffn_down", FFN_DOWN),
    ):
        if needle in name:
            return cat
    return OTHER


def _is_attn_v(cat: int) -> bool:
    return cat in (ATTENTION_V, ATTENTION_QKV, ATTENTION_KV_B)


_NOT_QUANTIZED_SUBSTR = (
    "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
    "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight",
    "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
    "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight",
    "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight", "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight", ".position_embd",
    "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger", "a.rvq.codebook",
    "mm.a.code_embd",
)


def ggml_n_dims(shape: Sequence[int]) -> int:
    """ggml_n_dims: dimensions up to the last one larger than 1 (at least 1); ``shape`` is numpy-ordered."""
    ne = list(reversed(shape))
    for i in range(len(ne) - 1, 0, -1):
        if ne[i] > 1:
            return i + 1
    return 1


def allows_quantization(name: str, shape: Sequence[int], *, quantize_output: bool = True) -> bool:
    """llama.cpp's tensor_allows_quantization: 2-D+ tensors named ``*weight`` that are not norms, etc.

    ``position_embd.weight`` and ``token_types.weight`` (BERT) stay unquantized for every architecture here;
    llama.cpp excludes them only for architectures that have them, the only ones where they occur.
    """
    if ggml_n_dims(shape) < 2:
        return False
    if not name.endswith("weight"):
        return False
    if not quantize_output and name == "output.weight":
        return False
    if any(s in name for s in _NOT_QUANTIZED_SUBSTR):
        return False
    return name not in ("position_embd.weight", "token_types.weight")


# ----------------------------------------------------------------------------------------------------------
# the choice


@dataclass
class TensorChoice:
    """The type chosen for one tensor, and why."""

    name: str
    shape: tuple[int, ...]
    src_type: GGMLQuantizationType
    qtype: GGMLQuantizationType
    quantizable: bool  # tensor_allows_quantization
    fallback_from: GGMLQuantizationType | None = None  # the k-quant it could not take (row length)
    requires_imatrix: bool = False

    @property
    def converts(self) -> bool:
        """Whether llama-quantize rewrites the data (its ``cur_type != new_type``)."""
        return self.qtype != self.src_type


@dataclass
class _State:
    info: ModelInfo
    ftype: int
    has_imatrix: bool
    tied: bool = True
    n_attention_wv: int = 0
    n_ffn_down: int = 0
    n_ffn_gate: int = 0
    n_ffn_up: int = 0
    i_attention_wv: int = 0
    i_ffn_down: int = 0
    i_ffn_gate: int = 0
    i_ffn_up: int = 0
    n_fallback: int = 0
    overrides: list = field(default_factory=list)


def _use_more_bits(i_layer: int, n_layers: int) -> bool:
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or (i_layer - n_layers // 8) % 3 == 2


def _layer_info(qs: _State, i_layer: int, n_layer: int, name: str) -> tuple[int, int]:
    if max(1, qs.info.n_expert) > 1:
        # experts are not in layer order in some models: take the layer from the name, as llama.cpp does
        m = re.match(r"blk\.([+-]?\d+)\.", name)
        if not m:
            raise RecipeError(f"failed to determine the layer of tensor {name}")
        i_layer = int(m.group(1))
        if i_layer < 0 or i_layer >= n_layer:
            raise RecipeError(f"bad layer {i_layer} for tensor {name}; must be in [0, {n_layer})")
    return i_layer, n_layer


def _get_type_impl(qs: _State, new_type: GGMLQuantizationType, name: str, ne0: int, cat: int,
                   output_type: GGMLQuantizationType | None, token_embd_type: GGMLQuantizationType | None
                   ) -> GGMLQuantizationType:
    """llama.cpp's llama_tensor_get_type_impl, for the k-quant and legacy file types."""
    ft, info, arch = qs.ftype, qs.info, qs.info.arch
    falcon = arch == "falcon"
    if cat == OUTPUT or (qs.tied and cat == TOKEN_EMBD):
        if output_type is not None:
            new_type = output_type
        elif falcon or ne0 % _block(new_type):
            new_type = T.Q8_0
        elif new_type != T.Q8_0:
            new_type = T.Q6_K
    elif cat == TOKEN_EMBD:
        if token_embd_type is not None:
            new_type = token_embd_type
    elif _is_attn_v(cat):
        if ft == F.MOSTLY_Q2_K:
            new_type = T.Q4_K if info.n_gqa >= 4 else T.Q3_K
        elif ft == F.MOSTLY_Q2_K_S and info.n_gqa >= 4:
            new_type = T.Q4_K
        elif ft == F.MOSTLY_Q3_K_M:
            new_type = T.Q5_K if qs.i_attention_wv < 2 else T.Q4_K
        elif ft == F.MOSTLY_Q3_K_L:
            new_type = T.Q5_K
        elif ft in (F.MOSTLY_Q4_K_M, F.MOSTLY_Q5_K_M) and _use_more_bits(qs.i_attention_wv, qs.n_attention_wv):
            new_type = T.Q6_K
        elif ft == F.MOSTLY_Q4_K_S and qs.i_attention_wv < 4:
            new_type = T.Q5_K
        if info.is_70b and new_type in (T.Q3_K, T.Q4_K):
            # 70B: 8 heads share attn_v, so it is 8x smaller than attn_q; more bits cost little
            new_type = T.Q5_K
        if info.n_expert == 8:
            new_type = T.Q8_0
        qs.i_attention_wv += 1
    elif cat == ATTENTION_K:
        if info.n_expert == 8:
            new_type = T.Q8_0
    elif cat == ATTENTION_Q:
        pass  # only IQ3_XS / IQ3_XXS rules
    elif cat == FFN_DOWN:
        i_layer, n_layer = _layer_info(qs, qs.i_ffn_down, qs.n_ffn_down, name)
        if ft == F.MOSTLY_Q2_K:
            new_type = T.Q3_K
        elif ft == F.MOSTLY_Q2_K_S:
            if i_layer < n_layer // 8:
                new_type = T.Q4_K
        elif ft == F.MOSTLY_Q3_K_M:
            if i_layer < n_layer // 16:
                new_type = T.Q5_K
            elif not falcon or _use_more_bits(i_layer, n_layer):
                new_type = T.Q4_K
            else:
                new_type = T.Q3_K
        elif ft == F.MOSTLY_Q3_K_L:
            new_type = T.Q4_K if falcon else T.Q5_K
        elif ft == F.MOSTLY_Q4_K_M:
            if falcon:
                new_type = T.Q6_K if i_layer < n_layer // 16 else T.Q5_K if _use_more_bits(i_layer, n_layer) else T.Q4_K
            elif _use_more_bits(i_layer, n_layer):
                new_type = T.Q6_K
        elif ft == F.MOSTLY_Q5_K_M and _use_more_bits(i_layer, n_layer):
            new_type = T.Q6_K
        elif ft == F.MOSTLY_Q4_K_S and not falcon and i_layer < n_layer // 8:
            new_type = T.Q5_K
        elif ft in (F.MOSTLY_Q4_0, F.MOSTLY_Q5_0) and qs.has_imatrix and i_layer < n_layer // 8:
            # llama.cpp guards the first ffn_down layers of Q4_0/Q5_0, only when an imatrix is given
            new_type = T.Q4_1 if ft == F.MOSTLY_Q4_0 else T.Q5_1
        qs.i_ffn_down += 1
    elif cat == ATTENTION_OUTPUT:
        if not falcon:
            if info.n_expert == 8:
                if ft in (F.MOSTLY_Q2_K, F.MOSTLY_Q3_K_S, F.MOSTLY_Q3_K_M, F.MOSTLY_Q4_K_S, F.MOSTLY_Q4_K_M):
                    new_type = T.Q5_K
            else:
                if ft == F.MOSTLY_Q2_K:
                    new_type = T.Q3_K
                elif ft == F.MOSTLY_Q3_K_M:
                    new_type = T.Q4_K
                elif ft == F.MOSTLY_Q3_K_L:
                    new_type = T.Q5_K
        elif ft == F.MOSTLY_Q3_K_L:
            new_type = T.Q4_K
    elif cat == ATTENTION_QKV:
        # unreachable at this commit (attn_qkv is attn_v-like above); kept as llama.cpp has it
        if ft in (F.MOSTLY_Q3_K_M, F.MOSTLY_Q3_K_L):
            new_type = T.Q4_K
        elif ft == F.MOSTLY_Q4_K_M:
            new_type = T.Q5_K
        elif ft == F.MOSTLY_Q5_K_M:
            new_type = T.Q6_K
    elif cat == FFN_GATE:
        _layer_info(qs, qs.i_ffn_gate, qs.n_ffn_gate, name)
        qs.i_ffn_gate += 1
    elif cat == FFN_UP:
        _layer_info(qs, qs.i_ffn_up, qs.n_ffn_up, name)
        qs.i_ffn_up += 1
    return new_type


_FALLBACK = {T.Q2_K: T.Q4_0, T.Q3_K: T.Q4_0, T.Q4_K: T.Q5_0, T.Q5_K: T.Q5_1, T.Q6_K: T.Q8_0}


def _fallback(qs: _State, name: str, ne0: int, target: GGMLQuantizationType) -> GGMLQuantizationType:
    """llama.cpp's tensor_type_fallback: a type whose block divides the row length."""
    if ne0 % _block(target) == 0:
        return target
    qs.n_fallback += 1
    if target not in _FALLBACK:
        raise RecipeError(
            f"tensor {name}: row length {ne0} is not a multiple of {target.name}'s block size {_block(target)}"
            f" and llama.cpp defines no fallback type for {target.name}"
        )
    ret = _FALLBACK[target]
    if ne0 % _block(ret):
        ret = T.F16  # "must use F16 due to unusual shape"
    return ret


def choose_types(
    tensors: Iterable[tuple[str, Sequence[int], GGMLQuantizationType]],
    recipe: str | Recipe | GGMLQuantizationType,
    info: ModelInfo | None = None,
    *,
    has_imatrix: bool = False,
    pure: bool = False,
    quantize_output: bool = True,
    output_type: GGMLQuantizationType | None = None,
    token_embd_type: GGMLQuantizationType | None = None,
    overrides: Sequence[tuple[str, GGMLQuantizationType]] | None = None,
) -> list[TensorChoice]:
    """The type llama-quantize gives each tensor, in llama-quantize's tensor order.

    ``tensors``: ``(name, numpy-ordered shape, current type)`` for every tensor of the model.
    ``recipe``: a recipe name (``"Q4_K_M"``), a :class:`Recipe`, or a ``GGMLQuantizationType`` (which means
    ``pure``: every quantizable tensor gets that type, with the row-length fallback).
    ``info``: the model's :class:`ModelInfo` (``n_layer`` counts ffn_down layers; heads for ``n_gqa``).
    ``overrides``: ``(regex, type)`` pairs, llama-quantize's ``--tensor-type``; the first that matches wins.
    """
    if isinstance(recipe, GGMLQuantizationType):
        default, ftype, pure = recipe, -1, True
    else:
        r = recipe_of(recipe)
        default, ftype = r.default, r.ftype
    info = info or ModelInfo()
    items = [(n, tuple(int(s) for s in shape), GGMLQuantizationType(int(t))) for n, shape, t in tensors]
    by_name = {n: (shape, t) for n, shape, t in items}
    order = llama_order(by_name)

    qs = _State(info=info, ftype=ftype, has_imatrix=has_imatrix)
    pats = [(re.compile(p), GGMLQuantizationType(int(t))) for p, t in (overrides or [])]
    for n in order:  # init_quantize_state_counters
        c = category(n)
        if _is_attn_v(c):
            qs.n_attention_wv += 1
        if c == OUTPUT:
            qs.tied = False
    qs.n_ffn_down = qs.n_ffn_gate = qs.n_ffn_up = info.n_layer

    out = []
    for n in order:
        shape, src = by_name[n]
        ne0 = shape[-1] if shape else 1
        cat = category(n)
        ok = allows_quantization(n, shape, quantize_output=quantize_output)
        fb = None
        if not ok:
            new = src
        elif token_embd_type is not None and cat == TOKEN_EMBD:
            new = token_embd_type
        elif output_type is not None and cat == OUTPUT:
            new = output_type
        else:
            new = default
            if _is_quantized(default):
                manual = False
                for pat, t in pats:
                    if pat.search(n):
                        new, manual = t, True
                        break
                if not manual and not pure:
                    new = _get_type_impl(qs, new, n, ne0, cat, output_type, token_embd_type)
                wanted = new
                new = _fallback(qs, n, ne0, new)
                if new != wanted:
                    fb = wanted
        req = (
            ok and ftype == F.MOSTLY_Q2_K_S and new == T.Q2_K and cat not in (TOKEN_EMBD, OUTPUT)
        )
        out.append(TensorChoice(n, shape, src, new, ok, fb, req))
    return out


# ==========================================================================================================
# whole-model quantization (llama_model_quantize_impl's main loop)

#: general.file_type for a pure single-type run, as llama-quantize would write for that type's recipe.
_FTYPE_OF_TYPE = {
    T.F32: F.ALL_F32, T.F16: F.MOSTLY_F16, T.BF16: F.MOSTLY_BF16, T.Q4_0: F.MOSTLY_Q4_0, T.Q4_1: F.MOSTLY_Q4_1,
    T.Q5_0: F.MOSTLY_Q5_0, T.Q5_1: F.MOSTLY_Q5_1, T.Q8_0: F.MOSTLY_Q8_0, T.Q2_K: F.MOSTLY_Q2_K,
    T.Q3_K: F.MOSTLY_Q3_K_M, T.Q4_K: F.MOSTLY_Q4_K_M, T.Q5_K: F.MOSTLY_Q5_K_M, T.Q6_K: F.MOSTLY_Q6_K,
}
_FLOATS = (T.F32, T.F16, T.BF16)
_CHUNK_ELEMENTS = 1 << 22  # rows are quantized and written in chunks of about this many values (16 MiB f32)


@dataclass
class TensorReport:
    """What happened to one tensor: types, sizes (bytes), seconds."""

    name: str
    shape: tuple[int, ...]
    src_type: GGMLQuantizationType
    qtype: GGMLQuantizationType
    converted: bool
    in_bytes: int
    out_bytes: int
    seconds: float = 0.0
    imatrix: bool = False
    fallback_from: GGMLQuantizationType | None = None

    @property
    def n_elements(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def bpw(self) -> float:
        return 8.0 * self.out_bytes / max(1, self.n_elements)


@dataclass
class QuantizeReport:
    """The result of :func:`quantize_model`: per-tensor reports in file order, totals, warnings."""

    path: Any
    recipe: str
    tensors: list[TensorReport]
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def n_elements(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    @property
    def in_bytes(self) -> int:
        return sum(t.in_bytes for t in self.tensors)

    @property
    def out_bytes(self) -> int:
        return sum(t.out_bytes for t in self.tensors)

    @property
    def bpw(self) -> float:
        return 8.0 * self.out_bytes / max(1, self.n_elements)

    def as_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.path), "recipe": self.recipe, "seconds": round(self.seconds, 4),
            "n_elements": self.n_elements, "in_bytes": self.in_bytes, "out_bytes": self.out_bytes,
            "bpw": round(self.bpw, 4), "warnings": list(self.warnings),
            "tensors": [
                {"name": t.name, "shape": list(t.shape), "from": t.src_type.name, "to": t.qtype.name,
                 "converted": t.converted, "bytes": t.out_bytes, "bpw": round(t.bpw, 4),
                 "seconds": round(t.seconds, 4), "imatrix": t.imatrix,
                 "fallback_from": t.fallback_from.name if t.fallback_from else None}
                for t in self.tensors
            ],
        }


def open_model(path: Any, arch: str | None = None, config: dict | None = None) -> Any:
    """A GGUF file (:class:`~pyquant.gguf_io.GGUFFile`) or, with ``arch``, a safetensors checkpoint."""
    from pathlib import Path

    from .gguf_io import GGUFError, GGUFFile
    from .safetensors_io import SafetensorsModel

    if hasattr(path, "infos") and hasattr(path, "tensor"):  # already open
        return path
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            magic = fh.read(4)
    except FileNotFoundError:
        raise GGUFError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise GGUFError(f"{p}: is a directory, expected a model file") from None
    if magic != b"GGUF" and (p.suffix == ".safetensors" or arch is not None):
        if not arch:
            raise GGUFError(f"{p}: a safetensors input needs its architecture named (arch=..., --arch), e.g. 'bert'")
        return SafetensorsModel(p, arch, config)
    return GGUFFile(p)


def _float_row_chunks(t: Any, rows_per_chunk: int):
    """Yield (first_row, float32 rows) of ``t`` in chunks, converting only one chunk at a time."""
    from .quant import dequantize

    n = t.shape[-1]
    if t.qtype == T.F32:
        allrows = t.data.reshape(-1).view(np.float32).reshape(-1, n)
        for r0 in range(0, allrows.shape[0], rows_per_chunk):
            yield r0, allrows[r0:r0 + rows_per_chunk]
        return
    raw = t.data.reshape(-1, t.data.shape[-1]) if t.data.ndim > 1 else t.data.reshape(1, -1)
    for r0 in range(0, raw.shape[0], rows_per_chunk):
        part = raw[r0:r0 + rows_per_chunk]
        yield r0, dequantize(part, t.qtype, (part.shape[0], n))


def quantize_model(
    in_path: Any,
    out_path: Any,
    recipe_or_type: str | Recipe | GGMLQuantizationType,
    imatrix: Any = None,
    threads: int | None = None,
    arch: str | None = None,
    *,
    force: bool = False,
    pure: bool = False,
    allow_requantize: bool = False,
    quantize_output: bool = True,
    output_type: Any = None,
    token_embd_type: Any = None,
    overrides: Sequence[tuple[str, Any]] | None = None,
    progress: bool | None = None,
    config: dict | None = None,
    dry_run: bool = False,
) -> QuantizeReport:
    """Quantize a whole model file as ``llama-quantize IN OUT RECIPE`` does, tensor by tensor.

    ``in_path``: an F32/F16/BF16 GGUF file, or a safetensors checkpoint with ``arch`` named (``"bert"``, …).
    ``recipe_or_type``: a llama-quantize recipe (``"Q4_K_M"``, ``"Q8_0"``, … see :data:`RECIPES`), or a
    ``GGMLQuantizationType`` for one type everywhere it fits (``pure``, with llama.cpp's row-length fallback).
    ``imatrix``: a path to a llama.cpp imatrix file (GGUF or legacy ``.dat``), an :class:`~pyquant.imatrix.Imatrix`,
    or ``{tensor name: weights}``. ``threads``: Numba threads (default: all cores).
    Tensors are written in llama-quantize's order; memory holds one chunk of rows at a time, not the model.
    The output appears only when complete (see :class:`~pyquant.gguf_io.GGUFSink`). Returns a
    :class:`QuantizeReport`. ``dry_run``: choose types and check everything, write nothing.
    """
    import time

    import numba

    from . import cpu
    from .formats import qtype_of
    from .gguf_io import GGUFSink
    from .imatrix import Imatrix, ImatrixError, load_imatrix
    from .quant import QuantizationError, quantize_array

    t_start = time.perf_counter()
    if isinstance(recipe_or_type, GGMLQuantizationType):
        target: Recipe | GGMLQuantizationType = recipe_or_type
        recipe_name = recipe_or_type.name
        if recipe_or_type not in _FTYPE_OF_TYPE:
            raise RecipeError(f"{recipe_or_type.name} cannot be a model's tensor type; use one of "
                              f"{', '.join(t.name for t in _FTYPE_OF_TYPE)}")
        ftype = int(_FTYPE_OF_TYPE[recipe_or_type])
    else:
        target = recipe_of(recipe_or_type)
        recipe_name = target.name
        ftype = int(target.ftype)
    ot = qtype_of(output_type) if output_type is not None else None
    et = qtype_of(token_embd_type) if token_embd_type is not None else None
    ovr = [(p, qtype_of(t)) for p, t in (overrides or [])]

    src = open_model(in_path, arch, config)
    info = ModelInfo.from_metadata(src.metadata, arch if arch and not hasattr(src, "config") else None)

    early_warnings: list[str] = []
    if info.n_layer == 0:
        layers = [_layer(ti.name) for ti in src.infos]
        if max(layers, default=-1) >= 0:
            # llama.cpp reads <arch>.block_count (and fails without it); the ffn_down rules need it
            from dataclasses import replace

            info = replace(info, n_layer=max(layers) + 1)
            early_warnings.append(f"metadata has no {info.arch or '<arch>'}.block_count; assuming {info.n_layer}"
                                  " layers from the tensor names")

    # the imatrix, before choosing: llama.cpp's rules look at whether there is one
    weights_src: Imatrix | None = None
    if imatrix is not None:
        if isinstance(imatrix, Imatrix):
            weights_src = imatrix
        elif isinstance(imatrix, Mapping):
            weights_src = Imatrix.from_weights(imatrix)
        else:
            weights_src = load_imatrix(imatrix)

    choices = choose_types(
        [(ti.name, ti.shape, ti.qtype) for ti in src.infos], target, info,
        has_imatrix=weights_src is not None, pure=pure, quantize_output=quantize_output,
        output_type=ot, token_embd_type=et, overrides=ovr,
    )
    warnings: list[str] = early_warnings
    for c in choices:
        if c.fallback_from is not None:
            warnings.append(f"{c.name}: row length {c.shape[-1]} is not a multiple of {c.fallback_from.name}'s"
                            f" block size {_block(c.fallback_from)}; using {c.qtype.name} (llama.cpp's fallback)")
        if not c.converts:
            continue
        if c.src_type not in _FLOATS and not allow_requantize:
            raise RecipeError(f"{c.name} is already {c.src_type.name}; requantizing loses quality, so it is refused"
                              " (dequantize the model first, or pass allow_requantize=True / --allow-requantize)")
        for t in (c.src_type, c.qtype):
            try:
                cpu.kernels(qtype_of(t))
            except (NotImplementedError, ValueError):
                raise RecipeError(f"{c.name}: pyquant has no CPU kernels for {T(t).name} yet") from None

    weights: dict[str, np.ndarray] = {}
    if weights_src is not None:
        to_weigh = [(c.name, c.shape) for c in choices if c.converts and _is_quantized(c.qtype)]
        weights = weights_src.for_model(to_weigh, warn=warnings)
    missing = [c.name for c in choices if c.requires_imatrix and c.name not in weights]
    if missing:
        raise ImatrixError(f"recipe {recipe_name} needs an importance matrix for {missing[0]}"
                           f" ({len(missing)} tensors); pass imatrix= (--imatrix)")

    meta = src.metadata.copy()
    for k in ("split.no", "split.count", "split.tensors.count"):
        meta.pop(k, None)
    from gguf import GGUFValueType as V

    meta.set("general.quantization_version", 2, V.UINT32, move_to_end=True)
    meta.set("general.file_type", ftype, V.UINT32, move_to_end=True)
    if weights_src is not None:
        if weights_src.path is not None:
            meta.set("quantize.imatrix.file", str(weights_src.path)[:127], V.STRING, move_to_end=True)
        if weights_src.datasets:
            meta.set("quantize.imatrix.dataset", weights_src.datasets[0][:127], V.STRING, move_to_end=True)
        meta.set("quantize.imatrix.entries_count", len(weights_src.entries), V.UINT32, move_to_end=True)
        if weights_src.chunk_count > 0:
            meta.set("quantize.imatrix.chunks_count", int(weights_src.chunk_count), V.UINT32, move_to_end=True)

    n_threads = numba.config.NUMBA_NUM_THREADS
    if threads is not None:
        if int(threads) < 1 or int(threads) > n_threads:
            raise ValueError(f"threads must be between 1 and {n_threads} (this machine's cores), got {threads}")
    old_threads = numba.get_num_threads()
    numba.set_num_threads(int(threads) if threads else n_threads)

    reports = [
        TensorReport(c.name, c.shape, c.src_type, c.qtype, c.converts, src.info(c.name).nbytes,
                     tensor_nbytes_of(c.qtype, c.shape), imatrix=c.name in weights, fallback_from=c.fallback_from)
        for c in choices
    ]
    if dry_run:
        numba.set_num_threads(old_threads)
        return QuantizeReport(out_path, recipe_name, reports, time.perf_counter() - t_start, warnings)
    bar = _bar(progress, sum(r.n_elements for r in reports), f"quantizing to {recipe_name}")
    try:
        with GGUFSink(out_path, meta, [(c.name, c.qtype, c.shape) for c in choices], force=force) as sink:
            for c, rep in zip(choices, reports, strict=False):
                t0 = time.perf_counter()
                if bar is not None:
                    bar.set_postfix_str(f"{c.name} -> {c.qtype.name}", refresh=False)
                if not c.converts:
                    sink.write(c.name, src.raw(c.name) if hasattr(src, "raw") else src.tensor(c.name).data)
                else:
                    w = weights.get(c.name) if _is_quantized(c.qtype) else None
                    t = src.tensor(c.name)
                    n = c.shape[-1]
                    if w is not None and w.shape[0] > 1:
                        # one importance vector per expert (llama.cpp's i03 loop): one expert matrix per chunk
                        step = int(np.prod(c.shape[-2:-1], dtype=np.int64))
                    else:
                        step = max(1, _CHUNK_ELEMENTS // n)

                    def chunks(t=t, c=c, w=w, step=step):
                        for r0, x in _float_row_chunks(t, step):
                            imat = None if w is None else w[r0 // step if w.shape[0] > 1 else 0]
                            try:
                                data = quantize_array(x, c.qtype, imat)[0]
                            except QuantizationError as e:
                                raise QuantizationError(f"tensor {c.name}: {e}") from None
                            if bar is not None:
                                bar.update(x.size)
                            yield data

                    sink.write_rows(c.name, chunks())
                    rep.seconds = time.perf_counter() - t0
                    continue
                rep.seconds = time.perf_counter() - t0
                if bar is not None:
                    bar.update(rep.n_elements)
    finally:
        numba.set_num_threads(old_threads)
        if bar is not None:
            bar.close()
    return QuantizeReport(out_path, recipe_name, reports, time.perf_counter() - t_start, warnings)


def tensor_nbytes_of(qtype: GGMLQuantizationType, shape: Sequence[int]) -> int:
    from .gguf_io import tensor_nbytes

    return tensor_nbytes(qtype, shape)


def dequantize_model(in_path: Any, out_path: Any, *, dtype: Any = "F32", force: bool = False,
                     progress: bool | None = None) -> QuantizeReport:
    """Write a copy of a GGUF model with every quantized/float tensor converted to ``dtype`` (F32, F16, BF16).

    Integer tensors (I32, …) are copied unchanged; a type pyquant cannot dequantize is an error.
    ``general.file_type`` becomes the matching llama file type.
    """
    import time

    from gguf import GGUFValueType as V

    from .formats import qtype_of
    from .gguf_io import GGUFFile, GGUFSink, RawTensor

    t_start = time.perf_counter()
    target = qtype_of(dtype)
    if target not in _FLOATS:
        raise RecipeError(f"dequantize writes F32, F16 or BF16, not {target.name}")
    src = GGUFFile(in_path)
    plan = []
    for ti in src.infos:
        t = src.tensor(ti)
        if isinstance(t, RawTensor):
            if ti.qtype in (T.I8, T.I16, T.I32, T.I64, T.F64):
                plan.append((ti, ti.qtype))
                continue
            raise RecipeError(f"{ti.name}: pyquant cannot dequantize {ti.qtype.name} tensors yet")
        plan.append((ti, target))
    meta = src.metadata.copy()
    if "general.file_type" in meta:
        meta.set("general.file_type", int(_FTYPE_OF_TYPE[target]), V.UINT32)
    reports = [TensorReport(ti.name, ti.shape, ti.qtype, qt, ti.qtype != qt, ti.nbytes,
                            tensor_nbytes_of(qt, ti.shape)) for ti, qt in plan]
    bar = _bar(progress, sum(r.n_elements for r in reports), f"dequantizing to {target.name}")
    from .quant import quantize_array

    try:
        with GGUFSink(out_path, meta, [(ti.name, qt, ti.shape) for ti, qt in plan], force=force) as sink:
            for (ti, qt), rep in zip(plan, reports, strict=False):
                t0 = time.perf_counter()
                if qt == ti.qtype:
                    sink.write(ti.name, src.raw(ti))
                else:
                    t = src.tensor(ti)
                    step = max(1, _CHUNK_ELEMENTS // ti.shape[-1])

                    def chunks(t=t, qt=qt, step=step):
                        for _, x in _float_row_chunks(t, step):
                            yield x if qt == T.F32 else quantize_array(x, qt)[0]
                            if bar is not None:
                                bar.update(x.size)

                    sink.write_rows(ti.name, chunks())
                rep.seconds = time.perf_counter() - t0
    finally:
        if bar is not None:
            bar.close()
    return QuantizeReport(out_path, target.name, reports, time.perf_counter() - t_start)


# ==========================================================================================================
# quantization error, per tensor and per type


@dataclass
class ErrorRow:
    """Quantization error of one tensor: sums for aggregation and the usual figures."""

    label: str  # the recipe or file the quantized values come from
    name: str
    qtype: GGMLQuantizationType
    shape: tuple[int, ...]
    n: int
    bytes: int
    sse: float  # sum of squared errors (float64)
    ssx: float  # sum of squared reference values
    max_abs: float

    @property
    def bpw(self) -> float:
        return 8.0 * self.bytes / max(1, self.n)

    @property
    def rmse(self) -> float:
        return float(np.sqrt(self.sse / max(1, self.n)))

    @property
    def snr_db(self) -> float:
        """10·log10(Σx² / Σ(x−q)²); ``inf`` when exact."""
        if self.sse == 0:
            return float("inf")
        if self.ssx == 0:
            return float("-inf")
        return float(10.0 * np.log10(self.ssx / self.sse))

    def as_dict(self) -> dict[str, Any]:
        snr = self.snr_db
        return {"label": self.label, "name": self.name, "type": self.qtype.name, "shape": list(self.shape),
                "n": self.n, "bytes": self.bytes, "bpw": round(self.bpw, 4), "rmse": self.rmse,
                "max_abs_err": self.max_abs, "snr_db": snr if np.isfinite(snr) else None}


def _accumulate(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    d = x.astype(np.float64) - y.astype(np.float64)
    return float(np.dot(d.ravel(), d.ravel())), float(np.dot(x.ravel().astype(np.float64), x.ravel())), (
        float(np.abs(d).max()) if d.size else 0.0)


def measure_errors(model: Any, recipe: str | Recipe | GGMLQuantizationType, *, imatrix: Any = None,
                   threads: int | None = None, arch: str | None = None, pure: bool = False,
                   progress: bool | None = None) -> list[ErrorRow]:
    """Quantize every tensor of a float model in memory as ``recipe`` would, and measure the error.

    ``model``: a path or an open model (:func:`open_model`). Only tensors the recipe converts to a
    quantized type are measured; nothing is written. Memory: one chunk of rows at a time.
    """
    import numba

    from .imatrix import Imatrix, load_imatrix
    from .quant import dequantize, quantize_array

    src = open_model(model, arch) if not hasattr(model, "infos") else model
    info = ModelInfo.from_metadata(src.metadata)
    im = None
    if imatrix is not None:
        im = imatrix if isinstance(imatrix, Imatrix) else (
            Imatrix.from_weights(imatrix) if isinstance(imatrix, Mapping) else load_imatrix(imatrix))
    choices = choose_types([(ti.name, ti.shape, ti.qtype) for ti in src.infos], recipe, info,
                           has_imatrix=im is not None, pure=pure)
    label = recipe.name if isinstance(recipe, (Recipe, GGMLQuantizationType)) else recipe_of(recipe).name
    todo = [c for c in choices if c.converts and _is_quantized(c.qtype)]
    for c in todo:
        if c.src_type not in _FLOATS:
            raise RecipeError(f"{c.name} is {c.src_type.name}, not a float type: measure errors against a float"
                              " model (or compare a quantized file with --reference)")
    weights = im.for_model([(c.name, c.shape) for c in todo]) if im is not None else {}
    old = numba.get_num_threads()
    if threads:
        numba.set_num_threads(int(threads))
    bar = _bar(progress, sum(int(np.prod(c.shape)) for c in todo), f"measuring {label}")
    rows = []
    try:
        for c in todo:
            t = src.tensor(c.name)
            w = weights.get(c.name)
            step = int(np.prod(c.shape[-2:-1])) if (w is not None and w.shape[0] > 1) else max(
                1, _CHUNK_ELEMENTS // c.shape[-1])
            sse = ssx = mx = 0.0
            for r0, x in _float_row_chunks(t, step):
                imat = None if w is None else w[r0 // step if w.shape[0] > 1 else 0]
                q, qt, shp = quantize_array(x, c.qtype, imat)
                y = dequantize(q, qt, shp)
                a, b, m = _accumulate(x, y)
                sse, ssx, mx = sse + a, ssx + b, max(mx, m)
                if bar is not None:
                    bar.update(x.size)
            n = int(np.prod(c.shape))
            rows.append(ErrorRow(label, c.name, c.qtype, c.shape, n, tensor_nbytes_of(c.qtype, c.shape), sse, ssx, mx))
    finally:
        numba.set_num_threads(old)
        if bar is not None:
            bar.close()
    return rows


def compare_models(quantized: Any, reference: Any, *, label: str | None = None, arch: str | None = None,
                   progress: bool | None = None) -> list[ErrorRow]:
    """Error of each quantized tensor of ``quantized`` against the same-named float tensor of ``reference``."""
    from pathlib import Path

    from .gguf_io import RawTensor

    q = open_model(quantized) if not hasattr(quantized, "infos") else quantized
    ref = open_model(reference, arch) if not hasattr(reference, "infos") else reference
    label = label or Path(str(getattr(q, "path", "quantized"))).name
    pairs = []
    for ti in q.infos:
        if ti.qtype in _FLOATS or not _is_quantized(ti.qtype) or ti.name not in ref:
            continue
        rti = ref.info(ti.name)
        if tuple(rti.shape) != tuple(ti.shape):
            raise RecipeError(f"{ti.name}: shape {list(ti.shape)} in the quantized file, {list(rti.shape)} in the reference")
        if rti.qtype not in _FLOATS:
            raise RecipeError(f"{ti.name}: the reference must hold float tensors, it has {rti.qtype.name}")
        pairs.append((ti, rti))
    if not pairs:
        raise RecipeError("no quantized tensor of the file has a same-named tensor in the reference")
    bar = _bar(progress, sum(ti.n_elements for ti, _ in pairs), f"comparing {label}")
    rows = []
    try:
        for ti, rti in pairs:
            qt, rt = q.tensor(ti), ref.tensor(rti)
            if isinstance(qt, RawTensor):
                raise RecipeError(f"{ti.name}: pyquant cannot dequantize {ti.qtype.name} tensors yet")
            step = max(1, _CHUNK_ELEMENTS // ti.shape[-1])
            sse = ssx = mx = 0.0
            for (_, y), (_, x) in zip(_float_row_chunks(qt, step), _float_row_chunks(rt, step), strict=True):
                a, b, m = _accumulate(x, y)
                sse, ssx, mx = sse + a, ssx + b, max(mx, m)
                if bar is not None:
                    bar.update(x.size)
            rows.append(ErrorRow(label, ti.name, ti.qtype, ti.shape, ti.n_elements, ti.nbytes, sse, ssx, mx))
    finally:
        if bar is not None:
            bar.close()
    return rows


def summarize_errors(rows: Sequence[ErrorRow]) -> list[ErrorRow]:
    """Rows aggregated per (label, type), plus one ``*`` row per label over all its tensors."""
    groups: dict[tuple[str, Any], list[ErrorRow]] = {}
    for r in rows:
        groups.setdefault((r.label, r.qtype), []).append(r)
        groups.setdefault((r.label, None), []).append(r)
    out = []
    for (label, qt), rs in groups.items():
        agg = ErrorRow(label, f"{len(rs)} tensors", qt if qt is not None else rs[0].qtype, (),
                       sum(r.n for r in rs), sum(r.bytes for r in rs), sum(r.sse for r in rs),
                       sum(r.ssx for r in rs), max(r.max_abs for r in rs))
        if qt is None:
            agg.name = f"all {len(rs)} tensors"
        out.append(agg)
    return out


def _bar(progress: bool | None, total: int, desc: str) -> Any:
    if progress is None:
        import sys

        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="w", unit_scale=True, desc=desc, leave=False)
