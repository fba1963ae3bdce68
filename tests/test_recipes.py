"""llama-quantize's per-tensor rules, whole-model quantization against ggml, imatrix files, and the Gemma round trip."""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V

import pyquant
from pyquant import oracle
from pyquant.gguf_io import GGUFError, GGUFFile, Metadata, save_gguf
from pyquant.imatrix import Imatrix, ImatrixEntry, ImatrixError, load_imatrix, save_imatrix
from pyquant.quant import QuantizationError
from pyquant.recipes import (
    RECIPES,
    ModelInfo,
    RecipeError,
    choose_types,
    dequantize_model,
    llama_order,
    quantize_model,
    recipe_of,
)

# ---------------------------------------------------------------------------------------------------------
# synthetic models (names and shapes as llama.cpp's converters write them; numpy order: (rows, row length))


def llama_like(n_layer=32, n_embd=4096, n_ff=11008, n_vocab=32000, tied=False, n_head=32, n_kv=32, qkv=False,
               n_expert=0, src=T.F16):
    t = [("token_embd.weight", (n_vocab, n_embd), src), ("output_norm.weight", (n_embd,), T.F32)]
    if not tied:
        t.append(("output.weight", (n_vocab, n_embd), src))
    hd = n_embd // n_head
    for i in range(n_layer):
        b = f"blk.{i}."
        t.append((b + "attn_norm.weight", (n_embd,), T.F32))
        t.append((b + "ffn_norm.weight", (n_embd,), T.F32))
        if qkv:
            t.append((b + "attn_qkv.weight", (n_embd + 2 * n_kv * hd, n_embd), src))
        else:
            t += [(b + "attn_q.weight", (n_embd, n_embd), src), (b + "attn_k.weight", (n_kv * hd, n_embd), src),
                  (b + "attn_v.weight", (n_kv * hd, n_embd), src)]
        t.append((b + "attn_output.weight", (n_embd, n_embd), src))
        if n_expert:
            t += [(b + "ffn_gate_inp.weight", (n_expert, n_embd), T.F32),
                  (b + "ffn_gate_exps.weight", (n_expert, n_ff, n_embd), src),
                  (b + "ffn_up_exps.weight", (n_expert, n_ff, n_embd), src),
                  (b + "ffn_down_exps.weight", (n_expert, n_embd, n_ff), src)]
        else:
            t += [(b + "ffn_gate.weight", (n_ff, n_embd), src), (b + "ffn_up.weight", (n_ff, n_embd), src),
                  (b + "ffn_down.weight", (n_embd, n_ff), src)]
    return t


def types_of(choices) -> dict[str, T]:
    return {c.name: c.qtype for c in choices}


def umb(i, n):  # llama.cpp's use_more_bits, restated
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


# ---------------------------------------------------------------------------------------------------------
# the rules


def test_gemma_file_types_are_reproduced(gemma_header):
    """Every tensor of the real Gemma 3 Q4_K_M file gets the type llama-quantize gave it, in its order."""
    f = gemma_header
    ch = choose_types([(ti.name, ti.shape, T.F32) for ti in f.infos], "Q4_K_M", ModelInfo.from_metadata(f.metadata))
    assert [c.name for c in ch] == [ti.name for ti in f.infos]
    assert {c.name: c.qtype for c in ch} == {ti.name: ti.qtype for ti in f.infos}
    fb = Counter((c.fallback_from, c.qtype) for c in ch if c.fallback_from)
    # n_embd 640 is not a multiple of 256: Q4_K -> Q5_0 and Q6_K -> Q8_0 (token_embd: Q8_0 by the output rule)
    assert fb == {(T.Q4_K, T.Q5_0): 81, (T.Q6_K, T.Q8_0): 9}


@pytest.fixture(scope="module")
def gemma_header():
    from pyquant.data import MissingModelError, gemma_path

    try:
        return GGUFFile(gemma_path())
    except MissingModelError as e:
        pytest.skip(str(e))


N = 32
MORE = {i for i in range(N) if umb(i, N)}


@pytest.mark.parametrize(
    "recipe, base, attn_v, ffn_down, attn_output, output",
    [
        # attn_v / ffn_down / attn_output as functions of the layer index, for a 32-layer model without GQA
        ("Q2_K", T.Q2_K, lambda i: T.Q3_K, lambda i: T.Q3_K, T.Q3_K, T.Q6_K),
        ("Q3_K_S", T.Q3_K, lambda i: T.Q3_K, lambda i: T.Q3_K, T.Q3_K, T.Q6_K),
        ("Q3_K_M", T.Q3_K, lambda i: T.Q5_K if i < 2 else T.Q4_K, lambda i: T.Q5_K if i < N // 16 else T.Q4_K,
         T.Q4_K, T.Q6_K),
        ("Q3_K_L", T.Q3_K, lambda i: T.Q5_K, lambda i: T.Q5_K, T.Q5_K, T.Q6_K),
        ("Q4_K_S", T.Q4_K, lambda i: T.Q5_K if i < 4 else T.Q4_K, lambda i: T.Q5_K if i < N // 8 else T.Q4_K,
         T.Q4_K, T.Q6_K),
        ("Q4_K_M", T.Q4_K, lambda i: T.Q6_K if i in MORE else T.Q4_K, lambda i: T.Q6_K if i in MORE else T.Q4_K,
         T.Q4_K, T.Q6_K),
        ("Q5_K_S", T.Q5_K, lambda i: T.Q5_K, lambda i: T.Q5_K, T.Q5_K, T.Q6_K),
        ("Q5_K_M", T.Q5_K, lambda i: T.Q6_K if i in MORE else T.Q5_K, lambda i: T.Q6_K if i in MORE else T.Q5_K,
         T.Q5_K, T.Q6_K),
        ("Q6_K", T.Q6_K, lambda i: T.Q6_K, lambda i: T.Q6_K, T.Q6_K, T.Q6_K),
        ("Q8_0", T.Q8_0, lambda i: T.Q8_0, lambda i: T.Q8_0, T.Q8_0, T.Q8_0),
        ("Q4_0", T.Q4_0, lambda i: T.Q4_0, lambda i: T.Q4_0, T.Q4_0, T.Q6_K),
        ("Q4_1", T.Q4_1, lambda i: T.Q4_1, lambda i: T.Q4_1, T.Q4_1, T.Q6_K),
        ("Q5_0", T.Q5_0, lambda i: T.Q5_0, lambda i: T.Q5_0, T.Q5_0, T.Q6_K),
        ("Q5_1", T.Q5_1, lambda i: T.Q5_1, lambda i: T.Q5_1, T.Q5_1, T.Q6_K),
    ],
)
def test_recipe_rules_llama_7b(recipe, base, attn_v, ffn_down, attn_output, output):
    model = llama_like(n_layer=N)
    got = types_of(choose_types(model, recipe, ModelInfo("llama", N, 32, 32)))
    assert got["output.weight"] == output
    assert got["token_embd.weight"] == base  # an untied token_embd takes the base type
    for i in range(N):
        b = f"blk.{i}."
        assert got[b + "attn_v.weight"] == attn_v(i), (recipe, i)
        assert got[b + "ffn_down.weight"] == ffn_down(i), (recipe, i)
        assert got[b + "attn_output.weight"] == attn_output, (recipe, i)
        for n in ("attn_q", "attn_k", "ffn_gate", "ffn_up"):
            assert got[b + n + ".weight"] == base, (recipe, n, i)
        assert got[b + "attn_norm.weight"] == T.F32
    assert sum(1 for t in got.values() if t == T.F32) == 2 * N + 1


def test_gqa_70b_and_experts():
    # Q2_K: attn_v gets Q4_K when n_gqa >= 4 (llama 3 8B: 32 heads, 8 kv heads)
    got = types_of(choose_types(llama_like(n_kv=8), "Q2_K", ModelInfo("llama", 32, 32, 8)))
    assert {got[f"blk.{i}.attn_v.weight"] for i in range(32)} == {T.Q4_K}
    # 70B (80 layers, GQA): attn_v that would be Q4_K becomes Q5_K; 65B (no GQA) does not
    model = llama_like(n_layer=80, n_embd=8192, n_ff=28672, n_head=64, n_kv=8)
    got = types_of(choose_types(model, "Q4_K_M", ModelInfo("llama", 80, 64, 8)))
    assert {got[f"blk.{i}.attn_v.weight"] for i in range(80)} == {T.Q5_K, T.Q6_K}
    assert got["blk.11.attn_v.weight"] == T.Q5_K and got["blk.0.attn_v.weight"] == T.Q6_K
    got65 = types_of(choose_types(llama_like(n_layer=80, n_embd=8192), "Q4_K_M", ModelInfo("llama", 80, 64, 64)))
    assert got65["blk.11.attn_v.weight"] == T.Q4_K
    assert ModelInfo("qwen2", 80, 64, 8).is_70b and not ModelInfo("qwen3", 80, 64, 8).is_70b
    # 8 experts (Mixtral): attn_v and attn_k Q8_0, attn_output Q5_K; ffn_down layer taken from the name
    model = llama_like(n_layer=4, n_ff=14336, n_kv=8, n_expert=8)
    got = types_of(choose_types(model, "Q4_K_M", ModelInfo("llama", 4, 32, 8, 8)))
    for i in range(4):
        assert got[f"blk.{i}.attn_v.weight"] == T.Q8_0 and got[f"blk.{i}.attn_k.weight"] == T.Q8_0
        assert got[f"blk.{i}.attn_output.weight"] == T.Q5_K
        assert got[f"blk.{i}.ffn_down_exps.weight"] == (T.Q6_K if umb(i, 4) else T.Q4_K)
        assert got[f"blk.{i}.ffn_gate_inp.weight"] == T.F32  # router stays float
    with pytest.raises(RecipeError, match="bad layer 4"):
        choose_types(model + [("blk.4.ffn_down_exps.weight", (8, 4096, 14336), T.F16)], "Q4_K_M",
                     ModelInfo("llama", 4, 32, 8, 8))


def test_falcon_and_tied_embeddings_and_qkv():
    model = llama_like(n_layer=16)
    got = types_of(choose_types(model, "Q4_K_M", ModelInfo("falcon", 16, 32, 32)))
    assert got["output.weight"] == T.Q8_0
    for i in range(16):
        want = T.Q6_K if i < 1 else T.Q5_K if umb(i, 16) else T.Q4_K
        assert got[f"blk.{i}.ffn_down.weight"] == want, i
    # tied embeddings (no output.weight): token_embd takes the output rule
    got = types_of(choose_types(llama_like(n_layer=4, tied=True), "Q4_0", ModelInfo("llama", 4, 32, 32)))
    assert got["token_embd.weight"] == T.Q6_K
    got = types_of(choose_types(llama_like(n_layer=4, tied=True), "Q8_0", ModelInfo("llama", 4, 32, 32)))
    assert got["token_embd.weight"] == T.Q8_0
    # fused attn_qkv (phi3) takes the attn_v rules at this llama.cpp commit
    got = types_of(choose_types(llama_like(n_layer=32, n_embd=3072, n_ff=8192, qkv=True), "Q4_K_M",
                                ModelInfo("phi3", 32, 32, 32)))
    assert [got[f"blk.{i}.attn_qkv.weight"] for i in range(32)] == [T.Q6_K if umb(i, 32) else T.Q4_K for i in range(32)]


