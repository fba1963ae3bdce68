"""llama-quantize's per-tensor type choice ("recipes" such as Q4_K_M), ported from llama.cpp.

Follows ``src/llama-quant.cpp`` of llama.cpp at commit 007dbbf3fd17eefe9b47fee45f48f7ba5e62b714 (MIT):
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
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

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


def recipe_of(name: Union[str, Recipe]) -> Recipe:
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
        if self.n_layer != 80:
            return False
        if self.arch == "llama":
            return self.n_head != self.n_head_kv  # 80 layers without GQA is LLaMA-1 65B
        return self.arch in ("qwen2", "deci")

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], arch: Optional[str] = None) -> ModelInfo:
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
    fallback_from: Optional[GGMLQuantizationType] = None  # the k-quant it could not take (row length)
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
                   output_type: Optional[GGMLQuantizationType], token_embd_type: Optional[GGMLQuantizationType]
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
    recipe: Union[str, Recipe, GGMLQuantizationType],
    info: Optional[ModelInfo] = None,
    *,
    has_imatrix: bool = False,
    pure: bool = False,
    quantize_output: bool = True,
    output_type: Optional[GGMLQuantizationType] = None,
    token_embd_type: Optional[GGMLQuantizationType] = None,
    overrides: Optional[Sequence[tuple[str, GGMLQuantizationType]]] = None,
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
