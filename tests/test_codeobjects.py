"""The GPU code objects, checked without a GPU.

* generated headers equal what their generators produce now;
* the build: manifest, every kernel in every architecture, the AMD metadata notes within budget (wave size,
  no scratch, registers, LDS, occupancy as compiled for, float modes, argument lists matching the launch
  specs), cubins and PTX, reproducible bytes, staleness;
* the dequantize kernels themselves, run sequentially on the CPU through hsaco/host/emulate.cpp (the same
  sources, compiled with -DPQ_HOST) and compared bit for bit with ggml;
* what the portability header lowers to on each AMD family (dot4, ds_bpermute, barriers).

Everything that compiles needs clang++-22 (CI installs it: `apt-get install clang-22 lld-22 llvm-22`); those
tests skip with that reason when it is absent. NVIDIA parts need nvcc and skip without it.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pyquant import formats, oracle
from pyquant.device import codeobjects as co
from pyquant.device import launch

ROOT = Path(__file__).resolve().parent.parent
HSACO = ROOT / "hsaco"


def _load_build():
    spec = importlib.util.spec_from_file_location("_pq_build", HSACO / "build.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


build = _load_build()
CLANG = build.find_clang()
NVCC = build.find_nvcc()
READELF = shutil.which("llvm-readelf-22") or shutil.which("llvm-readelf")
OBJDUMP = shutil.which("llvm-objdump-22") or shutil.which("llvm-objdump")

needs_clang = pytest.mark.skipif(
    CLANG is None, reason="clang++-22 not installed (apt-get install clang-22 lld-22 llvm-22; CI installs it)")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not found (set NVCC or put nvcc on PATH)")


def _build_args(out: Path, archs: list[str] | None = None) -> argparse.Namespace:
    return argparse.Namespace(out=str(out), arch=archs, amd_only=False, nvidia_only=False, check=False,
                              jobs=os.cpu_count() or 2, verbose=False)


# ---------------------------------------------------------------------------------------------- generated headers


def test_blocks_header_is_generated_from_formats():
    assert (HSACO / "include" / "pq_blocks.h").read_text() == build.blocks_header(), \
        "hsaco/include/pq_blocks.h is stale: run python hsaco/build.py --headers-only and commit it"


def test_launch_header_is_generated_from_launch_py():
    assert (HSACO / "include" / "pq_launch.h").read_text() == launch.launch_header(), \
        "hsaco/include/pq_launch.h is stale: run python hsaco/build.py --headers-only and commit it"


def test_blocks_header_states_every_layout():
    text = build.blocks_header()
    for lay in formats.LAYOUTS.values():
        assert f"}} {lay.c_name};" in text
        assert f"sizeof({lay.c_name}) == {lay.type_size}" in text
        for f in lay.fields:
            assert f"offsetof({lay.c_name}, {f.name}) == {f.offset}" in text


# ---------------------------------------------------------------------------------------------- launch specs


@pytest.mark.parametrize("qtype", formats.SUPPORTED, ids=lambda t: t.name)
@pytest.mark.parametrize("out", ["f32", "f16", "bf16"])
@pytest.mark.parametrize("nrows,blocks", [(1, 1), (3, 7), (1000, 2), (70000, 1), (2, 4096)])
def test_dequantize_spec_covers_every_element(qtype, out, nrows, blocks):
    lay = formats.layout(qtype)
    n = blocks * max(lay.block_size, 8)
    s = launch.dequantize_spec(qtype, out, nrows, n)
    assert s.kernel == f"dequantize_block_{formats.ggml_name(qtype)}_{out}"
    assert s.arg_types == ("ptr", "ptr", "i64", "i64", "i64") and s.shared_mem == 0
    (gx, gy, gz), (tx, ty, tz) = s.grid, s.block
    assert tx * ty * tz == launch.DEQUANT_THREADS and gz == tz == 1
    chunks = -(-n // (launch.DEQUANT_VEC_BYTES // launch.OUT_DTYPES[out]))  # 16-byte pieces of a row
    assert gx * tx * launch.DEQUANT_UNROLL >= chunks  # the row is covered along x ...
    assert (gx - 1) * tx * launch.DEQUANT_UNROLL < chunks  # ... with no block left idle
    assert 1 <= gy <= launch.MAX_GRID_Y and (gy * ty >= nrows or gy == launch.MAX_GRID_Y)  # rows loop beyond


def test_dequantize_spec_errors():
    with pytest.raises(ValueError, match="multiple of Q4_K block size 256"):
        launch.dequantize_spec("Q4_K", "f32", 1, 300)
    with pytest.raises(ValueError, match="output dtype"):
        launch.dequantize_spec("Q4_0", "int8", 1, 32)
    with pytest.raises(ValueError, match=">= 0"):
        launch.dequantize_spec("Q4_0", "f32", -1, 32)
    assert launch.dequantize_spec("Q8_0", np.dtype(np.float16), 0, 0).grid == (1, 1, 1)
    with pytest.raises(ValueError, match="row stride 146 bytes: expected a multiple of 4"):
        launch.dequantize_spec("Q4_K", "f32", 2, 256, x_row_stride_bytes=146)
    with pytest.raises(ValueError, match="at least the 2048 bytes"):
        launch.dequantize_spec("F32", "f32", 2, 512, x_row_stride_bytes=1024)
    assert launch.dequantize_spec("Q3_K", "f32", 2, 256, x_row_stride_bytes=220).kernel == "dequantize_block_q3_K_f32"


def test_padded_rows_meet_the_kernels_alignment():
    for t in formats.SUPPORTED:
        a = launch.row_alignment(t)
        assert formats.row_bytes(t, formats.MATRIX_ROW_PADDING) % a == 0, t.name


def test_kernel_names_are_the_contract():
    names = launch.dequantize_kernel_names()
    assert len(names) == len(set(names)) == 3 * len(formats.SUPPORTED)
    assert "dequantize_block_q4_K_bf16" in names and "dequantize_block_f32_f16" in names


# ---------------------------------------------------------------------------------------------- the build


@pytest.fixture(scope="module")
def kernels(tmp_path_factory) -> Path:
    """Code objects of the current sources: pyquant/kernels when fresh and complete (CI builds it first),
    else a fresh build into a temporary directory."""
    d = co.kernels_dir()
    try:
        man = co.read_manifest(d)
        if not co.is_stale(d) and all(a in man["objects"] for a in co.AMD_ARCHS) and \
                (NVCC is None or all(a in man["objects"] for a in (*co.NVIDIA_ARCHS, *co.PTX_ARCHS))):
            return d
    except (OSError, ValueError, KeyError):
        pass
    if CLANG is None and NVCC is None:
        pytest.skip("no compiler to build code objects (clang++-22 / nvcc)")
    out = tmp_path_factory.mktemp("kernels")
    rc, _ = build.run_build(_build_args(out))
    assert rc == 0, "hsaco/build.py failed"
    return out


def _expectations() -> dict:
    return build.expectations()


@needs_clang
def test_manifest(kernels):
    man = co.read_manifest(kernels)
    assert man["source_hash"] == co.source_hash(HSACO)
    assert set(launch.dequantize_kernel_names()) <= set(man["kernels"])
    for arch in co.AMD_ARCHS:
        e = man["objects"][arch]
        assert e["file"] == f"pyquant.{arch}.hsaco" and e["vendor"] == "amd"
        assert e["wavefront_size"] == (64 if arch.startswith("gfx9") else 32)
        assert "clang" in e["compiler"]
        assert (kernels / e["file"]).read_bytes()[:4] == b"\x7fELF"
    assert (kernels / "resources.md").exists()


@needs_clang
def test_static_checks_pass(kernels):
    nvidia = (*co.NVIDIA_ARCHS, *co.PTX_ARCHS) if NVCC else ()
    require = (*co.AMD_ARCHS, *nvidia)
    problems = co.check_all(kernels, require_archs=require, **_expectations())
    assert problems == []


@needs_clang
def test_wave_sizes_scratch_and_budgets(kernels):
    """The same facts as check_all, asserted directly from the notes (so a bug in check_all cannot hide them)."""
    for arch in co.AMD_ARCHS:
        ks = co.amd_kernels(kernels / f"pyquant.{arch}.hsaco")
        assert set(launch.dequantize_kernel_names()) <= set(ks)
        for name, k in ks.items():
            assert k[".wavefront_size"] == (64 if co.gfx_major(arch) == 9 else 32), (arch, name)
            assert k[".private_segment_fixed_size"] == 0, (arch, name)
            assert k.get(".vgpr_spill_count", 0) == 0 and k.get(".sgpr_spill_count", 0) == 0, (arch, name)
            assert k[".vgpr_count"] <= 256 or (co.AMD_ARCH_INFO[arch].unified and k[".vgpr_count"] <= 512)
            assert k[".group_segment_fixed_size"] <= 65536
            if name.startswith("dequantize_"):
                assert k[".max_flat_workgroup_size"] == launch.DEQUANT_THREADS
                r = co.amd_resources(arch, k)
                assert r["waves"] >= co.resident_waves(arch, launch.DEQUANT_RESIDENT), (arch, name, r)


@needs_clang
def test_metadata_parser_agrees_with_llvm_readelf(kernels):
    if READELF is None:
        pytest.skip("llvm-readelf-22 not installed")
    path = kernels / "pyquant.gfx1100.hsaco"
    text = subprocess.run([READELF, "--notes", str(path)], capture_output=True, text=True, check=True).stdout
    theirs = {}
    for block in re.split(r"\n  - ", text):
        name = re.search(r"\.name:\s+(\S+)", block)
        if name and re.search(r"\.vgpr_count:\s+(\d+)", block):
            theirs[name.group(1)] = {f: int(re.search(rf"\.{f}:\s+(\d+)", block).group(1))
                                     for f in ("vgpr_count", "sgpr_count", "wavefront_size", "group_segment_fixed_size")}
    ours = co.amd_kernels(path)
    assert theirs and set(theirs) == set(ours)
    for name, fields in theirs.items():
        for f, v in fields.items():
            assert ours[name]["." + f] == v, (name, f)


@needs_clang
def test_checks_catch_problems(kernels, tmp_path):
    """check_all reports a missing kernel, a wrong wave size in the manifest, a corrupted object, a missing arch."""
    d = tmp_path / "k"
    shutil.copytree(kernels, d)
    man = json.loads((d / "manifest.json").read_text())
    man["objects"]["gfx1030"]["wavefront_size"] = 64
    del man["objects"]["gfx1201"]
    (d / "manifest.json").write_text(json.dumps(man))
    obj = d / "pyquant.gfx942.hsaco"
    obj.write_bytes(obj.read_bytes() + b"\0")
    problems = co.check_all(d, expected_kernels=["dequantize_block_nope_f32"], require_archs=co.AMD_ARCHS)
    text = "\n".join(problems)
    assert "dequantize_block_nope_f32" in text
    assert "gfx1030: manifest wavefront_size 64 != 32" in text
    assert "manifest has no object for gfx1201" in text
    assert "gfx942: pyquant.gfx942.hsaco does not match the manifest's sha256" in text
    # argument lists are compared with the launch specs
    bad = co.check_all(kernels, arg_types={"dequantize_block_q4_0_f32": ("ptr", "ptr", "i64", "i32", "i64")},
                       require_archs=())
    assert any("do not match the launch spec" in p for p in bad)


@needs_clang
def test_amd_isa_stores_16_bytes_and_never_touches_scratch(kernels):
    if OBJDUMP is None:
        pytest.skip("llvm-objdump-22 not installed")
    for arch in ("gfx906", "gfx942", "gfx1030", "gfx1100", "gfx1201"):
        text = subprocess.run([OBJDUMP, "-d", f"--mcpu={arch}", str(kernels / f"pyquant.{arch}.hsaco")],
                              capture_output=True, text=True, check=True).stdout
        bodies = dict(re.findall(r"<(dequantize_block_\w+)>:\n(.*?)(?=\n\n|\Z)", text, re.S))
        assert set(bodies) == set(launch.dequantize_kernel_names()), arch
        for name, body in bodies.items():
            assert re.search(r"global_store_(dwordx4|b128)", body), (arch, name, "no 16-byte store")
            assert not re.search(r"\bscratch_|buffer_store", body), (arch, name, "scratch access")


@needs_nvcc
def test_cubins_and_ptx(kernels):
    man = co.read_manifest(kernels)
    names = set(launch.dequantize_kernel_names())
    tool = co.find_cuobjdump()
    for arch in co.NVIDIA_ARCHS:
        e = man["objects"][arch]
        assert e["vendor"] == "nvidia" and e["wavefront_size"] == 32 and "nvcc" in e["compiler"]
        path = kernels / e["file"]
        assert names <= co.cubin_kernels(path), arch
        if tool:
            assert co.cubin_arch(path, tool) == arch
            res = co.cubin_resources(path, tool)
            for n in names:
                assert res[n]["local"] == 0 and res[n]["stack"] == 0, (arch, n)
                assert res[n]["reg"] <= 65536 // launch.DEQUANT_RESIDENT, (arch, n, res[n])  # the launch bound
    ptx = co.ptx_kernels(kernels / man["objects"]["compute_80"]["file"])
    assert names <= set(ptx) and co.ptx_target(kernels / "pyquant.compute_80.ptx") == "sm_80"
    assert all(ptx[n] == (8, 8, 8, 8, 8) for n in names)


# ---------------------------------------------------------------------------------------------- reproducibility


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory, kernels):
    """One architecture per vendor built again, into another directory (and clang's resource remarks). CI's
    `build.py --check` compares the occupancy formula with the remarks for every architecture already."""
    if CLANG is None:
        pytest.skip("clang++-22 not installed (apt-get install clang-22 lld-22 llvm-22; CI installs it)")
    archs = ["gfx1151"] + (["sm_90"] if NVCC else [])
    d = tmp_path_factory.mktemp("again") / "nested"
    rc, remarks = build.run_build(_build_args(d, archs))
    assert rc == 0
    return archs, d, remarks


def test_builds_are_reproducible(rebuilt, kernels):
    """Built twice (CI's build, or the kernels fixture's, and this one, elsewhere): the same bytes."""
    archs, again, _ = rebuilt
    first = co.read_manifest(kernels)["objects"]
    second = co.read_manifest(again)["objects"]
    for arch in archs:
        f = second[arch]["file"]
        assert (again / f).read_bytes() == (kernels / f).read_bytes(), f"{f} differs between two builds"
        assert first[arch] == second[arch]


def test_occupancy_formula_matches_clang(rebuilt):
    archs, again, remarks = rebuilt
    for arch in (x for x in archs if x.startswith("gfx")):
        ks = co.amd_kernels(again / f"pyquant.{arch}.hsaco")
        assert set(remarks[arch]) == set(ks)
        for name, k in ks.items():
            assert co.amd_resources(arch, k)["waves"] == int(remarks[arch][name]["Occupancy"]), (arch, name)


def test_occupancy_rules():
    # LLVM's rules, by hand: granules 4 (gfx906), 8 (gfx90a+, unified with AGPRs), 16 (RDNA), 24 (1.5x RDNA)
    assert co.amd_occupancy("gfx906", 46, 0, 24, 0, 256) == 5  # 256 // 48
    assert co.amd_occupancy("gfx942", 102, 0, 14, 0, 256) == 4  # 512 // 104
    assert co.amd_occupancy("gfx942", 64, 64, 14, 0, 256) == 4  # 512 // 128
    assert co.amd_occupancy("gfx1030", 72, 0, 8, 0, 256) == 12  # 1024 // 80
    assert co.amd_occupancy("gfx1100", 92, 0, 7, 0, 256) == 16  # 1536 // 96
    assert co.amd_occupancy("gfx1102", 72, 0, 7, 0, 256) == 12
    assert co.amd_occupancy("gfx906", 24, 0, 96, 0, 256) == 8  # SGPR-limited on gfx9
    assert co.amd_occupancy("gfx942", 32, 0, 20, 32768, 256) == 2  # two 4-wave groups of 32 KiB LDS per CU
    # 15 two-wave groups of 4368 bytes: 30 waves over 4 SIMDs, rounded up as LLVM does
    assert co.amd_occupancy("gfx942", 62, 0, 44, 4368, 128) == 8
    assert co.amd_occupancy("gfx1100", 68, 0, 20, 8720, 128) == 15  # 128 KiB per WGP: 15 four-wave groups


# ---------------------------------------------------------------------------------------------- staleness


def test_staleness(tmp_path):
    src = tmp_path / "hsaco"
    shutil.copytree(HSACO, src, ignore=shutil.ignore_patterns("__pycache__"))
    kdir = tmp_path / "kernels"
    kdir.mkdir()
    assert "no code objects" in co.staleness(kdir, src)
    (kdir / "manifest.json").write_text(json.dumps({"source_hash": co.source_hash(src), "objects": {}, "kernels": []}))
    assert co.staleness(kdir, src) is None and not co.is_stale(kdir, src)
    k = src / "kernels" / "dequantize.hip"
    k.write_text(k.read_text() + "\n// edited\n")
    assert co.is_stale(kdir, src) and "rebuild" in co.staleness(kdir, src)
    (src / "pyquant.hip").unlink()  # an installed wheel: no sources, nothing to compare
    assert co.staleness(kdir, src) is None


# ---------------------------------------------------------------------------------------------- portability header


PROBE = r"""
#include "pq_port.h"
extern "C" __global__ void probe(const int* a, int* out, float* f) {
    const int t = threadIdx.x;
    out[t] = pq_dp4a(a[t], a[t + 1], a[t + 2]);
    f[t] = warp_reduce_sum<32>(f[t]);
    __syncthreads();
    f[t + 1024] = warp_reduce_max<PQ_WARP_SIZE>(f[t + 1024]);
    out[t + 1024] = PQ_WARP_SIZE;
}
"""

# sdot4 (v_dot4_i32_i8, or its accumulate-in-place form v_dot4c) where the dot1 instructions exist; sudot4
# (v_dot4_i32_iu8) on RDNA3/4
DOT4 = {a: r"v_dot4c?_i32_i8" for a in ("gfx906", "gfx908", "gfx90a", "gfx942", "gfx950", "gfx1030")}
DOT4.update({a: r"v_dot4_i32_iu8" for a in ("gfx1100", "gfx1151", "gfx1201")})


@needs_clang
@pytest.mark.parametrize("arch", sorted(DOT4, key=co.arch_sort_key))
def test_port_header_lowering(arch, tmp_path):
    if OBJDUMP is None:
        pytest.skip("llvm-objdump-22 not installed")
    src = tmp_path / "probe.hip"
    src.write_text(PROBE + f"static_assert(PQ_WARP_SIZE == {co.wavefront_size(arch)}, \"wave size\");\n")
    out = tmp_path / "probe.hsaco"
    r = subprocess.run(build.amd_command(CLANG, arch, out)[:-1] + [str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    asm = subprocess.run([OBJDUMP, "-d", f"--mcpu={arch}", str(out)], capture_output=True, text=True).stdout
    assert re.search(DOT4[arch], asm), f"no dot4 instruction on {arch}"
    assert "ds_bpermute_b32" in asm
    assert ("s_barrier_signal" if arch.startswith("gfx12") else "s_barrier") in asm
    meta = co.amd_kernels(out)["probe"]
    assert meta[".wavefront_size"] == co.wavefront_size(arch)


@needs_nvcc
def test_port_header_nvcc(tmp_path):
    src = tmp_path / "probe.hip"
    src.write_text(PROBE)
    out = tmp_path / "probe.ptx"
    r = subprocess.run(build.nvcc_command(NVCC, "compute_80", out)[:-1] + [str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ptx = out.read_text()
    assert "dp4a.s32.s32" in ptx and "shfl.sync.bfly" in ptx and "bar.sync" in ptx


# ---------------------------------------------------------------------------------------------- host emulation


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """hsaco/host/emulate.cpp compiled for this CPU: the dequantize kernels, run thread by thread."""
    cxx = shutil.which("clang++-22") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("clang++-22 not installed (apt-get install clang-22 lld-22 llvm-22; CI installs it)")
    lib = tmp_path_factory.mktemp("emu") / "pq_emulate.so"
    r = subprocess.run([cxx, "-std=c++17", "-O1", "-ffp-contract=off", "-fPIC", "-shared",
                        f"-I{HSACO / 'include'}", "-o", str(lib), str(HSACO / "host" / "emulate.cpp")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return ctypes.CDLL(str(lib))


def emulate(lib, spec: launch.LaunchSpec, x: np.ndarray, y: np.ndarray, nrows: int, n: int, stride: int,
            grid=None) -> None:
    kernel = ctypes.cast(getattr(lib, spec.kernel), ctypes.c_void_p)
    g = (ctypes.c_uint * 3)(*(grid or spec.grid))
    b = (ctypes.c_uint * 3)(*spec.block)
    lib.pq_host_launch_dequantize.restype = ctypes.c_int
    faults = lib.pq_host_launch_dequantize(kernel, g, b, ctypes.c_void_p(x.ctypes.data), ctypes.c_void_p(y.ctypes.data),
                                           ctypes.c_int64(nrows), ctypes.c_int64(n), ctypes.c_int64(stride))
    assert faults == 0, f"{spec.kernel}: {faults} misaligned accesses (or barriers/shuffles) in the emulation"


def aligned_empty(nbytes: int, align: int = 256) -> np.ndarray:
    """A byte buffer whose start is aligned like a device allocation."""
    raw = np.empty(nbytes + align, dtype=np.uint8)
    off = (-raw.ctypes.data) % align
    return raw[off:off + nbytes]


def device_rows(data: np.ndarray, qtype, n: int) -> tuple[np.ndarray, int]:
    """Rows of bytes padded to a multiple of 512 elements with zeros, as the runtime lays them out."""
    n_pad = -(-n // formats.MATRIX_ROW_PADDING) * formats.MATRIX_ROW_PADDING
    stride = formats.row_bytes(qtype, n_pad)
    buf = aligned_empty(max(1, data.shape[0]) * stride)
    buf[:] = 0
    rows = buf[:data.shape[0] * stride].reshape(data.shape[0], stride)
    rows[:, :data.shape[1]] = data
    return buf, stride


def bf16_rne(f: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits, round to nearest even (a NaN becomes a quiet NaN)."""
    u = f.view(np.uint32).astype(np.uint64)
    return np.where(np.isnan(f), 0x7FC0, (u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def same_or_both_nan(got: np.ndarray, want: np.ndarray, kind: str) -> np.ndarray:
    """Bitwise equality, except that any NaN matches any NaN (NaN payloads are not specified on GPUs)."""
    if kind == "f32":
        g, w = got.view(np.float32), want.view(np.float32)
        return (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(g) & np.isnan(w))
    if kind == "f16":
        return (got == want) | (np.isnan(got.view(np.float16)) & np.isnan(want.view(np.float16)))
    nan = lambda h: ((h & 0x7F80) == 0x7F80) & ((h & 0x7F) != 0)  # noqa: E731
    return (got == want) | (nan(got) & nan(want))


def random_rows(qtype, nrows: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of real quantized data (ggml's quantizer on varied floats) plus one row of random bytes, which puts
    every bit pattern into every field (also NaN, Inf and subnormal scales)."""
    lay = formats.layout(qtype)
    x = (rng.standard_normal((nrows, n)) * rng.choice([1e-3, 1.0, 30.0], size=(nrows, 1))).astype(np.float32)
    x[0, : min(n, 64)] = 0.0  # an all-zero block
    data = oracle.quantize(x, qtype)
    data[-1] = rng.integers(0, 256, size=data.shape[1], dtype=np.uint8)
    if lay.qtype == formats.GGMLQuantizationType.F32:
        data[-1].view(np.float32)[:4] = [np.inf, -0.0, 1e-45, np.nan]
    return data


CASES = [(t, o) for t in formats.SUPPORTED for o in ("f32", "f16", "bf16")]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NaN scales in the random row
@pytest.mark.parametrize("qtype,out", CASES, ids=[f"{t.name}-{o}" for t, o in CASES])
def test_emulated_dequantize_is_ggml_bit_for_bit(emulator, qtype, out):
    lay = formats.layout(qtype)
    rng = np.random.default_rng(int(qtype) * 3 + ("f32", "f16", "bf16").index(out))
    shapes = [(4, 768), (3, 3 * 256 + 512)] if lay.block_size == 256 else \
             [(5, 416), (2, 1024 + 96)] if lay.block_size == 32 else [(3, 300), (2, 1024), (1, 13)]
    for nrows, n in shapes:
        data = random_rows(qtype, nrows, n, rng)
        want = oracle.dequantize(data, qtype, n)
        x, stride = device_rows(data, qtype, n)
        size = launch.OUT_DTYPES[out]
        guard = 64
        y = aligned_empty(nrows * n * size + guard)
        y[:] = 0xA5  # unwritten outputs and writes past the end both show
        spec = launch.dequantize_spec(qtype, out, nrows, n)
        emulate(emulator, spec, x, y, nrows, n, stride)
        assert (y[nrows * n * size:] == 0xA5).all(), f"{spec.kernel} wrote past the end of y"
        got = y[:nrows * n * size]
        if out == "f32":
            ok = same_or_both_nan(got.view(np.uint32), want.reshape(-1).view(np.uint32), "f32")
        elif out == "f16":
            with np.errstate(over="ignore"):
                ok = same_or_both_nan(got.view(np.uint16), want.reshape(-1).astype(np.float16).view(np.uint16), "f16")
        else:
            ok = same_or_both_nan(got.view(np.uint16), bf16_rne(want.reshape(-1)), "bf16")
        bad = np.flatnonzero(~ok.reshape(-1))
        assert bad.size == 0, (f"{spec.kernel} ({nrows}x{n}): {bad.size} elements differ from ggml, first at "
                               f"row {bad[0] // n}, column {bad[0] % n}")


@pytest.mark.parametrize("qtype", ["Q4_0", "Q6_K", "F16"])
def test_emulated_rows_beyond_the_grid_are_looped_over(emulator, qtype):
    """More rows than gridDim.y * blockDim.y (as with more than 65535 * blockDim.y rows): the row loop covers them."""
    t = formats.qtype_of(qtype)
    rng = np.random.default_rng(7)
    nrows, n = 37, formats.layout(t).block_size * (8 if formats.layout(t).block_size > 1 else 40)
    data = random_rows(t, nrows, n, rng)
    data[-1] = data[0]  # finite everywhere: compare plainly
    want = oracle.dequantize(data, t, n)
    x, stride = device_rows(data, t, n)
    spec = launch.dequantize_spec(t, "f32", nrows, n)
    y = aligned_empty(nrows * n * 4)
    y[:] = 0xA5
    emulate(emulator, spec, x, y, nrows, n, stride, grid=(spec.grid[0], 2, 1))
    np.testing.assert_array_equal(y.view(np.float32).reshape(nrows, n), want)


def test_emulated_empty_tensor_writes_nothing(emulator):
    spec = launch.dequantize_spec("Q4_K", "f16", 0, 256)
    x = aligned_empty(144)
    y = aligned_empty(64)
    y[:] = 0xA5
    emulate(emulator, spec, x, y, 0, 256, 144)
    assert (y == 0xA5).all()
