"""The ``pyquant`` command: every subcommand, --json, exit codes, and no tracebacks for user errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V

import pyquant
from pyquant.cli import main
from pyquant.gguf_io import GGUFFile, Metadata, save_gguf
from pyquant.imatrix import Imatrix, save_imatrix

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A 2-layer llama-shaped F16 model (n_embd 256) with tied embeddings."""
    rng = np.random.default_rng(0)
    m = Metadata()
    m.set("general.architecture", "llama", V.STRING)
    m.set("general.name", "tiny", V.STRING)
    m.set("llama.block_count", 2, V.UINT32)
    m.set("llama.attention.head_count", 4, V.UINT32)
    t = {"token_embd.weight": (64, 256), "output_norm.weight": (256,)}
    for i in range(2):
        t.update({f"blk.{i}.attn_norm.weight": (256,), f"blk.{i}.attn_q.weight": (256, 256),
                  f"blk.{i}.attn_k.weight": (256, 256), f"blk.{i}.attn_v.weight": (256, 256),
                  f"blk.{i}.attn_output.weight": (256, 256), f"blk.{i}.ffn_up.weight": (512, 256),
                  f"blk.{i}.ffn_gate.weight": (512, 256), f"blk.{i}.ffn_down.weight": (256, 512),
                  f"blk.{i}.ffn_norm.weight": (256,)})
    tensors = {n: (rng.standard_normal(s) * 0.1).astype(np.float32 if len(s) == 1 else np.float16) for n, s in t.items()}
    return save_gguf(tmp_path_factory.mktemp("cli") / "tiny-f16.gguf", tensors, m)


def test_help_teaches(capsys):
    rc, out, _ = run(capsys, "--help")
    assert rc == 0 and "examples:" in out and "pyquant demo" in out and "exit codes" in out
    for cmd in ("quantize", "inspect", "error-report", "dequantize", "demo"):
        rc, out, _ = run(capsys, cmd, "--help")
        assert rc == 0 and "usage: pyquant " + cmd in out


@pytest.mark.parametrize("argv", [[], ["bogus"], ["quantize", "a.gguf"], ["inspect"], ["quantize", "a", "b", "Q4_K_M",
                                                                                          "--threads", "x"]])
def test_usage_errors_exit_2(capsys, argv):
    rc, _, err = run(capsys, *argv)
    assert rc == 2 and "usage:" in err


def test_inspect(capsys, model):
    rc, out, _ = run(capsys, "inspect", str(model))
    assert rc == 0
    assert "blk.1.ffn_down.weight" in out and "256 x 512" in out and "F16" in out and "total" in out
    rc, out, _ = run(capsys, "--json", "inspect", str(model))
    d = json.loads(out)
    f = GGUFFile(model)
    assert d["totals"]["tensors"] == len(f) and d["totals"]["bytes"] == sum(t.nbytes for t in f.infos)
    assert d["types"]["F16"]["tensors"] == 15 and d["architecture"] == "llama"
    row = {r["name"]: r for r in d["tensors"]}["blk.0.ffn_up.weight"]
    assert row == {"name": "blk.0.ffn_up.weight", "type": "F16", "shape": [512, 256], "bytes": 512 * 256 * 2, "bpw": 16.0}
    rc, out, _ = run(capsys, "inspect", str(model), "--metadata", "-q")
    assert "llama.block_count = 2" in out


def test_quantize_then_refuse_then_force(capsys, model, tmp_path):
    out = tmp_path / "q.gguf"
    rc, so, _ = run(capsys, "quantize", str(model), str(out), "Q4_K_M", "--threads", "1")
    assert rc == 0 and out.exists() and "wrote" in so and "Q6_K" in so
    types = {t.name: t.qtype for t in GGUFFile(out).infos}
    assert types["token_embd.weight"] == T.Q6_K and types["blk.1.attn_v.weight"] == T.Q6_K  # use_more_bits(1, 2)
    before = out.read_bytes()
    rc, _, err = run(capsys, "quantize", str(model), str(out), "Q8_0")
    assert rc == 1 and "exists" in err and "--force" in err and out.read_bytes() == before
    rc, so, _ = run(capsys, "--json", "quantize", str(model), str(out), "Q8_0", "--force")
    d = json.loads(so)
    assert rc == 0 and d["recipe"] == "Q8_0" and {t["to"] for t in d["tensors"] if t["converted"]} == {"Q8_0"}
    assert GGUFFile(out).metadata["general.file_type"] == 7