def test_row_length_fallbacks():
    info = ModelInfo("gemma3", 4, 4, 1)
    fb = {"Q2_K": T.Q4_0, "Q3_K_S": T.Q4_0, "Q4_K_S": T.Q5_0, "Q5_K_S": T.Q5_1, "Q6_K": T.Q8_0}
    for recipe, want in fb.items():
        got = choose_types(llama_like(n_layer=4, n_embd=640, n_ff=2048, tied=True, n_head=4, n_kv=1), recipe, info)
        c = {x.name: x for x in got}
        assert c["blk.0.attn_q.weight"].qtype == want and c["blk.0.attn_q.weight"].fallback_from == RECIPES[recipe].default
        assert c["token_embd.weight"].qtype == T.Q8_0  # the output rule: Q8_0 when 640 % 256
    # a row length that is not even a multiple of 32: F16
    got = types_of(choose_types([("blk.0.ffn_up.weight", (64, 100), T.F32)], "Q4_K_M", ModelInfo("llama", 1)))
    assert got["blk.0.ffn_up.weight"] == T.F16
    with pytest.raises(RecipeError, match="no fallback type for Q8_0"):
        choose_types([("blk.0.ffn_up.weight", (64, 100), T.F32)], "Q8_0", ModelInfo("llama", 1))


def test_what_is_never_quantized():
    model = [("token_embd.weight", (30522, 384), T.F32), ("position_embd.weight", (512, 384), T.F32),
             ("token_types.weight", (2, 384), T.F32), ("token_embd_norm.weight", (384,), T.F32),
             ("blk.0.attn_q.bias", (384,), T.F32), ("blk.0.attn_output_norm.weight", (384,), T.F32),
             ("blk.0.attn_q.weight", (384, 384), T.F32), ("blk.0.ffn_gate_inp.weight", (8, 384), T.F32),
             ("blk.0.ffn_up.weight", (1, 384), T.F32), ("blk.0.ssm_conv1d.weight", (4, 384), T.F32)]
    got = types_of(choose_types(model, "Q8_0", ModelInfo("bert", 1, 12, 12)))
    assert got.pop("token_embd.weight") == T.Q8_0 and got.pop("blk.0.attn_q.weight") == T.Q8_0
    assert set(got.values()) == {T.F32}  # 1-D, norms, biases, routers, (1, n) "2-D" tensors, BERT embeddings
    got = types_of(choose_types(llama_like(n_layer=2), "Q4_K_M", ModelInfo("llama", 2, 32, 32), quantize_output=False))
    assert got["output.weight"] == T.F16


def test_llama_order_is_layer_then_name():
    names = ["blk.10.ffn_up.weight", "output.weight", "blk.2.attn_q.weight", "blk.2.attn_k.weight",
             "token_embd.weight", "blk.1.x", "output_norm.weight"]
    assert llama_order(names) == ["output.weight", "output_norm.weight", "token_embd.weight", "blk.1.x",
                                  "blk.2.attn_k.weight", "blk.2.attn_q.weight", "blk.10.ffn_up.weight"]


def test_imatrix_changes_rules_and_overrides_pure():
    model = llama_like(n_layer=16)
    info = ModelInfo("llama", 16, 32, 32)
    got = types_of(choose_types(model, "Q4_0", info, has_imatrix=True))
    assert [got[f"blk.{i}.ffn_down.weight"] for i in range(4)] == [T.Q4_1, T.Q4_1, T.Q4_0, T.Q4_0]
    got = types_of(choose_types(model, "Q4_K_M", info, pure=True))
    assert {got[n] for n, s, _ in model if len(s) == 2} == {T.Q4_K}
    got = types_of(choose_types(model, T.Q5_0, info))
    assert {got[n] for n, s, _ in model if len(s) == 2} == {T.Q5_0}
    got = types_of(choose_types(model, "Q4_K_M", info, overrides=[(r"attn_q", T.Q8_0)], output_type=T.Q5_K,
                                token_embd_type=T.Q4_0))
    assert got["blk.3.attn_q.weight"] == T.Q8_0 and got["output.weight"] == T.Q5_K
    assert got["token_embd.weight"] == T.Q4_0
    ch = {c.name: c for c in choose_types(model, "Q2_K_S", info)}
    assert ch["blk.0.attn_q.weight"].requires_imatrix and not ch["output.weight"].requires_imatrix


def test_recipe_names():
    assert recipe_of("q4_k").name == "Q4_K_M" and recipe_of(" Q5_K ").name == "Q5_K_M"
    assert recipe_of("Q8_0").ftype == 7 and recipe_of("Q4_K_M").ftype == 15
    with pytest.raises(RecipeError, match="unknown recipe or type 'Q4_K_X'.*Q4_K_M"):
        recipe_of("Q4_K_X")
    with pytest.raises(RecipeError):
        recipe_of("IQ2_XXS")  # no kernels: not offered


# ---------------------------------------------------------------------------------------------------------
# whole-model quantization against ggml


def _write_model(path: Path, spec, arch="llama", n_layer=None, seed=0, extra_meta=None) -> dict[str, np.ndarray]:
    """A GGUF whose tensors are random float values in the given source types; returns the float32 values."""
    rng = np.random.default_rng(seed)
    m = Metadata()
    m.set("general.architecture", arch, V.STRING)
    m.set(f"{arch}.block_count", n_layer if n_layer is not None else 1 + max(
        [int(n.split(".")[1]) for n, _, _ in spec if n.startswith("blk.")] or [-1]), V.UINT32)
    m.set(f"{arch}.attention.head_count", 4, V.UINT32)
    m.set(f"{arch}.attention.head_count_kv", 4, V.UINT32)
    for k, v in (extra_meta or {}).items():
        m.set(k, v)
    tensors, values = {}, {}
    for name, shape, t in spec:
        x = (rng.standard_normal(shape) * rng.uniform(0.01, 2)).astype(np.float32)
        q = pyquant.quantize(x, t)
        tensors[name] = q
        values[name] = q.dequantize()
    save_gguf(path, tensors, m)
    return values


def _check_against_ggml(out: Path, values: dict[str, np.ndarray], weights=None) -> Counter:
    f = GGUFFile(out)
    seen = Counter()
    for ti in f.infos:
        x = values[ti.name].reshape(-1, ti.shape[-1])
        if ti.qtype in (T.F32, T.F16, T.BF16):
            want = pyquant.quantize(x, ti.qtype).data.reshape(-1)
        else:
            w = None if weights is None else weights.get(ti.name)
            if w is not None and w.ndim == 2 and w.shape[0] > 1:  # per expert
                rows = x.reshape(w.shape[0], -1, x.shape[-1])
                want = np.concatenate([oracle.quantize(rows[e], ti.qtype, w[e]).reshape(-1) for e in range(w.shape[0])])
            else:
                want = oracle.quantize(x, ti.qtype, None if w is None else w.reshape(-1)).reshape(-1)
        assert np.array_equal(f.raw(ti), want), ti.name
        seen[ti.qtype] += 1
    return seen


@pytest.mark.parametrize("recipe", ["Q4_K_M", "Q3_K_M", "Q2_K", "Q5_K_S", "Q6_K", "Q8_0", "Q4_0", "Q5_1"])
def test_quantize_model_equals_ggml_per_tensor(tmp_path, recipe):
    spec = llama_like(n_layer=3, n_embd=256, n_ff=512, n_vocab=96, n_head=4, n_kv=4, src=T.F16)
    values = _write_model(tmp_path / "in.gguf", spec)
    rep = quantize_model(tmp_path / "in.gguf", tmp_path / "out.gguf", recipe, threads=1, progress=False)
    seen = _check_against_ggml(tmp_path / "out.gguf", values)
    assert sum(seen.values()) == len(spec) and seen[T.F32] == 2 * 3 + 1
    f = GGUFFile(tmp_path / "out.gguf")
    assert [ti.name for ti in f.infos] == llama_order(n for n, _, _ in spec)
    assert list(f.metadata)[-2:] == ["general.quantization_version", "general.file_type"]
    assert f.metadata["general.file_type"] == RECIPES[recipe].ftype and f.metadata["general.quantization_version"] == 2
    assert rep.out_bytes == sum(ti.nbytes for ti in f.infos)


def test_quantize_model_with_imatrix_files_equals_ggml(tmp_path):
    spec = llama_like(n_layer=2, n_embd=256, n_ff=512, n_vocab=64, n_head=4, n_kv=4, src=T.BF16)
    values = _write_model(tmp_path / "in.gguf", spec)
    rng = np.random.default_rng(5)
    w = {n: rng.uniform(0, 3, s[-1]).astype(np.float32) for n, s, _ in spec if n.startswith("blk.") and len(s) == 2}
    im = Imatrix.from_weights(w, count=1)
    for fmt in ("gguf", "dat"):
        p = save_imatrix(tmp_path / f"im.{fmt}", im, legacy=fmt == "dat")
        out = tmp_path / f"out-{fmt}.gguf"
        rep = quantize_model(tmp_path / "in.gguf", out, "Q4_K_M", imatrix=p, progress=False)
        assert sum(t.imatrix for t in rep.tensors) == len(w)
        _check_against_ggml(out, values, {n: v for n, v in w.items()})
        meta = GGUFFile(out).metadata
        assert meta["quantize.imatrix.file"] == str(p) and meta["quantize.imatrix.entries_count"] == len(w)


def test_quantize_model_experts_take_one_imatrix_vector_each(tmp_path):
    spec = [("blk.0.ffn_down_exps.weight", (4, 64, 256), T.F32), ("blk.0.ffn_up_exps.weight", (4, 256, 64), T.F32),
            ("blk.0.attn_v.weight", (64, 64), T.F32)]
    values = _write_model(tmp_path / "in.gguf", spec, extra_meta={"llama.expert_count": 4})
    rng = np.random.default_rng(9)
    w = {"blk.0.ffn_down_exps.weight": rng.uniform(0, 2, (4, 256)).astype(np.float32),
         "blk.0.ffn_up_exps.weight": rng.uniform(0, 2, (4, 64)).astype(np.float32)}
    quantize_model(tmp_path / "in.gguf", tmp_path / "o.gguf", "Q5_0", imatrix=w, progress=False)
    _check_against_ggml(tmp_path / "o.gguf", values, w)


