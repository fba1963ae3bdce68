"""Hugging Face safetensors checkpoints as a source for whole-model quantization.

The file is memory-mapped and its header parsed directly (8-byte little-endian length, JSON table); no torch.
Tensor names are mapped to GGUF's (``blk.0.attn_q.weight``) with gguf-py's ``TensorNameMap`` for the
architecture the caller names, so llama-quantize's rules (which read GGUF names) apply. Like
``convert_hf_to_gguf.py`` (llama.cpp, MIT), this drops what llama.cpp does not use (BERT's pooler,
``position_ids``), keeps 1-D tensors, norms, position and token-type embeddings in F32, permutes the rows of
LLaMA/Mistral ``q_proj``/``k_proj`` into GGML's rotary layout, and adds 1 to Gemma's norm weights (computed in
the checkpoint's dtype, as torch does). The metadata written is the architecture's hyper-parameters from
``config.json`` beside the checkpoint; no tokenizer, so the output is for pyquant (or for error analysis),
not a file llama.cpp can run — convert with ``convert_hf_to_gguf.py`` for that.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
from gguf import MODEL_ARCH, MODEL_ARCH_NAMES, GGMLQuantizationType, GGUFValueType, get_tensor_name_map

from .gguf_io import GGUFError, Metadata, TensorInfo, tensor_nbytes
from .tensor import QTensor

__all__ = ["SafetensorsModel", "open_safetensors"]

PathLike = str | os.PathLike
T = GGMLQuantizationType
_DTYPES = {"F32": (T.F32, 4), "F16": (T.F16, 2), "BF16": (T.BF16, 2)}
_ARCH_ALIASES = {"mistral": "llama"}  # Mistral 7B-style checkpoints convert to general.architecture "llama"
_F32_NAMES = ("position_embd.weight", "token_types.weight")


def _arch_enum(arch: str) -> MODEL_ARCH:
    for k, v in MODEL_ARCH_NAMES.items():
        if v == arch:
            return k
    known = ", ".join(sorted(MODEL_ARCH_NAMES.values())[:12])
    raise GGUFError(f"unknown architecture {arch!r} (gguf-py knows {known}, …)")


class SafetensorsModel:
    """A safetensors checkpoint seen as a GGUF model: :attr:`infos` with GGUF names, :meth:`tensor`, :attr:`metadata`."""

    def __init__(self, path: PathLike, arch: str, config: dict | None = None):
        self.path = Path(path)
        arch_in = arch.strip().lower()
        self.arch = _ARCH_ALIASES.get(arch_in, arch_in)
        enum = _arch_enum(self.arch)
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(8)
                if len(head) < 8:
                    raise GGUFError(f"{self.path}: too short for a safetensors file ({len(head)} bytes)")
                (n,) = struct.unpack("<Q", head)
                size = os.fstat(fh.fileno()).st_size
                if n > size - 8 or n > 100 * 2**20:
                    raise GGUFError(f"{self.path}: not a safetensors file (header length {n} does not fit the file)")
                raw = fh.read(n)
        except FileNotFoundError:
            raise GGUFError(f"{self.path}: no such file") from None
        except IsADirectoryError:
            raise GGUFError(f"{self.path}: is a directory, expected a .safetensors file") from None
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise GGUFError(f"{self.path}: not a safetensors file (header is not JSON: {e})") from None
        if not isinstance(header, dict):
            raise GGUFError(f"{self.path}: not a safetensors file (header is not a JSON object)")
        self.file_size = size
        data_start = 8 + n
        self._mm = np.memmap(self.path, dtype=np.uint8, mode="r") if size > data_start else np.zeros(0, np.uint8)

        if config is None:
            cfg_path = self.path.with_name("config.json")
            config = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
        self.config = config
        n_layer = int(config.get("num_hidden_layers") or config.get("n_layer") or 0)
        if not n_layer:  # count the layers from the names
            import re

            ids = [int(m.group(1)) for k in header for m in [re.search(r"\.(\d+)\.", k)] if m]
            n_layer = max(ids) + 1 if ids else 0
        self.n_layer = n_layer
        tmap = get_tensor_name_map(enum, max(n_layer, 1))

        self.skipped: list[str] = []
        self._src: dict[str, tuple[str, str, tuple[int, ...], int, int]] = {}  # gguf name -> hf name, dtype, ...
        infos = []
        for hf, spec in header.items():
            if hf == "__metadata__":
                continue
            try:
                dtype, shape, (b, e) = spec["dtype"], tuple(int(s) for s in spec["shape"]), spec["data_offsets"]
            except (KeyError, TypeError, ValueError):
                raise GGUFError(f"{self.path}: malformed header entry for {hf!r}") from None
            if data_start + e > size or b > e:
                raise GGUFError(f"{self.path}: tensor {hf!r} extends past the end of the file (truncated?)")
            name = tmap.get_name(hf.removeprefix("bert."), try_suffixes=(".weight", ".bias"))
            if name is None or dtype not in _DTYPES:
                self.skipped.append(hf)
                continue
            qt, itemsize = _DTYPES[dtype]
            if (e - b) != int(np.prod(shape, dtype=np.int64)) * itemsize:
                raise GGUFError(f"{self.path}: tensor {hf!r} has {e - b} bytes for shape {list(shape)} {dtype}")
            if name in self._src:
                raise GGUFError(f"{self.path}: {hf!r} and {self._src[name][0]!r} both map to {name}")
            self._src[name] = (hf, dtype, shape, data_start + b, e - b)
            out_t = T.F32 if self._keeps_f32(name, shape) else qt
            infos.append(TensorInfo(name, out_t, shape, data_start + b, tensor_nbytes(out_t, shape)))
        if not infos:
            raise GGUFError(
                f"{self.path}: no tensor name maps to architecture {self.arch!r}; is that the right --arch?"
                f" (first names: {', '.join(list(header)[:3])})"
            )
        self.infos: list[TensorInfo] = infos
        self._by_name = {ti.name: ti for ti in infos}
        self.metadata = self._metadata()

    @staticmethod
    def _keeps_f32(name: str, shape: tuple[int, ...]) -> bool:
        return len(shape) <= 1 or name.endswith("_norm.weight") or name in _F32_NAMES

    def _metadata(self) -> Metadata:
        c, a = self.config, self.arch
        m = Metadata()
        m.set("general.architecture", a, GGUFValueType.STRING)
        m.set("general.type", "model", GGUFValueType.STRING)
        m.set("general.name", self.path.parent.name or self.path.stem, GGUFValueType.STRING)
        u32 = GGUFValueType.UINT32
        for key, names in (
            ("context_length", ("max_position_embeddings", "n_positions")),
            ("embedding_length", ("hidden_size", "n_embd")),
            ("feed_forward_length", ("intermediate_size", "n_inner")),
            ("attention.head_count", ("num_attention_heads", "n_head")),
            ("attention.head_count_kv", ("num_key_value_heads",)),
            ("expert_count", ("num_local_experts", "num_experts")),
        ):
            for k in names:
                if isinstance(c.get(k), int):
                    m.set(f"{a}.{key}", int(c[k]), u32)
                    break
        m.set(f"{a}.block_count", int(self.n_layer), u32)
        for k in ("layer_norm_eps", "rms_norm_eps"):
            if isinstance(c.get(k), float):
                key = "attention.layer_norm_epsilon" if k == "layer_norm_eps" else "attention.layer_norm_rms_epsilon"
                m.set(f"{a}.{key}", float(c[k]), GGUFValueType.FLOAT32)
        return m

    # -- the GGUFFile-like interface quantize_model uses --------------------------------------------------
    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self.infos)

    def info(self, name: str) -> TensorInfo:
        return self._by_name[name]

    @property
    def architecture(self) -> str:
        return self.arch

    def _raw(self, name: str) -> tuple[np.ndarray, str, tuple[int, ...]]:
        hf, dtype, shape, off, nb = self._src[name]
        return self._mm[off:off + nb], dtype, shape

    def tensor(self, name_or_info: str | TensorInfo) -> QTensor:
        ti = name_or_info if isinstance(name_or_info, TensorInfo) else self.info(name_or_info)
        raw, dtype, shape = self._raw(ti.name)
        hf = self._src[ti.name][0]
        src_t = _DTYPES[dtype][0]
        if self.arch == "llama" and hf.endswith(("q_proj.weight", "q_proj.bias", "k_proj.weight", "k_proj.bias")):
            n_head = int(self.config.get("num_attention_heads", 0))
            n_kv = int(self.config.get("num_key_value_heads", n_head))
            heads = n_head if "q_proj" in hf else n_kv
            if heads <= 0 or shape[0] % (2 * heads):
                raise GGUFError(f"{self.path}: cannot permute {hf} of shape {list(shape)} for {heads} heads")
            raw = _permute_rows(raw.reshape(shape[0], -1), heads).reshape(-1)
        if self.arch in ("gemma", "gemma2", "gemma3") and ti.name.endswith("norm.weight"):
            x = QTensor(raw, src_t, shape).dequantize()
            x = _round_to(x + np.float32(1), src_t)  # torch adds in the checkpoint's dtype
            return QTensor(x.view(np.uint8), T.F32, shape)
        if ti.qtype == T.F32 and src_t != T.F32:
            x = QTensor(raw, src_t, shape).dequantize()
            return QTensor(x.view(np.uint8), T.F32, shape)
        return QTensor(raw, src_t, shape)

    def __repr__(self) -> str:
        return f"SafetensorsModel({str(self.path)!r}, arch={self.arch!r}, {len(self.infos)} tensors)"


def _permute_rows(rows: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf's LlamaModel.permute on the rows of a (out, in) matrix or a bias."""
    r = rows.shape[0]
    return rows.reshape(n_head, 2, r // n_head // 2, -1).swapaxes(1, 2).reshape(rows.shape)


def _round_to(x: np.ndarray, t: GGMLQuantizationType) -> np.ndarray:
    """Round float32 values to ``t`` (F16/BF16, nearest-even) and back, as a torch op in that dtype does."""
    if t == T.F32:
        return x.astype(np.float32)
    if t == T.F16:
        return x.astype(np.float16).astype(np.float32)
    b = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16
    return b.astype(np.uint32).view(np.float32)


def open_safetensors(path: PathLike, arch: str, config: dict[str, Any] | None = None) -> SafetensorsModel:
    """Open a safetensors checkpoint as a model of architecture ``arch`` (GGUF names, memory-mapped)."""
    return SafetensorsModel(path, arch, config)