def test_quantize_dry_run_lists_and_writes_nothing(capsys, model, tmp_path):
    rc, so, _ = run(capsys, "quantize", str(model), str(tmp_path / "d.gguf"), "Q3_K_M", "--dry-run")
    assert rc == 0 and "would write" in so and "blk.0.attn_v.weight" in so and not (tmp_path / "d.gguf").exists()
    rc, so, _ = run(capsys, "quantize", str(model), str(tmp_path / "d.gguf"), "Q4_K", "--pure", "--dry-run",
                    "--tensor-type", "ffn_down=Q8_0")
    assert rc == 0 and "Q8_0" in so and "Q6_K" not in so


def test_user_errors_exit_1_without_traceback(capsys, model, tmp_path):
    raw = model.read_bytes()
    (tmp_path / "trunc.gguf").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "magic.gguf").write_bytes(b"GGML" + raw[4:])
    other = save_imatrix(tmp_path / "other.imatrix", Imatrix.from_weights({"blk.0.mlp.w1": np.ones(256)}))
    cases = [
        (["quantize", str(model), str(tmp_path / "o.gguf"), "Q4_K_X"], "unknown recipe or type 'Q4_K_X'"),
        (["quantize", str(tmp_path / "trunc.gguf"), str(tmp_path / "o.gguf"), "Q8_0"], "truncated"),
        (["inspect", str(tmp_path / "magic.gguf")], "bad magic"),
        (["inspect", str(tmp_path / "missing.gguf")], "no such file"),
        (["quantize", str(model), str(tmp_path / "o.gguf"), "Q4_K_M", "--imatrix", str(other)], "another model"),
        (["quantize", str(model), str(tmp_path / "o.gguf"), "Q4_K_M", "--imatrix", str(model)], "is a model file"),
        (["quantize", str(model), str(tmp_path / "o.gguf"), "Q4_K_M", "--threads", "0"], "--threads must be"),
        (["quantize", str(model), str(tmp_path / "no" / "o.gguf"), "Q8_0"], "does not exist"),
        (["quantize", str(tmp_path / "x.safetensors"), str(tmp_path / "o.gguf"), "Q8_0"], "no such file"),
        (["quantize", str(model), str(tmp_path / "o.gguf"), "Q8_0", "--output-tensor-type", "Q9"], "unknown quantization type"),
        (["error-report", str(model), "--reference", str(model)], "no quantized tensor"),
    ]
    for argv, msg in cases:
        rc, _, err = run(capsys, *argv)
        assert rc == 1 and msg in err and err.startswith("pyquant: error: "), (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["magic.gguf", "other.imatrix", "trunc.gguf"]
    rc, so, _ = run(capsys, "--json", "inspect", str(tmp_path / "missing.gguf"))
    assert rc == 1 and json.loads(so)["exit_code"] == 1


def test_ctrl_c_exits_130_and_leaves_nothing(capsys, model, tmp_path, monkeypatch):
    import pyquant.quant as pq

    real, n = pq.quantize_array, {"calls": 0}

    def interrupt(*a, **k):
        n["calls"] += 1
        if n["calls"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(pq, "quantize_array", interrupt)
    rc, _, err = run(capsys, "quantize", str(model), str(tmp_path / "o.gguf"), "Q8_0")
    assert rc == 130 and "interrupted" in err and list(tmp_path.iterdir()) == []


def test_dequantize(capsys, model, tmp_path):
    q = tmp_path / "q.gguf"
    assert run(capsys, "quantize", str(model), str(q), "Q5_K_M")[0] == 0
    rc, so, _ = run(capsys, "dequantize", str(q), str(tmp_path / "f.gguf"))
    assert rc == 0 and "converted to F32" in so
    a, b = GGUFFile(q), GGUFFile(tmp_path / "f.gguf")
    assert {t.qtype for t in b.infos} == {T.F32} and b.metadata["general.file_type"] == 0
    for ti in a.infos:
        assert np.array_equal(b.tensor(ti.name).dequantize(), a.tensor(ti).dequantize()), ti.name
    rc, _, err = run(capsys, "dequantize", str(q), str(tmp_path / "f.gguf"))
    assert rc == 1 and "exists" in err


def test_error_report(capsys, model, tmp_path):
    csv_path, png = tmp_path / "e.csv", tmp_path / "e.png"
    rc, so, err = run(capsys, "error-report", str(model), "--type", "Q4_K_M", "--type", "Q8_0", "--csv", str(csv_path),
                      "--png", str(png))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert rc == 1 and "matplotlib" in err
        return
    assert rc == 0 and "SNR dB" in so and "Q4_K_M" in so and "Q8_0" in so
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 2 * 15 and {r["recipe"] for r in rows} == {"Q4_K_M", "Q8_0"}
    q8 = [r for r in rows if r["recipe"] == "Q8_0"]
    # Q8_0 of N(0, 0.1²) values: 8.5 bpw, SNR about 6.02·8 - 10·log10(E[max²]/E[x²]·1/3) ~ 40 dB
    assert all(r["type"] == "Q8_0" and float(r["bpw"]) == 8.5 and 38 < float(r["snr_db"]) < 46 for r in q8)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rc, so, _ = run(capsys, "--json", "error-report", str(model), "--type", "Q8_0", "--summary")
    d = json.loads(so)
    allrow = [r for r in d["summary"] if r["type"] == "all"][0]
    assert allrow["n"] == sum(r["n"] for r in d["tensors"]) and allrow["bpw"] == 8.5
    # a quantized file against its float original
    q = tmp_path / "q.gguf"
    main(["quantize", str(model), str(q), "Q4_0", "-q"])
    rc, so, err = run(capsys, "error-report", str(q))
    assert rc == 1 and "--reference" in err
    rc, so, _ = run(capsys, "--json", "error-report", str(q), "--reference", str(model))
    d = json.loads(so)
    assert rc == 0 and {r["type"] for r in d["tensors"]} == {"Q4_0", "Q6_K"}
    # the reference comparison and the in-memory measurement agree (same bytes, same float source)
    rc, so2, _ = run(capsys, "--json", "error-report", str(model), "--type", "Q4_0")
    a = {r["name"]: r["rmse"] for r in d["tensors"]}
    b = {r["name"]: r["rmse"] for r in json.loads(so2)["tensors"]}
    assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-12) for k in a)