def test_minilm_safetensors_to_q8_0_equals_ggml(tmp_path):
    from safetensors.numpy import load_file

    from pyquant.data import MissingModelError, minilm_path

    try:
        p = minilm_path()
    except MissingModelError as e:
        pytest.skip(str(e))
    rep = quantize_model(p, tmp_path / "m.gguf", "Q8_0", arch="bert", progress=False)
    f = GGUFFile(tmp_path / "m.gguf")
    assert len(f) == 101 and f.metadata["general.architecture"] == "bert" and f.metadata["bert.block_count"] == 6
    hf = load_file(str(p))
    names = {"token_embd.weight": "embeddings.word_embeddings.weight",
             "position_embd.weight": "embeddings.position_embeddings.weight",
             "blk.3.ffn_down.weight": "encoder.layer.3.output.dense.weight",
             "blk.5.attn_v.bias": "encoder.layer.5.attention.self.value.bias"}
    for g, h in names.items():
        ti = f.info(g)
        x = hf[h].reshape(-1, hf[h].shape[-1])
        want = oracle.quantize(x, ti.qtype) if ti.qtype == T.Q8_0 else x.view(np.uint8)
        assert np.array_equal(f.raw(ti), want.reshape(-1)), g
    types = Counter(t.qtype for t in rep.tensors)
    assert types == {T.Q8_0: 37, T.F32: 64}  # 36 matrices + token_embd; biases, norms, position/type embeddings


