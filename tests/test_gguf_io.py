"""GGUF reading and writing: the real Gemma 3 file against gguf-py, round trips, and every bad input."""

from __future__ import annotations

import errno
import filecmp
import os
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V

import pyquant
from pyquant import gguf_io
from pyquant.gguf_io import GGUFError, GGUFFile, GGUFSink, Metadata, RawTensor, _Reader, load_gguf, save_gguf


@pytest.fixture(scope="module")
def gemma_path() -> Path:
    from pyquant.data import MissingModelError, gemma_path

    try:
        return gemma_path()
    except MissingModelError as e:
        pytest.skip(str(e))


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def _file_offset(part: np.ndarray, reader: gguf.GGUFReader) -> int:
    return part.__array_interface__["data"][0] - reader.data.__array_interface__["data"][0]


def _assert_same_field(ours: gguf.ReaderField, ours_reader: _Reader, plain: gguf.ReaderField,
                       plain_reader: gguf.GGUFReader) -> None:
    """Our reader's field holds what plain GGUFReader's does: name, offset, types, contents (whole, by index,
    by slice); its parts tile the same bytes of the file in order, each a view of the file where it lies;
    the key/type/count parts are equal and the element parts have gguf-py's dtypes."""
    k = plain.name
    assert isinstance(ours, gguf.ReaderField), k
    assert (ours.name, ours.offset, ours.types) == (plain.name, plain.offset, plain.types), k
    for f, r in ((ours, ours_reader), (plain, plain_reader)):
        at = f.offset if not k.startswith("GGUF.") else _file_offset(f.parts[0], r)
        for part in f.parts:
            assert isinstance(part, np.ndarray), k
            assert part.size == 0 or _file_offset(part, r) == at, k  # an empty view has no address to check
            at += part.nbytes
    assert sum(p.nbytes for p in ours.parts) == sum(p.nbytes for p in plain.parts), k
    want = plain.contents()
    assert ours.contents() == want, k
    if plain.types[0] != V.ARRAY:
        assert len(ours.parts) == len(plain.parts) and ours.data == plain.data, k
        assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(ours.parts, plain.parts, strict=True)), k
        return
    head = 5 if not k.startswith("GGUF.") else 0  # key length, key, type, element type, count
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(ours.parts[:head], plain.parts[:head], strict=True)), k
    assert {ours.parts[i].dtype for i in ours.data} == {plain.parts[i].dtype for i in plain.data}, k
    n = len(want)
    for sel in [0, 1, n - 1, -1, slice(1, None), slice(None, None, 3), slice(n // 2, n // 2 + 2)]:
        if isinstance(sel, int) and not -n <= sel < n:
            continue
        assert ours.contents(sel) == plain.contents(sel), (k, sel)


def _assert_same_reader(ours: _Reader, plain: gguf.GGUFReader) -> None:
    assert list(ours.fields) == list(plain.fields)
    for k, f in plain.fields.items():
        _assert_same_field(ours.fields[k], ours, f, plain)
    assert (ours.alignment, ours.data_offset) == (plain.alignment, plain.data_offset)
    assert len(ours.tensors) == len(plain.tensors)
    for a, b in zip(ours.tensors, plain.tensors, strict=True):
        assert (a.name, a.tensor_type, a.shape.tolist(), a.n_elements, a.n_bytes, a.data_offset) == \
            (b.name, b.tensor_type, b.shape.tolist(), b.n_elements, b.n_bytes, b.data_offset)
        assert a.data.dtype == b.data.dtype and a.data.shape == b.data.shape, a.name
        assert _file_offset(a.data, ours) == _file_offset(b.data, plain) == a.data_offset, a.name
        assert not a.data.flags.writeable and not a.data.flags.owndata, a.name


# ---------------------------------------------------------------------------------------------------------
# the real file


@pytest.mark.slow  # gguf-py's reader and numpy dequantizers: ~40 s of CPU
def test_gemma_every_tensor_and_key_matches_gguf_py(gemma_path):
    """Every tensor of the Gemma 3 270M Q4_K_M file: type, shape, bytes equal gguf-py's reader, and
    dequantizes bit-identically to gguf.quants.dequantize; every metadata key has gguf-py's value and type."""
    ref = gguf.GGUFReader(gemma_path)
    tensors, meta = load_gguf(gemma_path)
    assert list(tensors) == [t.name for t in ref.tensors]
    types = set()
    for rt in ref.tensors:
        t = tensors[rt.name]
        assert t.qtype == rt.tensor_type
        # gguf stores ne[0] (the row length) first; QTensor shapes are numpy-ordered
        assert t.shape == tuple(int(d) for d in reversed(rt.shape.tolist()))
        assert np.array_equal(t.data.reshape(-1), rt.data.reshape(-1).view(np.uint8))
        ours = t.dequantize()
        theirs = gguf.quants.dequantize(rt.data, rt.tensor_type).reshape(t.shape)
        assert np.array_equal(_bits(ours), _bits(theirs)), rt.name
        types.add(t.qtype)
    assert types == {T.F32, T.Q8_0, T.Q5_0, T.Q4_K, T.Q6_K}
    fields = {k: f for k, f in ref.fields.items() if not k.startswith("GGUF.")}
    assert list(meta) == list(fields)
    for k, f in fields.items():
        vt, sub = meta.types[k]
        assert vt == f.types[0], k
        if vt == V.ARRAY:
            assert sub == f.types[-1], k
            want = f.contents()
            got = meta[k]
            assert (list(got) if sub == V.STRING else got.tolist()) == want, k
        else:
            assert meta[k] == f.contents(), k
    # the reader underneath: every field and tensor as plain GGUFReader has it
    _assert_same_reader(_Reader(gemma_path), ref)


def test_gemma_load_goes_through_gguf_reader_in_few_views(gemma_path):
    """Plain GGUFReader takes ~20 s on this file: one numpy view per vocabulary entry (2 x 262144 for the tokens).
    Ours keeps each array field in a few views of the mapping, which is what makes it fast (0.3-0.5 s here; timing
    belongs in benchmarks, so the test checks the structure)."""
    f = GGUFFile(gemma_path)
    assert isinstance(f.reader, gguf.GGUFReader)
    tokens = f.reader.get_field("tokenizer.ggml.tokens")
    assert len(tokens.contents()) == 262144 and len(tokens.parts) < 16, len(tokens.parts)
    emb = f.raw("token_embd.weight")
    assert np.shares_memory(emb, f.reader.data) and _file_offset(emb, f.reader) == f.info("token_embd.weight").offset


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
def test_gemma_load_is_memory_mapped(gemma_path):
    """Loading the 250 MB file reads only its header: tensor bytes stay views of the mapping until used."""
    before = _rss()
    tensors, meta = load_gguf(gemma_path)
    grown = _rss() - before
    # the header (6.5 MB, mostly the 262144-token vocabulary) and its Python strings, not 235 MB of tensors
    assert grown < 64 * 2**20, grown
    emb = tensors["token_embd.weight"]
    assert emb.nbytes == 262144 * 640 // 32 * 34
    assert not emb.data.flags.writeable and not emb.data.flags.owndata
    assert len(meta["tokenizer.ggml.tokens"]) == 262144


def test_gemma_write_read_is_byte_identical(gemma_path, tmp_path):
    tensors, meta = load_gguf(gemma_path)
    out = save_gguf(tmp_path / "copy.gguf", tensors, meta)
    assert filecmp.cmp(gemma_path, out, shallow=False)
    assert [p.name for p in tmp_path.iterdir()] == ["copy.gguf"]


# ---------------------------------------------------------------------------------------------------------
# synthetic round trips


def _all_value_types() -> Metadata:
    m = Metadata()
    m.set("general.architecture", "llama", V.STRING)
    for vt, val in [(V.UINT8, 255), (V.INT8, -128), (V.UINT16, 65535), (V.INT16, -32768), (V.UINT32, 2**32 - 1),
                    (V.INT32, -(2**31)), (V.UINT64, 2**64 - 1), (V.INT64, -(2**63)), (V.FLOAT32, 0.1),
                    (V.FLOAT64, 0.1), (V.BOOL, True), (V.STRING, "héllo ✓")]:
        m.set(f"t.{vt.name.lower()}", val, vt)
    m.set("t.empty_string", "", V.STRING)
    m.set("t.arr_f32", np.array([1.5, -2.0, np.float32(0.1)], dtype=np.float32), V.ARRAY, V.FLOAT32)
    m.set("t.arr_i64", np.array([-1, 2**40], dtype=np.int64), V.ARRAY, V.INT64)
    m.set("t.arr_bool", np.array([True, False]), V.ARRAY, V.BOOL)
    m.set("t.arr_str", ["a", "", "ü"], V.ARRAY, V.STRING)
    m.set("t.arr_empty", [], V.ARRAY, V.UINT32)
    m.set("t.arr_nested", [np.array([1, 2], dtype=np.int32), np.array([3], dtype=np.int32)], V.ARRAY, V.ARRAY)
    return m


def _tensors(rng) -> dict:
    out = {}
    for i, t in enumerate(pyquant.cpu.available()):
        if t in (T.Q8_1, T.Q8_K):  # dot-product operand types, never in files
            continue
        bs = pyquant.layout(t).block_size
        shape = [(3, 256), (2, 2, 512), (256,), (2, 1, 2, 256)][i % 4] if bs == 256 else [(5, 64), (96,), (2, 3, 32)][i % 3]
        out[f"w.{t.name}"] = pyquant.quantize(rng.standard_normal(shape).astype(np.float32), t)
    out["ids.i32"] = RawTensor(np.arange(6, dtype=np.int32).view(np.uint8), T.I32, (2, 3))
    out["raw.iq2_xxs"] = RawTensor(rng.integers(0, 256, 2 * 66, dtype=np.uint8), T.IQ2_XXS, (2, 256))
    out["np.f16"] = rng.standard_normal((4, 8)).astype(np.float16)
    return out


def test_roundtrip_every_type_and_value_type(tmp_path):
    rng = np.random.default_rng(0)
    tensors, meta = _tensors(rng), _all_value_types()
    p = save_gguf(tmp_path / "x.gguf", tensors, meta)
    got, gmeta = load_gguf(p)
    assert list(got) == list(tensors)
    for name, t in tensors.items():
        g = got[name]
        if isinstance(t, np.ndarray):
            assert g.qtype == T.F16 and g.shape == t.shape
            assert np.array_equal(g.dequantize(), t.astype(np.float32))
            continue
        assert type(g) is type(t) and g.qtype == t.qtype and g.shape == t.shape, name
        assert np.array_equal(g.data.reshape(-1), t.data.reshape(-1)), name
    assert list(gmeta) == list(meta)
    for k in meta:
        assert gmeta.types[k] == meta.types[k], k
        a, b = meta[k], gmeta[k]
        if k == "t.arr_nested":
            assert [list(x) for x in a] == [list(x) for x in b]
        elif meta.types[k] == (V.ARRAY, V.STRING):
            assert a == b, k
        elif meta.types[k][0] == V.ARRAY:
            assert np.asarray(a).tolist() == b.tolist(), k
        elif meta.types[k][0] == V.FLOAT32:
            assert b == float(np.float32(a)), k  # stored as float32
        else:
            assert a == b and type(a) is type(b), k

    # gguf-py reads what we wrote, with the same values and tensor bytes
    ref = gguf.GGUFReader(p)
    assert ref.fields["t.float64"].contents() == 0.1 and ref.fields["t.arr_str"].contents() == ["a", "", "ü"]
    for rt in ref.tensors:
        assert rt.tensor_type == got[rt.name].qtype
        assert tuple(reversed(rt.shape.tolist())) == got[rt.name].shape
        assert np.array_equal(rt.data.reshape(-1).view(np.uint8), got[rt.name].data.reshape(-1))


def _every_field() -> Metadata:
    m = _all_value_types()
    for vt, dt in [(V.UINT8, np.uint8), (V.INT8, np.int8), (V.UINT16, np.uint16), (V.INT16, np.int16),
                   (V.UINT32, np.uint32), (V.INT32, np.int32), (V.UINT64, np.uint64), (V.INT64, np.int64),
                   (V.FLOAT32, np.float32), (V.FLOAT64, np.float64)]:
        info = np.iinfo(dt) if np.issubdtype(dt, np.integer) else np.finfo(dt)
        m.set(f"a.{vt.name.lower()}", np.array([info.min, 0, 1, info.max, 7], dtype=dt), V.ARRAY, vt)
    m.set("a.one", np.array([3], dtype=np.int16), V.ARRAY, V.INT16)
    m.set("a.bools", np.array([False, True, True]), V.ARRAY, V.BOOL)
    m.set("a.strings", ["", "x", "héllo ✓", "", "a" * 300, "\x00nul"], V.ARRAY, V.STRING)
    m.set("a.no_strings", [], V.ARRAY, V.STRING)
    m.set("a.no_floats", np.zeros(0, np.float32), V.ARRAY, V.FLOAT32)
    m.set("a.nested_str", [["a", "bc"], ["", "d", "e"]], V.ARRAY, V.ARRAY)
    m.set("a.nested_empty", [np.zeros(0, np.int32), np.array([5, 6], np.int32)], V.ARRAY, V.ARRAY)
    m.set("a.nested_deep", [[np.array([1.5], np.float32), np.array([2.5, 3.5], np.float32)],
                            [np.array([4.5], np.float32)]], V.ARRAY, V.ARRAY)
    m.set("z.after_arrays", "end", V.STRING)
    return m


def test_reader_fields_match_plain_gguf_reader(tmp_path):
    """Our GGUFReader subclass against gguf-py's own, field by field and tensor by tensor, on every value type
    (scalars, arrays of every scalar type, bool, string, empty and nested arrays) and every tensor type."""
    meta = _every_field()
    p = save_gguf(tmp_path / "every.gguf", _tensors(np.random.default_rng(3)), meta)
    ours, plain = _Reader(p), gguf.GGUFReader(p)
    _assert_same_reader(ours, plain)
    assert type(ours.fields["a.strings"]).contents is not gguf.ReaderField.contents  # the packed layout is used
    assert len(ours.fields["a.strings"].parts) == 6 and len(plain.fields["a.strings"].parts) == 5 + 2 * 6
    # and GGUFFile's metadata from those fields
    got = GGUFFile(p).metadata
    assert list(got) == list(meta) and got.types == meta.types
    for k in [k for k in meta if k.startswith("a.")]:
        if meta.types[k][1] in (V.STRING, V.ARRAY):
            assert repr(got[k]) == repr(meta[k]), k
        else:
            assert np.array_equal(got[k], meta[k]) and got[k].dtype == meta[k].dtype, k
            assert not got[k].flags.writeable, k
    assert got["a.nested_empty"][0].dtype == np.int32 and got["a.nested_empty"][0].size == 0


def test_plain_dict_metadata_gets_inferred_types(tmp_path):
    m = {"general.architecture": "bert", "a.count": 7, "a.neg": -3, "a.big": 2**40, "a.eps": 1e-6,
         "a.flag": False, "a.list": [1, 2, 3], "a.names": ["x", "y"]}
    p = save_gguf(tmp_path / "m.gguf", {"w": np.zeros((2, 4), np.float32)}, m)
    _, got = load_gguf(p)
    assert got.types["a.count"] == (V.UINT32, None) and got.types["a.neg"] == (V.INT32, None)
    assert got.types["a.big"] == (V.UINT64, None) and got.types["a.eps"] == (V.FLOAT32, None)
    assert got.types["a.list"] == (V.ARRAY, V.UINT32) and got["a.names"] == ["x", "y"]
    assert got["a.eps"] == float(np.float32(1e-6)) and got["a.flag"] is False


def test_custom_alignment_is_honoured(tmp_path):
    m = Metadata()
    m.set("general.alignment", 64, V.UINT32)
    tensors = {"a": np.ones(3, np.float32), "b": np.ones((2, 5), np.float32)}
    p = save_gguf(tmp_path / "al.gguf", tensors, m)
    f = GGUFFile(p)
    assert f.alignment == 64 and all(ti.offset % 64 == 0 for ti in f.infos)
    ref = gguf.GGUFReader(p)
    assert [t.data_offset for t in ref.tensors] == [ti.offset for ti in f.infos]


def test_no_tensors_and_no_metadata(tmp_path):
    p = save_gguf(tmp_path / "empty.gguf", {}, None)
    f = GGUFFile(p)
    assert len(f) == 0 and len(f.metadata) == 0 and f.version == 3
    assert len(gguf.GGUFReader(p).tensors) == 0


def test_streamed_rows_equal_whole_tensor_write(tmp_path):
    rng = np.random.default_rng(1)
    q = pyquant.quantize(rng.standard_normal((64, 256)).astype(np.float32), "Q4_K")
    with GGUFSink(tmp_path / "a.gguf", None, [("w", T.Q4_K, q.shape)]) as s:
        s.write("w", q)
    with GGUFSink(tmp_path / "b.gguf", None, [("w", T.Q4_K, q.shape)]) as s:
        s.write_rows("w", (q.data[i:i + 7] for i in range(0, 64, 7)))
    assert filecmp.cmp(tmp_path / "a.gguf", tmp_path / "b.gguf", shallow=False)


def test_sink_rejects_wrong_order_and_sizes(tmp_path):
    a, b = np.zeros((2, 32), np.float32), np.zeros(5, np.float32)
    with pytest.raises(ValueError, match="declared order"):
        with GGUFSink(tmp_path / "o.gguf", None, [("a", T.F32, a.shape), ("b", T.F32, b.shape)]) as s:
            s.write("b", b)
    with pytest.raises(ValueError, match="takes 256 bytes"):
        with GGUFSink(tmp_path / "o.gguf", None, [("a", T.F32, a.shape)]) as s:
            s.write("a", b)
    with pytest.raises(ValueError, match="not written"):
        with GGUFSink(tmp_path / "o.gguf", None, [("a", T.F32, a.shape), ("b", T.F32, b.shape)]) as s:
            s.write("a", a)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------
# bad input files


@pytest.fixture(scope="module")
def small_file(tmp_path_factory) -> Path:
    rng = np.random.default_rng(2)
    m = Metadata()
    m.set("general.architecture", "llama", V.STRING)
    m.set("tokenizer.ggml.tokens", ["a", "bb", "ccc"], V.ARRAY, V.STRING)
    tensors = {"w": pyquant.quantize(rng.standard_normal((4, 64)).astype(np.float32), "Q8_0"),
               "n": rng.standard_normal(64).astype(np.float32)}
    return save_gguf(tmp_path_factory.mktemp("small") / "small.gguf", tensors, m)


def _layout(p: Path) -> dict:
    """Byte offsets of the parts of a small file (header 24 bytes, then kv, tensor infos, data)."""
    f = GGUFFile(p)
    return {"data": f.data_offset, "first_tensor": f.infos[0].offset, "size": f.file_size}


def test_truncated_anywhere_is_a_clear_error(small_file, tmp_path):
    raw = small_file.read_bytes()
    parts = _layout(small_file)
    assert 24 < parts["data"] <= parts["first_tensor"] < parts["size"] == len(raw)
    for cut in range(1, len(raw)):  # every length short of the whole file: header, key/values, tensor table, data
        p = tmp_path / f"cut{cut}.gguf"
        p.write_bytes(raw[:cut])
        with pytest.raises(GGUFError) as e:
            GGUFFile(p)
        msg = str(e.value)
        assert msg.startswith(f"{p}: truncated or incomplete GGUF file: "), (cut, msg)
        assert "extends past the end" in msg or "too short" in msg or "the file ends at byte" in msg, (cut, msg)
        p.unlink()
    # every cut inside the tensor data names the tensor and says how far the file falls short
    p = tmp_path / "cutdata.gguf"
    p.write_bytes(raw[: len(raw) - 1])
    with pytest.raises(GGUFError, match=r"truncated.*tensor 'n'.*extends past the end"):
        GGUFFile(p)


def test_corrupt_headers(small_file, tmp_path):
    raw = bytearray(small_file.read_bytes())
    cases = {
        "magic": (raw[:0] + b"GGUX" + raw[4:], "bad magic"),
        "version": (raw[:4] + (7).to_bytes(4, "little") + raw[8:], "unsupported GGUF version 7"),
        "bigendian": (raw[:4] + (3).to_bytes(4, "big") + raw[8:], "big-endian"),
        "counts": (raw[:8] + (10**12).to_bytes(8, "little") + raw[16:], "too short for"),
    }
    f = GGUFFile(small_file)
    # the first tensor info: name string, n_dims, ne..., type, offset; patch its type to an unknown id
    name = f.infos[0].name.encode()
    pos = bytes(raw).index(len(name).to_bytes(8, "little") + name) + 8 + len(name)
    n_dims = int.from_bytes(raw[pos:pos + 4], "little")
    tpos = pos + 4 + 8 * n_dims
    bad_type = bytearray(raw)
    bad_type[tpos:tpos + 4] = (999).to_bytes(4, "little")
    cases["tensor type"] = (bad_type, "corrupt GGUF file: tensor 'w' has unknown GGML type id 999")
    bad_dims = bytearray(raw)
    bad_dims[pos:pos + 4] = (9).to_bytes(4, "little")
    cases["dims"] = (bad_dims, r"corrupt GGUF file: .*9 dimensions.*tensor info #0, 'w'")
    bad_dims2 = bytearray(raw)
    bad_dims2[pos:pos + 4] = (2**32 - 1).to_bytes(4, "little")
    cases["dims huge"] = (bad_dims2, "4294967295 dimensions")
    bad_off = bytearray(raw)
    bad_off[tpos + 4:tpos + 12] = (3).to_bytes(8, "little")
    cases["offset"] = (bad_off, "corrupt GGUF file: tensor 'w': data offset 3 is not a multiple of the alignment 32")
    far_off = bytearray(raw)
    far_off[tpos + 4:tpos + 12] = (2**40).to_bytes(8, "little")
    cases["offset past the end"] = (far_off, r"truncated.*tensor 'w' \(Q8_0, 272 bytes at byte \d+\) extends past the end")
    bad_ne = bytearray(raw)
    bad_ne[pos + 4:pos + 12] = (2**63).to_bytes(8, "little")
    cases["shape"] = (bad_ne, "corrupt GGUF file: tensor 'w' has an impossible shape")
    bad_row = bytearray(raw)
    bad_row[pos + 4:pos + 12] = (65).to_bytes(8, "little")
    cases["row"] = (bad_row, "tensor 'w': row length 65 is not a multiple of Q8_0's block size 32")
    # the first key's value type
    key = b"general.architecture"
    kpos = bytes(raw).index(len(key).to_bytes(8, "little") + key) + 8 + len(key)
    bad_kv = bytearray(raw)
    bad_kv[kpos:kpos + 4] = (77).to_bytes(4, "little")
    cases["kv type"] = (bad_kv, r"corrupt GGUF file: unknown value type 77 \(in key/value #0, 'general.architecture'\)")
    bad_utf8 = bytearray(raw)
    bad_utf8[kpos - len(key):kpos - len(key) + 2] = b"\xff\xfe"
    cases["utf8"] = (bad_utf8, "not valid UTF-8")
    # the string array: element type, count, one of its strings
    akey = b"tokenizer.ggml.tokens"
    apos = bytes(raw).index(len(akey).to_bytes(8, "little") + akey) + 8 + len(akey) + 4
    bad_at = bytearray(raw)
    bad_at[apos:apos + 4] = (55).to_bytes(4, "little")
    cases["array type"] = (bad_at, r"unknown array element type 55 \(in key/value #1, 'tokenizer.ggml.tokens'\)")
    bad_n = bytearray(raw)
    bad_n[apos + 4:apos + 12] = (2**60).to_bytes(8, "little")
    cases["array count"] = (bad_n, r"truncated.*too short for the \d+ strings.*'tokenizer.ggml.tokens'")
    bad_s = bytearray(raw)
    bad_s[bytes(raw).index(b"ccc")] = 0xFF
    cases["array string"] = (bad_s, "corrupt GGUF file: a string of key 'tokenizer.ggml.tokens' is not valid UTF-8")
    for what, (data, msg) in cases.items():
        p = tmp_path / f"{what.replace(' ', '_')}.gguf"
        p.write_bytes(bytes(data))
        with pytest.raises(GGUFError, match=msg) as e:
            GGUFFile(p)
        assert str(p) in str(e.value), what


def test_bad_alignment(tmp_path):
    m = Metadata()
    m.set("general.alignment", 64, V.UINT32)
    raw = save_gguf(tmp_path / "al.gguf", {"a": np.ones(3, np.float32)}, m).read_bytes()
    key = b"general.alignment"
    vpos = raw.index(len(key).to_bytes(8, "little") + key) + 8 + len(key) + 4
    for value, msg in [(48, "general.alignment 48 is not a power of two"), (0, "general.alignment 0 is not a power")]:
        p = tmp_path / f"al{value}.gguf"
        p.write_bytes(raw[:vpos] + value.to_bytes(4, "little") + raw[vpos + 4:])
        with pytest.raises(GGUFError, match=f"corrupt GGUF file: {msg}") as e:
            GGUFFile(p)
        assert str(p) in str(e.value)
    p = tmp_path / "al_type.gguf"  # a UINT64 alignment (8 bytes where 4 were: the rest of the file shifts)
    p.write_bytes(raw[:vpos - 4] + int(V.UINT64).to_bytes(4, "little") + (64).to_bytes(8, "little") + raw[vpos + 4:])
    with pytest.raises(GGUFError, match="general.alignment must be a UINT32"):
        GGUFFile(p)


def test_missing_empty_and_directory(tmp_path):
    with pytest.raises(GGUFError, match="no such file"):
        load_gguf(tmp_path / "nope.gguf")
    (tmp_path / "empty.gguf").write_bytes(b"")
    with pytest.raises(GGUFError, match="empty"):
        load_gguf(tmp_path / "empty.gguf")
    with pytest.raises(GGUFError, match="is a directory"):
        load_gguf(tmp_path)


def test_duplicate_key_and_tensor_names_are_refused(tmp_path):
    m = Metadata()
    m.set("k", 1, V.UINT32)
    m.set("j", 2, V.UINT32)
    p = save_gguf(tmp_path / "d.gguf", {"aa": np.zeros(2, np.float32), "bb": np.zeros(2, np.float32)}, m)
    raw = p.read_bytes()
    dup_key = raw.replace(b"\x01\x00\x00\x00\x00\x00\x00\x00j", b"\x01\x00\x00\x00\x00\x00\x00\x00k", 1)
    (tmp_path / "dk.gguf").write_bytes(dup_key)
    with pytest.raises(GGUFError, match="duplicate metadata key 'k'"):
        GGUFFile(tmp_path / "dk.gguf")
    (tmp_path / "dt.gguf").write_bytes(raw.replace(b"bb", b"aa", 1))
    with pytest.raises(GGUFError, match="duplicate tensor name 'aa'"):
        GGUFFile(tmp_path / "dt.gguf")


# ---------------------------------------------------------------------------------------------------------
# writing: refusals, full disk, interruption


def test_existing_output_is_refused_unless_force(tmp_path):
    p = tmp_path / "o.gguf"
    p.write_bytes(b"keep me")
    with pytest.raises(GGUFError, match="exists.*force"):
        save_gguf(p, {"w": np.zeros(4, np.float32)})
    assert p.read_bytes() == b"keep me"
    save_gguf(p, {"w": np.zeros(4, np.float32)}, force=True)
    assert load_gguf(p)[0]["w"].shape == (4,)
    with pytest.raises(GGUFError, match="does not exist"):
        save_gguf(tmp_path / "no" / "dir.gguf", {})


def _interrupting_writer(monkeypatch, exc: BaseException, after: int):
    calls = {"n": 0}
    real = gguf_io._Writer.write_tensor_data

    def boom(self, tensor, *a, **k):
        calls["n"] += 1
        if calls["n"] > after:
            raise exc
        return real(self, tensor, *a, **k)

    monkeypatch.setattr(gguf_io._Writer, "write_tensor_data", boom)


def _three() -> dict:
    return {f"t{i}": np.full((8, 32), i, np.float32) for i in range(3)}


def test_full_disk_leaves_no_file(tmp_path, monkeypatch):
    _interrupting_writer(monkeypatch, OSError(errno.ENOSPC, "No space left on device"), after=1)
    with pytest.raises(GGUFError, match="disk full"):
        save_gguf(tmp_path / "o.gguf", _three())
    assert list(tmp_path.iterdir()) == []


def test_full_disk_is_detected_before_writing(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 100, 100))
    with pytest.raises(GGUFError, match="not enough disk space"):
        save_gguf(tmp_path / "o.gguf", _three())
    assert list(tmp_path.iterdir()) == []


def test_keyboard_interrupt_mid_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    old = tmp_path / "o.gguf"
    old.write_bytes(b"previous")
    _interrupting_writer(monkeypatch, KeyboardInterrupt(), after=2)
    with pytest.raises(KeyboardInterrupt):
        save_gguf(old, _three(), force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["o.gguf"] and old.read_bytes() == b"previous"


def test_other_write_errors_are_reported(tmp_path, monkeypatch):
    _interrupting_writer(monkeypatch, OSError(errno.EIO, "Input/output error"), after=0)
    with pytest.raises(GGUFError, match="write failed"):
        save_gguf(tmp_path / "o.gguf", _three())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_directory(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        with pytest.raises(GGUFError, match="cannot create"):
            save_gguf(d / "o.gguf", _three())
    finally:
        d.chmod(0o700)


def test_output_gets_the_usual_file_mode(tmp_path):
    mask = os.umask(0o022)
    try:
        p = save_gguf(tmp_path / "m.gguf", {"w": np.zeros(4, np.float32)})
    finally:
        os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o644