def test_demo_two_recipes(capsys):
    from pyquant.data import MissingModelError, minilm_path

    try:
        minilm_path()
    except MissingModelError as e:
        pytest.skip(str(e))
    rc, so, err = run(capsys, "demo", "--type", "Q8_0", "--type", "Q4_K_M")
    assert rc == 0 and "all-MiniLM-L6-v2" in so and "Q4_K_M" in so and "per tensor type" in so
    rc, so, _ = run(capsys, "--json", "demo", "--type", "Q8_0")
    d = json.loads(so)
    (r,) = d["recipes"]
    assert r["recipe"] == "Q8_0" and r["quantized_bpw"] == 8.5 and r["snr_db"] > 35


@pytest.mark.slow  # seven recipes over MiniLM
def test_demo_default(capsys):
    from pyquant.data import MissingModelError, minilm_path

    try:
        minilm_path()
    except MissingModelError as e:
        pytest.skip(str(e))
    rc, so, _ = run(capsys, "--json", "demo")
    d = json.loads(so)
    assert rc == 0 and [r["recipe"] for r in d["recipes"]] == list(pyquant.cli.DEMO_RECIPES)
    snr = {r["recipe"]: r["snr_db"] for r in d["recipes"]}
    assert snr["Q8_0"] > snr["Q6_K"] > snr["Q5_K_M"] > snr["Q4_K_M"] > snr["Q3_K_M"] > snr["Q2_K"]


def test_python_dash_m_entry_point(model):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "pyquant", "--json", "inspect", str(model)], capture_output=True,
                       text=True, env=env, cwd=REPO)
    assert p.returncode == 0 and json.loads(p.stdout)["totals"]["tensors"] == 20
    p = subprocess.run([sys.executable, "-m", "pyquant", "inspect", "/nonexistent.gguf"], capture_output=True,
                       text=True, env=env, cwd=REPO)
    assert p.returncode == 1 and "Traceback" not in p.stderr and "no such file" in p.stderr