def test_dry_run_refusals_and_interrupts(tmp_path, monkeypatch):
    spec = llama_like(n_layer=2, n_embd=256, n_ff=256, n_vocab=32, n_head=4, n_kv=4, src=T.F32)
    _write_model(tmp_path / "in.gguf", spec)
    rep = quantize_model(tmp_path / "in.gguf", tmp_path / "dry.gguf", "Q4_K_M", dry_run=True)
    assert not (tmp_path / "dry.gguf").exists() and len(rep.tensors) == len(spec)
    (tmp_path / "exists.gguf").write_bytes(b"x")
    with pytest.raises(GGUFError, match="exists"):
        quantize_model(tmp_path / "in.gguf", tmp_path / "exists.gguf", "Q4_K_M", progress=False)
    with pytest.raises(RecipeError, match="unknown recipe"):
        quantize_model(tmp_path / "in.gguf", tmp_path / "o.gguf", "Q9_K", progress=False)
    with pytest.raises(ValueError, match="threads must be between 1 and"):
        quantize_model(tmp_path / "in.gguf", tmp_path / "o.gguf", "Q8_0", threads=10**4, progress=False)
    with pytest.raises(ImatrixError, match="needs an importance matrix"):
        quantize_model(tmp_path / "in.gguf", tmp_path / "o.gguf", "Q2_K_S", progress=False)
    # already quantized input: refused unless allowed
    quantize_model(tmp_path / "in.gguf", tmp_path / "q.gguf", "Q8_0", progress=False)
    with pytest.raises(RecipeError, match="already Q8_0.*allow_requantize"):
        quantize_model(tmp_path / "q.gguf", tmp_path / "o.gguf", "Q4_0", progress=False)
    quantize_model(tmp_path / "q.gguf", tmp_path / "o.gguf", "Q4_0", allow_requantize=True, progress=False)
    # Ctrl-C in the middle: no output, no temporary file
    import pyquant.quant as pq

    real, calls = pq.quantize_array, {"n": 0}

    def interrupt(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(pq, "quantize_array", interrupt)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(KeyboardInterrupt):
        quantize_model(tmp_path / "in.gguf", tmp_path / "ctrl-c.gguf", "Q4_K_M", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_non_finite_weights_name_the_tensor(tmp_path):
    m = Metadata()
    m.set("general.architecture", "llama", V.STRING)
    x = np.ones((4, 64), np.float32)
    x[2, 5] = np.nan
    save_gguf(tmp_path / "nan.gguf", {"blk.0.attn_q.weight": x}, m)
    with pytest.raises(QuantizationError, match="blk.0.attn_q.weight.*non-finite"):
        quantize_model(tmp_path / "nan.gguf", tmp_path / "o.gguf", "Q8_0", progress=False)
    assert not (tmp_path / "o.gguf").exists()


# ---------------------------------------------------------------------------------------------------------
# imatrix files


def test_imatrix_formats_and_weights(tmp_path):
    sums = np.array([[4.0, 8.0, 0.0], [1.0, 1.0, 1.0]], np.float32)
    e = ImatrixEntry("blk.0.ffn_down_exps.weight", sums, np.array([4, 0]))
    # per matrix: sums / count, and 1 where the count is 0 (llama-quantize's load_imatrix)
    assert e.weights().tolist() == [[1.0, 2.0, 0.0], [1.0, 1.0, 1.0]]
    im = Imatrix({e.name: e, "blk.0.attn_q.weight": ImatrixEntry("blk.0.attn_q.weight", np.array([[3.0, 6.0]], np.float32),
                                                                 np.array([3]))}, ["data.txt"], 12, 512)
    p = save_imatrix(tmp_path / "i.gguf", im)
    got = load_imatrix(p)
    assert not got.is_legacy and got.datasets == ["data.txt"] and got.chunk_count == 12 and got.chunk_size == 512
    assert np.array_equal(got.entries[e.name].sums, sums) and got.entries[e.name].counts.tolist() == [4, 0]
    f = GGUFFile(p)  # llama-imatrix's layout: in_sum2 ne = [n, n_mat], counts ne = [1, n_mat]
    assert f.info(e.name + ".in_sum2").shape == (2, 3) and f.info(e.name + ".counts").shape == (2, 1)
    assert f.metadata["general.type"] == "imatrix"
    # legacy .dat written by hand in llama-imatrix's layout: weights are values / ncall
    name = b"blk.0.attn_k.weight"
    vals = np.array([2.0, 4.0, 6.0, 8.0], np.float32)
    raw = struct.pack("<i", 1) + struct.pack("<i", len(name)) + name + struct.pack("<ii", 2, 4) + vals.tobytes()
    raw += struct.pack("<i", 7) + struct.pack("<i", 5) + b"wiki!"
    (tmp_path / "i.dat").write_bytes(raw)
    got = load_imatrix(tmp_path / "i.dat")
    assert got.is_legacy and got.chunk_count == 7 and got.datasets == ["wiki!"]
    assert got.weights("blk.0.attn_k.weight").tolist() == [1.0, 2.0, 3.0, 4.0]
    (tmp_path / "i0.dat").write_bytes(raw.replace(struct.pack("<ii", 2, 4), struct.pack("<ii", 0, 4)))
    assert load_imatrix(tmp_path / "i0.dat").weights("blk.0.attn_k.weight").tolist() == vals.tolist()
    # our legacy writer round-trips through the reader
    save_imatrix(tmp_path / "back.dat", got, legacy=True)
    assert (tmp_path / "back.dat").read_bytes() == raw


def test_imatrix_for_another_model(tmp_path):
    spec = llama_like(n_layer=2, n_embd=256, n_ff=256, n_vocab=32, n_head=4, n_kv=4, src=T.F32)
    _write_model(tmp_path / "in.gguf", spec)
    other = Imatrix.from_weights({"blk.0.ffn_up.weight.nothere": np.ones(256, np.float32), "model.x": np.ones(8)})
    with pytest.raises(ImatrixError, match="no entry for any tensor.*another model"):
        quantize_model(tmp_path / "in.gguf", tmp_path / "o.gguf", "Q4_K_M", imatrix=other, progress=False)
    wrong = Imatrix.from_weights({"blk.0.ffn_down.weight": np.ones(1024, np.float32)})
    with pytest.raises(ImatrixError, match="'blk.0.ffn_down.weight'.* has 1024 values.*rows of 256"):
        quantize_model(tmp_path / "in.gguf", tmp_path / "o.gguf", "Q4_K_M", imatrix=wrong, progress=False)
    # llama-quantize ignores a wrong-sized token_embd entry (with a warning), as long as the rest fits
    ok = Imatrix.from_weights({"token_embd.weight": np.ones(7, np.float32), "blk.1.attn_q.weight": np.ones(256)})
    rep = quantize_model(tmp_path / "in.gguf", tmp_path / "o.gguf", "Q4_K_M", imatrix=ok, progress=False)
    assert any("token embeddings" in w for w in rep.warnings) and any("no imatrix data" in w for w in rep.warnings)
    bad = Imatrix.from_weights({"blk.0.attn_q.weight": np.full(256, np.inf, np.float32)})
    with pytest.raises(ImatrixError, match="non-finite"):
        quantize_model(tmp_path / "in.gguf", tmp_path / "o2.gguf", "Q4_K_M", imatrix=bad, progress=False)
    assert not (tmp_path / "o2.gguf").exists()
    for junk, msg in [(b"", "too short"), (b"\x05\x00\x00\x00abc", "not an imatrix"), (b"GGUF\x03", "not a readable")]:
        (tmp_path / "junk").write_bytes(junk)
        with pytest.raises(ImatrixError, match=msg):
            load_imatrix(tmp_path / "junk")
    with pytest.raises(ImatrixError, match="model file"):
        load_imatrix(tmp_path / "in.gguf")  # a model, not an imatrix


# ---------------------------------------------------------------------------------------------------------
# the real Gemma file: dequantize, re-quantize with Q4_K_M, compare with the original


@pytest.mark.slow  # ~1 GB of F32 through dequantize + quantize + ggml: over a minute on 2 busy cores
def test_gemma_dequantize_requantize_q4_k_m(tmp_path, gemma_header):
    orig = gemma_header
    f32 = tmp_path / "gemma-f32.gguf"
    dequantize_model(orig.path, f32, progress=False)
    rep = quantize_model(f32, tmp_path / "gemma-q4_k_m.gguf", "Q4_K_M", progress=False)
    new = GGUFFile(tmp_path / "gemma-q4_k_m.gguf")
    # same tensors, order, types and metadata (keys, order, types, values) as the file llama-quantize wrote
    assert [(t.name, t.qtype, t.shape) for t in new.infos] == [(t.name, t.qtype, t.shape) for t in orig.infos]
    assert list(new.metadata) == list(orig.metadata) and new.metadata.types == orig.metadata.types
    assert new.data_offset == orig.data_offset
    identical = Counter()
    src = GGUFFile(f32)
    for ti in orig.infos:
        a, b = orig.raw(ti), new.raw(new.info(ti.name))
        if np.array_equal(a, b):
            identical[ti.qtype] += 1
            continue
        # not byte-identical: ggml itself, given the same dequantized values, writes exactly our bytes, so the
        # difference is that ggml's Q4_K/Q6_K searches are not idempotent (see below), not a pyquant deviation
        x = src.raw(src.info(ti.name)).view(np.float32).reshape(-1, ti.shape[-1])
        assert np.array_equal(oracle.quantize(x, ti.qtype).reshape(-1), b), ti.name
        assert ti.qtype in (T.Q4_K, T.Q6_K), ti.name
    # F32 (109), Q8_0 (10) and Q5_0 (81) tensors come back byte for byte: their scale is max|x| / const, which the
    # dequantized block reproduces. Q4_K (5 of 27 identical; 72 of 92160 blocks differ) and Q6_K (0 of 9;
    # 6598 of 46080 blocks differ) search scales (make_qkx2_quants, make_qx_quants) and may settle on a
    # different scale for values that the original block represents exactly.
    assert identical == {T.F32: 109, T.Q8_0: 10, T.Q5_0: 81, T.Q4_K: 5}
    assert rep.out_bytes == sum(ti.nbytes for ti in orig.infos)
    # and the whole file is the one llama-quantize (llama.cpp 0c1e5709) writes from the same F32 file
    assert _sha16(tmp_path / "gemma-q4_k_m.gguf") == "1c491889a072f6b0"


def test_memory_is_bounded_by_a_chunk_not_the_tensor(tmp_path):
    """A 64 MiB tensor is read, quantized and written a chunk of rows at a time (inputs stay memory-mapped)."""
    import tracemalloc

    m = Metadata()
    m.set("general.architecture", "llama", V.STRING)
    m.set("llama.block_count", 1, V.UINT32)
    x = np.random.default_rng(3).standard_normal((4096, 4096)).astype(np.float32)
    save_gguf(tmp_path / "big.gguf", {"blk.0.ffn_up.weight": x}, m)
    del x
    quantize_model(tmp_path / "big.gguf", tmp_path / "warm.gguf", "Q8_0", progress=False)  # compile outside the trace
    tracemalloc.start()
    quantize_model(tmp_path / "big.gguf", tmp_path / "q.gguf", "Q8_0", progress=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # one 16 MiB float32 chunk and its 4.25 MiB of Q8_0 bytes, not 64 MiB of input and 17 MiB of output
    assert peak < 28 * 2**20, peak / 2**20
    assert GGUFFile(tmp_path / "q.gguf").info("blk.0.ffn_up.weight").nbytes == 4096 * 4096 // 32 * 34


# ---------------------------------------------------------------------------------------------------------
# tiny models of each architecture, for llama-quantize itself as the whole-file oracle


def tiny_model(arch: str, n_layer: int = 8) -> tuple[Metadata, list[tuple[str, tuple[int, ...], T]]]:
    """Metadata and (name, numpy shape, type) of a small model laid out as llama.cpp's converter writes ``arch``.

    2-D weights are F16, 1-D tensors (norms, biases) and BERT's position/token-type embeddings F32.
    """
    cfg = {  # n_embd, n_ff, n_head, n_kv, tied, extras
        "llama": (256, 512, 8, 2, False, ()), "qwen2": (256, 512, 4, 4, True, ("qkv_bias",)),
        "qwen3": (256, 512, 4, 2, False, ("qk_norm",)), "gemma": (256, 512, 4, 1, True, ()),
        "gemma2": (256, 512, 4, 2, True, ("post_norms",)), "gemma3": (640, 2048, 4, 1, True, ("post_norms", "qk_norm")),
        "phi3": (256, 512, 4, 4, False, ("qkv",)), "bert": (384, 1536, 12, 12, True, ("bert",)),
    }[arch]
    n_embd, n_ff, n_head, n_kv, tied, extras = cfg
    hd = max(32, n_embd // n_head) if arch != "gemma3" else 256
    n_vocab = 320
    m = Metadata()
    m.set("general.architecture", arch, V.STRING)
    m.set("general.name", f"tiny-{arch}", V.STRING)
    for k, v in (("context_length", 512), ("embedding_length", n_embd), ("block_count", n_layer),
                 ("feed_forward_length", n_ff), ("attention.head_count", n_head), ("attention.head_count_kv", n_kv)):
        m.set(f"{arch}.{k}", v, V.UINT32)
    if arch == "gemma3" or arch == "gemma2" or arch == "gemma":
        m.set(f"{arch}.attention.key_length", hd, V.UINT32)
        m.set(f"{arch}.attention.value_length", hd, V.UINT32)
    eps_key = "attention.layer_norm_epsilon" if arch == "bert" else "attention.layer_norm_rms_epsilon"
    m.set(f"{arch}.{eps_key}", 1e-6, V.FLOAT32)
    m.set("general.file_type", 1, V.UINT32)
    F16, F32 = T.F16, T.F32
    t = [("token_embd.weight", (n_vocab, n_embd), F16)]
    if "bert" in extras:
        t += [("position_embd.weight", (512, n_embd), F32), ("token_types.weight", (2, n_embd), F32),
              ("token_embd_norm.weight", (n_embd,), F32), ("token_embd_norm.bias", (n_embd,), F32)]
    else:
        t.append(("output_norm.weight", (n_embd,), F32))
    if not tied:
        t.append(("output.weight", (n_vocab, n_embd), F16))
    for i in range(n_layer):
        b = f"blk.{i}."
        if "qkv" in extras:
            t.append((b + "attn_qkv.weight", ((n_head + 2 * n_kv) * hd, n_embd), F16))
        else:
            t += [(b + "attn_q.weight", (n_head * hd, n_embd), F16), (b + "attn_k.weight", (n_kv * hd, n_embd), F16),
                  (b + "attn_v.weight", (n_kv * hd, n_embd), F16)]
        if "qkv_bias" in extras or "bert" in extras:
            t += [(b + "attn_q.bias", (n_head * hd,), F32), (b + "attn_k.bias", (n_kv * hd,), F32),
                  (b + "attn_v.bias", (n_kv * hd,), F32)]
        if "qk_norm" in extras:
            t += [(b + "attn_q_norm.weight", (hd,), F32), (b + "attn_k_norm.weight", (hd,), F32)]
        t.append((b + "attn_output.weight", (n_embd, n_head * hd), F16))
        if "bert" in extras:
            t += [(b + "attn_output.bias", (n_embd,), F32), (b + "attn_output_norm.weight", (n_embd,), F32),
                  (b + "attn_output_norm.bias", (n_embd,), F32), (b + "ffn_up.weight", (n_ff, n_embd), F16),
                  (b + "ffn_up.bias", (n_ff,), F32), (b + "ffn_down.weight", (n_embd, n_ff), F16),
                  (b + "ffn_down.bias", (n_embd,), F32), (b + "layer_output_norm.weight", (n_embd,), F32),
                  (b + "layer_output_norm.bias", (n_embd,), F32)]
            continue
        t.append((b + "attn_norm.weight", (n_embd,), F32))
        if "post_norms" in extras:
            t += [(b + "post_attention_norm.weight", (n_embd,), F32), (b + "post_ffw_norm.weight", (n_embd,), F32)]
        t += [(b + "ffn_norm.weight", (n_embd,), F32), (b + "ffn_down.weight", (n_embd, n_ff), F16)]
        if arch == "phi3":
            t.append((b + "ffn_up.weight", (2 * n_ff, n_embd), F16))  # gate and up fused
        else:
            t += [(b + "ffn_gate.weight", (n_ff, n_embd), F16), (b + "ffn_up.weight", (n_ff, n_embd), F16)]
    return m, t


def write_tiny(path: Path, arch: str, seed: int = 0) -> Path:
    m, spec = tiny_model(arch)
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape, typ in spec:
        x = rng.standard_normal(shape).astype(np.float32) * np.float32(0.05)
        if name.endswith("norm.weight"):
            x += 1
        tensors[name] = pyquant.quantize(x, typ)
    return save_gguf(path, tensors, m)


ARCHS = ("llama", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3", "bert")
ORACLE_RECIPES = ("Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0",
                  "Q4_0", "Q4_1", "Q5_0", "Q5_1")


def llama_quantize(binary: str, src: Path, dst: Path, recipe: str, imatrix: Path | None = None) -> None:
    import subprocess

    cmd = [binary] + (["--imatrix", str(imatrix)] if imatrix else []) + [str(src), str(dst), recipe, "1"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]


@pytest.mark.skipif(not __import__("os").environ.get("LLAMA_QUANTIZE"),
                    reason="set LLAMA_QUANTIZE to a llama-quantize binary to compare whole files with llama.cpp")
@pytest.mark.parametrize("arch", ARCHS)
def test_whole_files_equal_llama_quantize(tmp_path, arch, monkeypatch):
    """Same input, same recipe: llama-quantize's file and ours are identical (tensors, order, bytes, metadata)."""
    import os

    monkeypatch.chdir(tmp_path)

    src = write_tiny(tmp_path / f"{arch}-f16.gguf", arch)
    for recipe in ORACLE_RECIPES:
        theirs, ours = tmp_path / f"{recipe}-llama.gguf", tmp_path / f"{recipe}-pyquant.gguf"
        llama_quantize(os.environ["LLAMA_QUANTIZE"], src, theirs, recipe)
        quantize_model(src, ours, recipe, progress=False, threads=1)
        a, b = GGUFFile(theirs), GGUFFile(ours)
        assert [(t.name, t.qtype, t.shape) for t in a.infos] == [(t.name, t.qtype, t.shape) for t in b.infos], recipe
        for ti in a.infos:
            assert np.array_equal(a.raw(ti), b.raw(b.info(ti.name))), (recipe, ti.name, ti.qtype)
        assert list(a.metadata) == list(b.metadata) and a.metadata.types == b.metadata.types
        assert theirs.read_bytes() == ours.read_bytes(), recipe
        assert LLAMA_QUANTIZE_PLAIN[f"{arch}/{recipe}"][1] == _sha16(theirs), "recorded output is stale"
    im = _tiny_imatrix(arch)
    save_imatrix("imatrix.gguf", im)
    save_imatrix("imatrix.dat", im, legacy=True)
    for recipe, fn in (("Q4_0", "imatrix.gguf"), ("Q4_K_M", "imatrix.gguf"), ("Q2_K_S", "imatrix.gguf"),
                       ("Q3_K_S", "imatrix.dat")):
        theirs, ours = tmp_path / f"{recipe}-im-llama.gguf", tmp_path / f"{recipe}-im-pyquant.gguf"
        llama_quantize(os.environ["LLAMA_QUANTIZE"], src, theirs, recipe, imatrix=Path(fn))
        quantize_model(src, ours, recipe, imatrix=fn, progress=False, threads=1)
        assert theirs.read_bytes() == ours.read_bytes(), (recipe, fn)
        assert LLAMA_QUANTIZE_IMATRIX[f"{arch}/{recipe}/{fn}"][1] == _sha16(theirs), "recorded output is stale"


# ---------------------------------------------------------------------------------------------------------
# llama-quantize's own output for the tiny models, recorded (so tests without the binary still compare)
#
# Recorded with llama-quantize built from the llama.cpp that llama-cpp-python 0.3.36 vendors (commit 0c1e5709,
# 2026-10-01; cmake --target llama-quantize, CPU, GGML_NATIVE default) by test_whole_files_equal_llama_quantize's
# procedure: `llama-quantize [--imatrix F] tiny-<arch>.gguf out.gguf RECIPE 1`. Per file: the type of every
# tensor in file order (one letter each, _CODE) and the first 16 hex digits of the sha256 of the whole file.
# pyquant's quantize_model wrote byte-identical files for every entry (and for the real Gemma 3 270M,
# dequantized to F32 and re-quantized with Q4_K_M).
_CODE = {"F32": "f", "F16": "h", "Q4_0": "0", "Q4_1": "1", "Q5_0": "5", "Q5_1": "6", "Q8_0": "8", "Q2_K": "B",
         "Q3_K": "C", "Q4_K": "D", "Q5_K": "E", "Q6_K": "F"}
LLAMA_QUANTIZE_INPUTS = {"llama": "fb4648aeb38610aa", "qwen2": "294bca79db0e7fb0", "qwen3": "056241254ede8e3a", "gemma": "d7db10d6c4ec2e37", "gemma2": "8f1d816d1724c05c", "gemma3": "480ab169587b1e15", "phi3": "bd1185e79833acca", "bert": "276e211364072f44"}
LLAMA_QUANTIZE_PLAIN = {
    "llama/Q2_K": ("FfBBfCBDCBfBBfCBDCBfBBfCBDCBfBBfCBDCBfBBfCBDCBfBBfCBDCBfBBfCBDCBfBBfCBDCBfB", "9807714b7fc0e53b"),
    "llama/Q3_K_S": ("FfCCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfC", "2aca8ee8b4be833c"),
    "llama/Q3_K_M": ("FfCCfDCEDCfCCfDCEDCfCCfDCDDCfCCfDCDDCfCCfDCDDCfCCfDCDDCfCCfDCDDCfCCfDCDDCfC", "cd36c27667c3fd09"),
    "llama/Q3_K_L": ("FfCCfECEECfCCfECEECfCCfECEECfCCfECEECfCCfECEECfCCfECEECfCCfECEECfCCfECEECfC", "de5bde6bedba99d5"),
    "llama/Q4_K_S": ("FfDDfDDEEDfDDfDDEDDfDDfDDEDDfDDfDDEDDfDDfDDDDDfDDfDDDDDfDDfDDDDDfDDfDDDDDfD", "9453dc9617b1e8ec"),
    "llama/Q4_K_M": ("FfDDfDDFFDfDDfDDDDDfDDfDDDDDfDDfDDFFDfDDfDDDDDfDDfDDDDDfDDfDDFFDfDDfDDFFDfD", "226f992970b8c235"),
    "llama/Q5_K_S": ("FfEEfEEEEEfEEfEEEEEfEEfEEEEEfEEfEEEEEfEEfEEEEEfEEfEEEEEfEEfEEEEEfEEfEEEEEfE", "4cffcf0bb05ac192"),
    "llama/Q5_K_M": ("FfEEfEEFFEfEEfEEEEEfEEfEEEEEfEEfEEFFEfEEfEEEEEfEEfEEEEEfEEfEEFFEfEEfEEFFEfE", "d8f0781668ed555d"),
    "llama/Q6_K": ("FfFFfFFFFFfFFfFFFFFfFFfFFFFFfFFfFFFFFfFFfFFFFFfFFfFFFFFfFFfFFFFFfFFfFFFFFfF", "b2217aae62240127"),
    "llama/Q8_0": ("8f88f88888f88f88888f88f88888f88f88888f88f88888f88f88888f88f88888f88f88888f8", "173af138e06489ff"),
    "llama/Q4_0": ("Ff00f00000f00f00000f00f00000f00f00000f00f00000f00f00000f00f00000f00f00000f0", "f1da92ba0003c70f"),
    "llama/Q4_1": ("Ff11f11111f11f11111f11f11111f11f11111f11f11111f11f11111f11f11111f11f11111f1", "7c9cc25690b3de67"),
    "llama/Q5_0": ("Ff55f55555f55f55555f55f55555f55f55555f55f55555f55f55555f55f55555f55f55555f5", "6926597c3e3f08a1"),
    "llama/Q5_1": ("Ff66f66666f66f66666f66f66666f66f66666f66f66666f66f66666f66f66666f66f66666f6", "6ac8dc4a3126461b"),
    "qwen2/Q2_K": ("fFfBfCfBfCCBfBfBfCfBfCCBfBfBfCfBfCCBfBfBfCfBfCCBfBfBfCfBfCCBfBfBfCfBfCCBfBfBfCfBfCCBfBfBfCfBfCCBfB", "a4220937d3cccc7b"),
    "qwen2/Q3_K_S": ("fFfCfCfCfCCCfCfCfCfCfCCCfCfCfCfCfCCCfCfCfCfCfCCCfCfCfCfCfCCCfCfCfCfCfCCCfCfCfCfCfCCCfCfCfCfCfCCCfC", "e8c936c5792eee1d"),
    "qwen2/Q3_K_M": ("fFfCfDfCfEDCfCfCfDfCfEDCfCfCfDfCfDDCfCfCfDfCfDDCfCfCfDfCfDDCfCfCfDfCfDDCfCfCfDfCfDDCfCfCfDfCfDDCfC", "fd694e1e60a4b258"),
    "qwen2/Q3_K_L": ("fFfCfEfCfEECfCfCfEfCfEECfCfCfEfCfEECfCfCfEfCfEECfCfCfEfCfEECfCfCfEfCfEECfCfCfEfCfEECfCfCfEfCfEECfC", "65645a2269b3c0f1"),
    "qwen2/Q4_K_S": ("fFfDfDfDfEEDfDfDfDfDfEDDfDfDfDfDfEDDfDfDfDfDfEDDfDfDfDfDfDDDfDfDfDfDfDDDfDfDfDfDfDDDfDfDfDfDfDDDfD", "af139c76d40b0809"),
    "qwen2/Q4_K_M": ("fFfDfDfDfFFDfDfDfDfDfDDDfDfDfDfDfDDDfDfDfDfDfFFDfDfDfDfDfDDDfDfDfDfDfDDDfDfDfDfDfFFDfDfDfDfDfFFDfD", "73ac4ce093689e9c"),
    "qwen2/Q5_K_S": ("fFfEfEfEfEEEfEfEfEfEfEEEfEfEfEfEfEEEfEfEfEfEfEEEfEfEfEfEfEEEfEfEfEfEfEEEfEfEfEfEfEEEfEfEfEfEfEEEfE", "28c3ebdd1f5b4826"),
    "qwen2/Q5_K_M": ("fFfEfEfEfFFEfEfEfEfEfEEEfEfEfEfEfEEEfEfEfEfEfFFEfEfEfEfEfEEEfEfEfEfEfEEEfEfEfEfEfFFEfEfEfEfEfFFEfE", "606b8bc8ce44eb93"),
    "qwen2/Q6_K": ("fFfFfFfFfFFFfFfFfFfFfFFFfFfFfFfFfFFFfFfFfFfFfFFFfFfFfFfFfFFFfFfFfFfFfFFFfFfFfFfFfFFFfFfFfFfFfFFFfF", "193ac970c9c1b890"),
    "qwen2/Q8_0": ("f8f8f8f8f888f8f8f8f8f888f8f8f8f8f888f8f8f8f8f888f8f8f8f8f888f8f8f8f8f888f8f8f8f8f888f8f8f8f8f888f8", "1987427770afcf2b"),
    "qwen2/Q4_0": ("fFf0f0f0f000f0f0f0f0f000f0f0f0f0f000f0f0f0f0f000f0f0f0f0f000f0f0f0f0f000f0f0f0f0f000f0f0f0f0f000f0", "2203381986c8255c"),
    "qwen2/Q4_1": ("fFf1f1f1f111f1f1f1f1f111f1f1f1f1f111f1f1f1f1f111f1f1f1f1f111f1f1f1f1f111f1f1f1f1f111f1f1f1f1f111f1", "0bf37f26b567ad77"),
    "qwen2/Q5_0": ("fFf5f5f5f555f5f5f5f5f555f5f5f5f5f555f5f5f5f5f555f5f5f5f5f555f5f5f5f5f555f5f5f5f5f555f5f5f5f5f555f5", "a474128e90541aa7"),
    "qwen2/Q5_1": ("fFf6f6f6f666f6f6f6f6f666f6f6f6f6f666f6f6f6f6f666f6f6f6f6f666f6f6f6f6f666f6f6f6f6f666f6f6f6f6f666f6", "c0b4670f19d1b3f0"),
    "qwen3/Q2_K": ("FfBBffCBfCCBfBBffCBfCCBfBBffCBfCCBfBBffCBfCCBfBBffCBfCCBfBBffCBfCCBfBBffCBfCCBfBBffCBfCCBfB", "f939a7733ff7d57e"),
    "qwen3/Q3_K_S": ("FfCCffCCfCCCfCCffCCfCCCfCCffCCfCCCfCCffCCfCCCfCCffCCfCCCfCCffCCfCCCfCCffCCfCCCfCCffCCfCCCfC", "42e86c01df0554ff"),
    "qwen3/Q3_K_M": ("FfCCffDCfEDCfCCffDCfEDCfCCffDCfDDCfCCffDCfDDCfCCffDCfDDCfCCffDCfDDCfCCffDCfDDCfCCffDCfDDCfC", "d1205a843c89ca99"),
    "qwen3/Q3_K_L": ("FfCCffECfEECfCCffECfEECfCCffECfEECfCCffECfEECfCCffECfEECfCCffECfEECfCCffECfEECfCCffECfEECfC", "bd79dc9b5d6c4681"),
    "qwen3/Q4_K_S": ("FfDDffDDfEEDfDDffDDfEDDfDDffDDfEDDfDDffDDfEDDfDDffDDfDDDfDDffDDfDDDfDDffDDfDDDfDDffDDfDDDfD", "aa15b0f0c4365278"),
    "qwen3/Q4_K_M": ("FfDDffDDfFFDfDDffDDfDDDfDDffDDfDDDfDDffDDfFFDfDDffDDfDDDfDDffDDfDDDfDDffDDfFFDfDDffDDfFFDfD", "e21e783e4bd633a9"),
    "qwen3/Q5_K_S": ("FfEEffEEfEEEfEEffEEfEEEfEEffEEfEEEfEEffEEfEEEfEEffEEfEEEfEEffEEfEEEfEEffEEfEEEfEEffEEfEEEfE", "e5fca4805cf9ebb8"),
    "qwen3/Q5_K_M": ("FfEEffEEfFFEfEEffEEfEEEfEEffEEfEEEfEEffEEfFFEfEEffEEfEEEfEEffEEfEEEfEEffEEfFFEfEEffEEfFFEfE", "4969d01a693ef6d4"),
    "qwen3/Q6_K": ("FfFFffFFfFFFfFFffFFfFFFfFFffFFfFFFfFFffFFfFFFfFFffFFfFFFfFFffFFfFFFfFFffFFfFFFfFFffFFfFFFfF", "12ac43b608f9c2a9"),
    "qwen3/Q8_0": ("8f88ff88f888f88ff88f888f88ff88f888f88ff88f888f88ff88f888f88ff88f888f88ff88f888f88ff88f888f8", "b1bc2a730fdbafe0"),
    "qwen3/Q4_0": ("Ff00ff00f000f00ff00f000f00ff00f000f00ff00f000f00ff00f000f00ff00f000f00ff00f000f00ff00f000f0", "e237e55f63e1f43e"),
    "qwen3/Q4_1": ("Ff11ff11f111f11ff11f111f11ff11f111f11ff11f111f11ff11f111f11ff11f111f11ff11f111f11ff11f111f1", "98149456b4b7bbf4"),
    "qwen3/Q5_0": ("Ff55ff55f555f55ff55f555f55ff55f555f55ff55f555f55ff55f555f55ff55f555f55ff55f555f55ff55f555f5", "f23cbc79154d0783"),
    "qwen3/Q5_1": ("Ff66ff66f666f66ff66f666f66ff66f666f66ff66f666f66ff66f666f66ff66f666f66ff66f666f66ff66f666f6", "3041f771021e7c89"),
    "gemma/Q2_K": ("fFBfCBDCBfBBfCBDCBfBBfCBDCBfBBfCBDCBfBBfCBDCBfBBfCBDCBfBBfCBDCBfBBfCBDCBfB", "4d839616c7d2c0b8"),
    "gemma/Q3_K_S": ("fFCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfC", "bf3faf80ad9514ec"),
    "gemma/Q3_K_M": ("fFCfDCEDCfCCfDCEDCfCCfDCDDCfCCfDCDDCfCCfDCDDCfCCfDCDDCfCCfDCDDCfCCfDCDDCfC", "d0f1a610669fc5e7"),
    "gemma/Q3_K_L": ("fFCfECEECfCCfECEECfCCfECEECfCCfECEECfCCfECEECfCCfECEECfCCfECEECfCCfECEECfC", "a544cb7c5e4b6cb8"),
    "gemma/Q4_K_S": ("fFDfDDEEDfDDfDDEDDfDDfDDEDDfDDfDDEDDfDDfDDDDDfDDfDDDDDfDDfDDDDDfDDfDDDDDfD", "a7efbff78482275c"),
    "gemma/Q4_K_M": ("fFDfDDFFDfDDfDDDDDfDDfDDDDDfDDfDDFFDfDDfDDDDDfDDfDDDDDfDDfDDFFDfDDfDDFFDfD", "1352ab2389d224f3"),
    "gemma/Q5_K_S": ("fFEfEEEEEfEEfEEEEEfEEfEEEEEfEEfEEEEEfEEfEEEEEfEEfEEEEEfEEfEEEEEfEEfEEEEEfE", "adfab5107946bf6f"),
    "gemma/Q5_K_M": ("fFEfEEFFEfEEfEEEEEfEEfEEEEEfEEfEEFFEfEEfEEEEEfEEfEEEEEfEEfEEFFEfEEfEEFFEfE", "9b9490725e4c81b8"),
    "gemma/Q6_K": ("fFFfFFFFFfFFfFFFFFfFFfFFFFFfFFfFFFFFfFFfFFFFFfFFfFFFFFfFFfFFFFFfFFfFFFFFfF", "d85810f79e3e53fb"),
    "gemma/Q8_0": ("f88f88888f88f88888f88f88888f88f88888f88f88888f88f88888f88f88888f88f88888f8", "71c63f8bd1859691"),
    "gemma/Q4_0": ("fF0f00000f00f00000f00f00000f00f00000f00f00000f00f00000f00f00000f00f00000f0", "197175de1c7e911b"),
    "gemma/Q4_1": ("fF1f11111f11f11111f11f11111f11f11111f11f11111f11f11111f11f11111f11f11111f1", "61644c3e47e0097e"),
    "gemma/Q5_0": ("fF5f55555f55f55555f55f55555f55f55555f55f55555f55f55555f55f55555f55f55555f5", "1145d4304cf69b64"),
    "gemma/Q5_1": ("fF6f66666f66f66666f66f66666f66f66666f66f66666f66f66666f66f66666f66f66666f6", "b28027cad4a0114c"),
    "gemma2/Q2_K": ("fFBfCBCCBfBffBfCBCCBfBffBfCBCCBfBffBfCBCCBfBffBfCBCCBfBffBfCBCCBfBffBfCBCCBfBffBfCBCCBfBff", "a7223a7360c16bd9"),
    "gemma2/Q3_K_S": ("fFCfCCCCCfCffCfCCCCCfCffCfCCCCCfCffCfCCCCCfCffCfCCCCCfCffCfCCCCCfCffCfCCCCCfCffCfCCCCCfCff", "c6c2225b15a84350"),
    "gemma2/Q3_K_M": ("fFCfDCEDCfCffCfDCEDCfCffCfDCDDCfCffCfDCDDCfCffCfDCDDCfCffCfDCDDCfCffCfDCDDCfCffCfDCDDCfCff", "54e33731aeb51345"),
    "gemma2/Q3_K_L": ("fFCfECEECfCffCfECEECfCffCfECEECfCffCfECEECfCffCfECEECfCffCfECEECfCffCfECEECfCffCfECEECfCff", "041cfa1dcc3f776a"),
    "gemma2/Q4_K_S": ("fFDfDDEEDfDffDfDDEDDfDffDfDDEDDfDffDfDDEDDfDffDfDDDDDfDffDfDDDDDfDffDfDDDDDfDffDfDDDDDfDff", "ffb7256379a96bdb"),
    "gemma2/Q4_K_M": ("fFDfDDFFDfDffDfDDDDDfDffDfDDDDDfDffDfDDFFDfDffDfDDDDDfDffDfDDDDDfDffDfDDFFDfDffDfDDFFDfDff", "6c45aa46a7ca1a3a"),
    "gemma2/Q5_K_S": ("fFEfEEEEEfEffEfEEEEEfEffEfEEEEEfEffEfEEEEEfEffEfEEEEEfEffEfEEEEEfEffEfEEEEEfEffEfEEEEEfEff", "36ac59dfdb8eb84d"),
    "gemma2/Q5_K_M": ("fFEfEEFFEfEffEfEEEEEfEffEfEEEEEfEffEfEEFFEfEffEfEEEEEfEffEfEEEEEfEffEfEEFFEfEffEfEEFFEfEff", "559ea85c7d5d042a"),
    "gemma2/Q6_K": ("fFFfFFFFFfFffFfFFFFFfFffFfFFFFFfFffFfFFFFFfFffFfFFFFFfFffFfFFFFFfFffFfFFFFFfFffFfFFFFFfFff", "8a80d83011985869"),
    "gemma2/Q8_0": ("f88f88888f8ff8f88888f8ff8f88888f8ff8f88888f8ff8f88888f8ff8f88888f8ff8f88888f8ff8f88888f8ff", "39c484a670fde2a4"),
    "gemma2/Q4_0": ("fF0f00000f0ff0f00000f0ff0f00000f0ff0f00000f0ff0f00000f0ff0f00000f0ff0f00000f0ff0f00000f0ff", "5b807ac81b11be05"),
    "gemma2/Q4_1": ("fF1f11111f1ff1f11111f1ff1f11111f1ff1f11111f1ff1f11111f1ff1f11111f1ff1f11111f1ff1f11111f1ff", "32d1c8ab5e7833a7"),
    "gemma2/Q5_0": ("fF5f55555f5ff5f55555f5ff5f55555f5ff5f55555f5ff5f55555f5ff5f55555f5ff5f55555f5ff5f55555f5ff", "941f8783ee71f7b4"),
    "gemma2/Q5_1": ("fF6f66666f6ff6f66666f6ff6f66666f6ff6f66666f6ff6f66666f6ff6f66666f6ff6f66666f6ff6f66666f6ff", "4e2326e8ebb06571"),
    "gemma3/Q2_K": ("f80ffC0f5C0f0ff0ffC0f5C0f0ff0ffC0f5C0f0ff0ffC0f5C0f0ff0ffC0f5C0f0ff0ffC0f5C0f0ff0ffC0f5C0f0ff0ffC0f5C0f0ff", "eac6a230fc4493f8"),
    "gemma3/Q3_K_S": ("f80ffC0f0C0f0ff0ffC0f0C0f0ff0ffC0f0C0f0ff0ffC0f0C0f0ff0ffC0f0C0f0ff0ffC0f0C0f0ff0ffC0f0C0f0ff0ffC0f0C0f0ff", "dcc25a5c5088a001"),
    "gemma3/Q3_K_M": ("f80ffD0f6D0f0ff0ffD0f6D0f0ff0ffD0f5D0f0ff0ffD0f5D0f0ff0ffD0f5D0f0ff0ffD0f5D0f0ff0ffD0f5D0f0ff0ffD0f5D0f0ff", "dca8c585f8df49c2"),
    "gemma3/Q3_K_L": ("f80ffE0f6E0f0ff0ffE0f6E0f0ff0ffE0f6E0f0ff0ffE0f6E0f0ff0ffE0f6E0f0ff0ffE0f6E0f0ff0ffE0f6E0f0ff0ffE0f6E0f0ff", "48291c84c76461ea"),
    "gemma3/Q4_K_S": ("f85ffD5f6E5f5ff5ffD5f6D5f5ff5ffD5f6D5f5ff5ffD5f6D5f5ff5ffD5f5D5f5ff5ffD5f5D5f5ff5ffD5f5D5f5ff5ffD5f5D5f5ff", "ca3554748cc87edb"),
    "gemma3/Q4_K_M": ("f85ffD5f8F5f5ff5ffD5f5D5f5ff5ffD5f5D5f5ff5ffD5f8F5f5ff5ffD5f5D5f5ff5ffD5f5D5f5ff5ffD5f8F5f5ff5ffD5f8F5f5ff", "f8a2eaec3bf88db6"),
    "gemma3/Q5_K_S": ("f86ffE6f6E6f6ff6ffE6f6E6f6ff6ffE6f6E6f6ff6ffE6f6E6f6ff6ffE6f6E6f6ff6ffE6f6E6f6ff6ffE6f6E6f6ff6ffE6f6E6f6ff", "a0c6aabe748fd680"),
    "gemma3/Q5_K_M": ("f86ffE6f8F6f6ff6ffE6f6E6f6ff6ffE6f6E6f6ff6ffE6f8F6f6ff6ffE6f6E6f6ff6ffE6f6E6f6ff6ffE6f8F6f6ff6ffE6f8F6f6ff", "81eb09b994bb4cee"),
    "gemma3/Q6_K": ("f88ffF8f8F8f8ff8ffF8f8F8f8ff8ffF8f8F8f8ff8ffF8f8F8f8ff8ffF8f8F8f8ff8ffF8f8F8f8ff8ffF8f8F8f8ff8ffF8f8F8f8ff", "06dd0cda83e9f2b0"),
    "gemma3/Q8_0": ("f88ff88f888f8ff8ff88f888f8ff8ff88f888f8ff8ff88f888f8ff8ff88f888f8ff8ff88f888f8ff8ff88f888f8ff8ff88f888f8ff", "d206dd1e7f6c885c"),
    "gemma3/Q4_0": ("f80ff00f000f0ff0ff00f000f0ff0ff00f000f0ff0ff00f000f0ff0ff00f000f0ff0ff00f000f0ff0ff00f000f0ff0ff00f000f0ff", "52b772acbebd99cd"),
    "gemma3/Q4_1": ("f81ff11f111f1ff1ff11f111f1ff1ff11f111f1ff1ff11f111f1ff1ff11f111f1ff1ff11f111f1ff1ff11f111f1ff1ff11f111f1ff", "46405206ba018d1c"),
    "gemma3/Q5_0": ("f85ff55f555f5ff5ff55f555f5ff5ff55f555f5ff5ff55f555f5ff5ff55f555f5ff5ff55f555f5ff5ff55f555f5ff5ff55f555f5ff", "c4dea84ec2675744"),
    "gemma3/Q5_1": ("f86ff66f666f6ff6ff66f666f6ff6ff66f666f6ff6ff66f666f6ff6ff66f666f6ff6ff66f666f6ff6ff66f666f6ff6ff66f666f6ff", "b8db01cdbd5ad8d4"),
    "phi3/Q2_K": ("FfBfCCCfBfCCCfBfCCCfBfCCCfBfCCCfBfCCCfBfCCCfBfCCCfB", "0372b2aa03e93fbc"),
    "phi3/Q3_K_S": ("FfCfCCCfCfCCCfCfCCCfCfCCCfCfCCCfCfCCCfCfCCCfCfCCCfC", "2bf725c8406dccf2"),
    "phi3/Q3_K_M": ("FfCfDEDfCfDEDfCfDDDfCfDDDfCfDDDfCfDDDfCfDDDfCfDDDfC", "ae8463696f668b35"),
    "phi3/Q3_K_L": ("FfCfEEEfCfEEEfCfEEEfCfEEEfCfEEEfCfEEEfCfEEEfCfEEEfC", "bd14c0245179a16e"),
    "phi3/Q4_K_S": ("FfDfDEEfDfDEDfDfDEDfDfDEDfDfDDDfDfDDDfDfDDDfDfDDDfD", "2e8c35fd48946dee"),
    "phi3/Q4_K_M": ("FfDfDFFfDfDDDfDfDDDfDfDFFfDfDDDfDfDDDfDfDFFfDfDFFfD", "68b029afa12b3a7c"),
    "phi3/Q5_K_S": ("FfEfEEEfEfEEEfEfEEEfEfEEEfEfEEEfEfEEEfEfEEEfEfEEEfE", "6edab5ff66f0fc68"),
    "phi3/Q5_K_M": ("FfEfEFFfEfEEEfEfEEEfEfEFFfEfEEEfEfEEEfEfEFFfEfEFFfE", "cecdddad906ae707"),
    "phi3/Q6_K": ("FfFfFFFfFfFFFfFfFFFfFfFFFfFfFFFfFfFFFfFfFFFfFfFFFfF", "03e0ea416bd700b3"),
    "phi3/Q8_0": ("8f8f888f8f888f8f888f8f888f8f888f8f888f8f888f8f888f8", "f503bb7b7eea3694"),
    "phi3/Q4_0": ("Ff0f000f0f000f0f000f0f000f0f000f0f000f0f000f0f000f0", "59086ab1c9c8a48f"),
    "phi3/Q4_1": ("Ff1f111f1f111f1f111f1f111f1f111f1f111f1f111f1f111f1", "f07fcaec8cc1db19"),
    "phi3/Q5_0": ("Ff5f555f5f555f5f555f5f555f5f555f5f555f5f555f5f555f5", "26b15ab31a0cbdb2"),
    "phi3/Q5_1": ("Ff6f666f6f666f6f666f6f666f6f666f6f666f6f666f6f666f6", "ef31f966527b5c42"),
    "bert/Q2_K": ("f8ffff0f0fff0f0fCf0fff0f0fff0f0fCf0fff0f0fff0f0fCf0fff0f0fff0f0fCf0fff0f0fff0f0fCf0fff0f0fff0f0fCf0fff0f0fff0f0fCf0fff0f0fff0f0fCf0ff", "f87f32d58f2e6365"),
    "bert/Q3_K_S": ("f8ffff0f0fff0f0fCf0fff0f0fff0f0fCf0fff0f0fff0f0fCf0fff0f0fff0f0fCf0fff0f0fff0f0fCf0fff0f0fff0f0fCf0fff0f0fff0f0fCf0fff0f0fff0f0fCf0ff", "d740c42da4162584"),
    "bert/Q3_K_M": ("f8ffff0f5fff0f6fDf0fff0f5fff0f6fDf0fff0f5fff0f5fDf0fff0f5fff0f5fDf0fff0f5fff0f5fDf0fff0f5fff0f5fDf0fff0f5fff0f5fDf0fff0f5fff0f5fDf0ff", "4483cf9fd18f5a70"),
    "bert/Q3_K_L": ("f8ffff0f6fff0f6fEf0fff0f6fff0f6fEf0fff0f6fff0f6fEf0fff0f6fff0f6fEf0fff0f6fff0f6fEf0fff0f6fff0f6fEf0fff0f6fff0f6fEf0fff0f6fff0f6fEf0ff", "0432b498e7d194be"),
    "bert/Q4_K_S": ("f8ffff5f5fff5f6fEf5fff5f5fff5f6fDf5fff5f5fff5f6fDf5fff5f5fff5f6fDf5fff5f5fff5f5fDf5fff5f5fff5f5fDf5fff5f5fff5f5fDf5fff5f5fff5f5fDf5ff", "ce43830d8bc4d0ff"),
    "bert/Q4_K_M": ("f8ffff5f5fff5f8fFf5fff5f5fff5f5fDf5fff5f5fff5f5fDf5fff5f5fff5f8fFf5fff5f5fff5f5fDf5fff5f5fff5f5fDf5fff5f5fff5f8fFf5fff5f5fff5f8fFf5ff", "e9429c0fb9f466b5"),
    "bert/Q5_K_S": ("f8ffff6f6fff6f6fEf6fff6f6fff6f6fEf6fff6f6fff6f6fEf6fff6f6fff6f6fEf6fff6f6fff6f6fEf6fff6f6fff6f6fEf6fff6f6fff6f6fEf6fff6f6fff6f6fEf6ff", "c1b5ee3b4bc840d3"),
    "bert/Q5_K_M": ("f8ffff6f6fff6f8fFf6fff6f6fff6f6fEf6fff6f6fff6f6fEf6fff6f6fff6f8fFf6fff6f6fff6f6fEf6fff6f6fff6f6fEf6fff6f6fff6f8fFf6fff6f6fff6f8fFf6ff", "8d726e5646e8958d"),
    "bert/Q6_K": ("f8ffff8f8fff8f8fFf8fff8f8fff8f8fFf8fff8f8fff8f8fFf8fff8f8fff8f8fFf8fff8f8fff8f8fFf8fff8f8fff8f8fFf8fff8f8fff8f8fFf8fff8f8fff8f8fFf8ff", "9186a24994dcc243"),
    "bert/Q8_0": ("f8ffff8f8fff8f8f8f8fff8f8fff8f8f8f8fff8f8fff8f8f8f8fff8f8fff8f8f8f8fff8f8fff8f8f8f8fff8f8fff8f8f8f8fff8f8fff8f8f8f8fff8f8fff8f8f8f8ff", "20b77d415bfd021a"),
    "bert/Q4_0": ("f8ffff0f0fff0f0f0f0fff0f0fff0f0f0f0fff0f0fff0f0f0f0fff0f0fff0f0f0f0fff0f0fff0f0f0f0fff0f0fff0f0f0f0fff0f0fff0f0f0f0fff0f0fff0f0f0f0ff", "c721178bde3ea3fc"),
    "bert/Q4_1": ("f8ffff1f1fff1f1f1f1fff1f1fff1f1f1f1fff1f1fff1f1f1f1fff1f1fff1f1f1f1fff1f1fff1f1f1f1fff1f1fff1f1f1f1fff1f1fff1f1f1f1fff1f1fff1f1f1f1ff", "13cfadbd068cdef1"),
    "bert/Q5_0": ("f8ffff5f5fff5f5f5f5fff5f5fff5f5f5f5fff5f5fff5f5f5f5fff5f5fff5f5f5f5fff5f5fff5f5f5f5fff5f5fff5f5f5f5fff5f5fff5f5f5f5fff5f5fff5f5f5f5ff", "daf8b4f809bfc7ca"),
    "bert/Q5_1": ("f8ffff6f6fff6f6f6f6fff6f6fff6f6f6f6fff6f6fff6f6f6f6fff6f6fff6f6f6f6fff6f6fff6f6f6f6fff6f6fff6f6f6f6fff6f6fff6f6f6f6fff6f6fff6f6f6f6ff", "6d99a79e4440fe1d"),
}
LLAMA_QUANTIZE_IMATRIX = {
    "llama/Q4_0/imatrix.gguf": ("Ff00f00010f00f00000f00f00000f00f00000f00f00000f00f00000f00f00000f00f00000f0", "2ac394869ecd61e0"),
    "llama/Q4_K_M/imatrix.gguf": ("FfDDfDDFFDfDDfDDDDDfDDfDDDDDfDDfDDFFDfDDfDDDDDfDDfDDDDDfDDfDDFFDfDDfDDFFDfD", "9f74710d56ec40da"),
    "llama/Q2_K_S/imatrix.gguf": ("FfBBfBBDDBfBBfBBDBBfBBfBBDBBfBBfBBDBBfBBfBBDBBfBBfBBDBBfBBfBBDBBfBBfBBDBBfB", "74a33b6e6315ad69"),
    "llama/Q3_K_S/imatrix.dat": ("FfCCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfC", "f061d3d65674ade0"),
    "qwen2/Q4_0/imatrix.gguf": ("fFf0f0f0f010f0f0f0f0f000f0f0f0f0f000f0f0f0f0f000f0f0f0f0f000f0f0f0f0f000f0f0f0f0f000f0f0f0f0f000f0", "b71ae6f8ae108e40"),
    "qwen2/Q4_K_M/imatrix.gguf": ("fFfDfDfDfFFDfDfDfDfDfDDDfDfDfDfDfDDDfDfDfDfDfFFDfDfDfDfDfDDDfDfDfDfDfDDDfDfDfDfDfFFDfDfDfDfDfFFDfD", "f6c5f49afc5880dd"),
    "qwen2/Q2_K_S/imatrix.gguf": ("fFfBfBfBfBDBfBfBfBfBfBBBfBfBfBfBfBBBfBfBfBfBfBBBfBfBfBfBfBBBfBfBfBfBfBBBfBfBfBfBfBBBfBfBfBfBfBBBfB", "6146c1220d855743"),
    "qwen2/Q3_K_S/imatrix.dat": ("fFfCfCfCfCCCfCfCfCfCfCCCfCfCfCfCfCCCfCfCfCfCfCCCfCfCfCfCfCCCfCfCfCfCfCCCfCfCfCfCfCCCfCfCfCfCfCCCfC", "21b06e708c5c1123"),
    "qwen3/Q4_0/imatrix.gguf": ("Ff00ff00f010f00ff00f000f00ff00f000f00ff00f000f00ff00f000f00ff00f000f00ff00f000f00ff00f000f0", "bf04c13d5b4a4972"),
    "qwen3/Q4_K_M/imatrix.gguf": ("FfDDffDDfFFDfDDffDDfDDDfDDffDDfDDDfDDffDDfFFDfDDffDDfDDDfDDffDDfDDDfDDffDDfFFDfDDffDDfFFDfD", "10b5398be46eaff3"),
    "qwen3/Q2_K_S/imatrix.gguf": ("FfBBffBBfBDBfBBffBBfBBBfBBffBBfBBBfBBffBBfBBBfBBffBBfBBBfBBffBBfBBBfBBffBBfBBBfBBffBBfBBBfB", "1a97e0f1707d0442"),
    "qwen3/Q3_K_S/imatrix.dat": ("FfCCffCCfCCCfCCffCCfCCCfCCffCCfCCCfCCffCCfCCCfCCffCCfCCCfCCffCCfCCCfCCffCCfCCCfCCffCCfCCCfC", "a784bb6aa02fb23d"),
    "gemma/Q4_0/imatrix.gguf": ("fF0f00010f00f00000f00f00000f00f00000f00f00000f00f00000f00f00000f00f00000f0", "37c96153f2381573"),
    "gemma/Q4_K_M/imatrix.gguf": ("fFDfDDFFDfDDfDDDDDfDDfDDDDDfDDfDDFFDfDDfDDDDDfDDfDDDDDfDDfDDFFDfDDfDDFFDfD", "f13476716b1dd405"),
    "gemma/Q2_K_S/imatrix.gguf": ("fFBfBBDDBfBBfBBDBBfBBfBBDBBfBBfBBDBBfBBfBBDBBfBBfBBDBBfBBfBBDBBfBBfBBDBBfB", "94ce844e6d6e9cb8"),
    "gemma/Q3_K_S/imatrix.dat": ("fFCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfCCfCCCCCfC", "e032cb4f96aed7f6"),
    "gemma2/Q4_0/imatrix.gguf": ("fF0f00010f0ff0f00000f0ff0f00000f0ff0f00000f0ff0f00000f0ff0f00000f0ff0f00000f0ff0f00000f0ff", "36a9df1a51deb928"),
    "gemma2/Q4_K_M/imatrix.gguf": ("fFDfDDFFDfDffDfDDDDDfDffDfDDDDDfDffDfDDFFDfDffDfDDDDDfDffDfDDDDDfDffDfDDFFDfDffDfDDFFDfDff", "abb695fe9d1e105c"),
    "gemma2/Q2_K_S/imatrix.gguf": ("fFBfBBBDBfBffBfBBBBBfBffBfBBBBBfBffBfBBBBBfBffBfBBBBBfBffBfBBBBBfBffBfBBBBBfBffBfBBBBBfBff", "d53fa33a48be906a"),
    "gemma2/Q3_K_S/imatrix.dat": ("fFCfCCCCCfCffCfCCCCCfCffCfCCCCCfCffCfCCCCCfCffCfCCCCCfCffCfCCCCCfCffCfCCCCCfCffCfCCCCCfCff", "aa1ef1c36a09962b"),
    "gemma3/Q4_0/imatrix.gguf": ("f80ff00f010f0ff0ff00f000f0ff0ff00f000f0ff0ff00f000f0ff0ff00f000f0ff0ff00f000f0ff0ff00f000f0ff0ff00f000f0ff", "da5b9f6a9e882037"),
    "gemma3/Q4_K_M/imatrix.gguf": ("f85ffD5f8F5f5ff5ffD5f5D5f5ff5ffD5f5D5f5ff5ffD5f8F5f5ff5ffD5f5D5f5ff5ffD5f5D5f5ff5ffD5f8F5f5ff5ffD5f8F5f5ff", "3ae1c279b303ce13"),
    "gemma3/Q2_K_S/imatrix.gguf": ("f80ffB0f5D0f0ff0ffB0f5B0f0ff0ffB0f5B0f0ff0ffB0f5B0f0ff0ffB0f5B0f0ff0ffB0f5B0f0ff0ffB0f5B0f0ff0ffB0f5B0f0ff", "99b6aa80d045a1a2"),
    "gemma3/Q3_K_S/imatrix.dat": ("f80ffC0f0C0f0ff0ffC0f0C0f0ff0ffC0f0C0f0ff0ffC0f0C0f0ff0ffC0f0C0f0ff0ffC0f0C0f0ff0ffC0f0C0f0ff0ffC0f0C0f0ff", "80235053effb1066"),
    "phi3/Q4_0/imatrix.gguf": ("Ff0f001f0f000f0f000f0f000f0f000f0f000f0f000f0f000f0", "46efcd08a92bc5ed"),
    "phi3/Q4_K_M/imatrix.gguf": ("FfDfDFFfDfDDDfDfDDDfDfDFFfDfDDDfDfDDDfDfDFFfDfDFFfD", "03031c05a4c8529f"),
    "phi3/Q2_K_S/imatrix.gguf": ("FfBfBBDfBfBBBfBfBBBfBfBBBfBfBBBfBfBBBfBfBBBfBfBBBfB", "6d55ac13ef1defcb"),
    "phi3/Q3_K_S/imatrix.dat": ("FfCfCCCfCfCCCfCfCCCfCfCCCfCfCCCfCfCCCfCfCCCfCfCCCfC", "f19bfddb9b404f1b"),
    "bert/Q4_0/imatrix.gguf": ("f8ffff0f0fff0f0f1f0fff0f0fff0f0f0f0fff0f0fff0f0f0f0fff0f0fff0f0f0f0fff0f0fff0f0f0f0fff0f0fff0f0f0f0fff0f0fff0f0f0f0fff0f0fff0f0f0f0ff", "8c5bc12d24d46567"),
    "bert/Q4_K_M/imatrix.gguf": ("f8ffff5f5fff5f8fFf5fff5f5fff5f5fDf5fff5f5fff5f5fDf5fff5f5fff5f8fFf5fff5f5fff5f5fDf5fff5f5fff5f5fDf5fff5f5fff5f8fFf5fff5f5fff5f8fFf5ff", "a917bfee679c4fb8"),
    "bert/Q2_K_S/imatrix.gguf": ("f8ffff0f0fff0f0fDf0fff0f0fff0f0fBf0fff0f0fff0f0fBf0fff0f0fff0f0fBf0fff0f0fff0f0fBf0fff0f0fff0f0fBf0fff0f0fff0f0fBf0fff0f0fff0f0fBf0ff", "a2a2cb8ef81aa9c4"),
    "bert/Q3_K_S/imatrix.dat": ("f8ffff0f0fff0f0fCf0fff0f0fff0f0fCf0fff0f0fff0f0fCf0fff0f0fff0f0fCf0fff0f0fff0f0fCf0fff0f0fff0f0fCf0fff0f0fff0f0fCf0fff0f0fff0f0fCf0ff", "8046d93d84c9670f"),
}


def _tiny_imatrix(arch: str) -> Imatrix:
    """Random importance for every 2-D blk.* tensor of the tiny model (as llama-imatrix collects them)."""
    _, spec = tiny_model(arch)
    rng = np.random.default_rng(7)
    w = {n: rng.uniform(0.01, 4, s[-1]).astype(np.float32) for n, s, _ in spec if n.startswith("blk.") and len(s) == 2}
    im = Imatrix.from_weights(w, count=3)
    im.datasets, im.chunk_count, im.chunk_size = ["tiny.txt"], 1, 512
    return im


def _sha16(p: Path) -> str:
    import hashlib

    return hashlib.sha256(p.read_bytes()).hexdigest()[:16]


@pytest.mark.parametrize("arch", ARCHS)
def test_types_equal_llama_quantize(arch):
    """choose_types gives every tensor of the tiny models the type llama-quantize gave it, in its order."""
    m, spec = tiny_model(arch)
    info = ModelInfo.from_metadata(m)
    for key, (want, _) in LLAMA_QUANTIZE_PLAIN.items():
        a, recipe = key.split("/")
        if a == arch:
            got = "".join(_CODE[c.qtype.name] for c in choose_types(spec, recipe, info))
            assert got == want, recipe
    for key, (want, _) in LLAMA_QUANTIZE_IMATRIX.items():
        a, recipe, _f = key.split("/")
        if a == arch:
            got = "".join(_CODE[c.qtype.name] for c in choose_types(spec, recipe, info, has_imatrix=True))
            assert got == want, recipe


def _check_files(tmp_path: Path, arch: str, monkeypatch) -> None:
    src = write_tiny(tmp_path / f"{arch}.gguf", arch)
    if _sha16(src) != LLAMA_QUANTIZE_INPUTS[arch]:
        pytest.skip("the tiny model's random values differ from the recorded ones (numpy's generator changed?)")
    for key, (_, want) in LLAMA_QUANTIZE_PLAIN.items():
        a, recipe = key.split("/")
        if a == arch:
            out = tmp_path / f"{recipe}.gguf"
            quantize_model(src, out, recipe, progress=False)
            assert _sha16(out) == want, recipe
    monkeypatch.chdir(tmp_path)  # llama-quantize records the imatrix path as given: "imatrix.gguf"
    im = _tiny_imatrix(arch)
    save_imatrix("imatrix.gguf", im)
    save_imatrix("imatrix.dat", im, legacy=True)
    for key, (_, want) in LLAMA_QUANTIZE_IMATRIX.items():
        a, recipe, fn = key.split("/")
        if a == arch:
            out = tmp_path / f"{recipe}-im.gguf"
            quantize_model(src, out, recipe, imatrix=fn, progress=False)
            assert _sha16(out) == want, (recipe, fn)


@pytest.mark.parametrize("arch", ["llama", "gemma3", "bert"])
def test_whole_files_equal_recorded_llama_quantize_output(tmp_path, arch, monkeypatch):
    """quantize_model writes the same bytes as llama-quantize, whole file, for every recipe, with and without imatrix."""
    _check_files(tmp_path, arch, monkeypatch)


@pytest.mark.slow  # the other five architectures, 18 files each
@pytest.mark.parametrize("arch", ["qwen2", "qwen3", "gemma", "gemma2", "phi3"])
def test_whole_files_equal_recorded_llama_quantize_output_more(tmp_path, arch, monkeypatch):
    _check_files(tmp_path, arch, monkeypatch)
