"""The code objects pyquant ships: manifest, staleness, and static checks of what the compilers produced.

Standard library only: ``hsaco/build.py`` loads this file by path inside isolated wheel builds, and the
checks run in CI machines without a GPU or ROCm.

* AMD (HSACO): the ``NT_AMDGPU_METADATA`` note (MessagePack) of each object is parsed here, not through
  llvm-readelf's text; per kernel it gives ``.wavefront_size``, ``.vgpr_count``, ``.agpr_count``,
  ``.sgpr_count``, ``.group_segment_fixed_size`` (LDS), ``.private_segment_fixed_size`` (scratch),
  ``.max_flat_workgroup_size`` and ``.args``. The kernel descriptors (``<kernel>.kd``) give the float modes.
* NVIDIA (cubin, PTX): kernel names from the ELF symbol table / PTX ``.entry`` lines; registers and spills from
  ``cuobjdump --dump-resource-usage`` when that tool is installed (``pip install nvidia-cuda-cuobjdump``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # .../pyquant
SOURCE_DIR = PACKAGE_DIR.parent / "hsaco"  # exists in a source checkout (editable install), not in a wheel
SOURCE_SUFFIXES = (".hip", ".h", ".cuh", ".cu", ".py")  # build.py is part of the state: its flags shape the code

AMD_ARCHS = ("gfx906", "gfx908", "gfx90a", "gfx942", "gfx950", "gfx1030", "gfx1100", "gfx1101", "gfx1102",
             "gfx1150", "gfx1151", "gfx1200", "gfx1201")
NVIDIA_ARCHS = ("sm_80", "sm_86", "sm_89", "sm_90", "sm_100", "sm_120")
PTX_ARCHS = ("compute_80",)


def kernels_dir() -> Path:
    """``$PYQUANT_KERNELS_DIR`` or the package's ``kernels/`` directory."""
    env = os.environ.get("PYQUANT_KERNELS_DIR")
    return Path(env) if env else PACKAGE_DIR / "kernels"


# ---------------------------------------------------------------------------------------------- hashing, manifest


def source_hash(hsaco_dir: Path = SOURCE_DIR) -> str:
    """sha256 over the kernel sources, headers and build script (relative paths and contents, sorted)."""
    h = hashlib.sha256()
    files = sorted(p for p in Path(hsaco_dir).rglob("*") if p.is_file() and p.suffix in SOURCE_SUFFIXES
                   and "__pycache__" not in p.parts and not any(q.startswith(".") for q in p.relative_to(hsaco_dir).parts))
    for p in files:
        h.update(p.relative_to(hsaco_dir).as_posix().encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_manifest(directory: Path | None = None) -> dict:
    path = Path(directory or kernels_dir()) / "manifest.json"
    return json.loads(path.read_text())


def staleness(directory: Path | None = None, hsaco_dir: Path = SOURCE_DIR) -> str | None:
    """Why the built code objects do not match the sources, or None when they do (or there are no sources:
    an installed wheel ships objects only, and they are what it was built with)."""
    if not Path(hsaco_dir, "pyquant.hip").exists():
        return None
    directory = Path(directory or kernels_dir())
    try:
        man = read_manifest(directory)
    except FileNotFoundError:
        return f"no code objects in {directory}: build them with python hsaco/build.py"
    now = source_hash(hsaco_dir)
    if man.get("source_hash") != now:
        objs = ", ".join(sorted(man.get("objects", {}), key=arch_sort_key)) or "none"
        return (f"code objects in {directory} ({objs}) were built from other sources than {hsaco_dir} "
                f"(source_hash {str(man.get('source_hash'))[:12]} != {now[:12]}): rebuild with python hsaco/build.py")
    return None


def is_stale(directory: Path | None = None, hsaco_dir: Path = SOURCE_DIR) -> bool:
    """True when a source checkout's kernels changed after the code objects were built (see :func:`staleness`)."""
    return staleness(directory, hsaco_dir) is not None


def arch_sort_key(arch: str) -> tuple:
    if arch.startswith("gfx"):
        return (0, gfx_major(arch), arch[-2:])
    m = re.match(r"(sm|compute)_(\d+)", arch)
    return (1 if arch.startswith("sm") else 2, int(m.group(2)) if m else 0, arch)


def wavefront_size(arch: str) -> int:
    """Physical wave size: 64 on gfx9 (GCN/CDNA), 32 on gfx10-12 (RDNA) and NVIDIA."""
    if arch.startswith("gfx"):
        return 64 if gfx_major(arch) == 9 else 32
    return 32


def gfx_major(arch: str) -> int:
    digits = arch[3:]
    return int(digits[:-2])  # gfx906 -> 9, gfx90a -> 9, gfx1030 -> 10, gfx1201 -> 12


# ---------------------------------------------------------------------------------------------- ELF


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    addr: int
    offset: int
    size: int
    link: int
    entsize: int


class Elf:
    """The little of ELF64 the checks need: section headers, notes, the symbol table."""

    SHT_SYMTAB, SHT_NOTE = 2, 7

    def __init__(self, data: bytes):
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            raise ValueError("not a little-endian ELF64 file")
        self.data = data
        self.machine, = struct.unpack_from("<H", data, 0x12)
        self.flags, = struct.unpack_from("<I", data, 0x30)
        self.abi_version = data[8]
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        raw = []
        for i in range(shnum):
            name, typ, _flags, addr, off, size, link, _info, _align, entsize = struct.unpack_from(
                "<IIQQQQIIQQ", data, shoff + i * shentsize)
            raw.append((name, typ, addr, off, size, link, entsize))
        strtab = raw[shstrndx]
        self.sections = [Section(self._str(strtab[3], n), t, a, o, s, lk, es) for n, t, a, o, s, lk, es in raw]

    def _str(self, table_off: int, idx: int) -> str:
        end = self.data.index(b"\0", table_off + idx)
        return self.data[table_off + idx:end].decode()

    def notes(self) -> Iterable[tuple[str, int, bytes]]:
        for s in self.sections:
            if s.type != self.SHT_NOTE:
                continue
            pos, end = s.offset, s.offset + s.size
            while pos + 12 <= end:
                namesz, descsz, typ = struct.unpack_from("<III", self.data, pos)
                pos += 12
                name = self.data[pos:pos + namesz].rstrip(b"\0").decode()
                pos += (namesz + 3) & ~3
                desc = self.data[pos:pos + descsz]
                pos += (descsz + 3) & ~3
                yield name, typ, desc

    def symbols(self) -> list[tuple[str, int, int, int, int]]:
        """(name, info, section index, value, size) of every symbol."""
        out = []
        for s in self.sections:
            if s.type != self.SHT_SYMTAB:
                continue
            strtab = self.sections[s.link]
            for i in range(s.size // s.entsize):
                name, info, _other, shndx, value, size = struct.unpack_from("<IBBHQQ", self.data, s.offset + i * s.entsize)
                out.append((self._str(strtab.offset, name), info, shndx, value, size))
        return out

    def symbol_bytes(self, name: str) -> bytes | None:
        for sym, _info, shndx, value, size in self.symbols():
            if sym == name and 0 < shndx < len(self.sections):
                sec = self.sections[shndx]
                off = sec.offset + (value - sec.addr)
                return self.data[off:off + size]
        return None


# ---------------------------------------------------------------------------------------------- MessagePack


def unpack_msgpack(data: bytes) -> Any:
    """Decode one MessagePack value (the AMDGPU metadata note's format)."""
    value, _ = _mp(data, 0)
    return value


def _mp(b: bytes, i: int) -> tuple[Any, int]:
    t = b[i]
    i += 1
    if t <= 0x7F:
        return t, i
    if t >= 0xE0:
        return t - 0x100, i
    if 0x80 <= t <= 0x8F:
        return _mp_map(b, i, t & 0x0F)
    if 0x90 <= t <= 0x9F:
        return _mp_arr(b, i, t & 0x0F)
    if 0xA0 <= t <= 0xBF:
        n = t & 0x1F
        return b[i:i + n].decode(), i + n
    simple = {0xC0: None, 0xC2: False, 0xC3: True}
    if t in simple:
        return simple[t], i
    fixed = {0xCA: ">f", 0xCB: ">d", 0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
             0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}
    if t in fixed:
        fmt = fixed[t]
        return struct.unpack_from(fmt, b, i)[0], i + struct.calcsize(fmt)
    lengths = {0xC4: ">B", 0xC5: ">H", 0xC6: ">I", 0xD9: ">B", 0xDA: ">H", 0xDB: ">I",
               0xDC: ">H", 0xDD: ">I", 0xDE: ">H", 0xDF: ">I"}
    if t in lengths:
        fmt = lengths[t]
        n = struct.unpack_from(fmt, b, i)[0]
        i += struct.calcsize(fmt)
        if t in (0xC4, 0xC5, 0xC6):
            return b[i:i + n], i + n
        if t in (0xD9, 0xDA, 0xDB):
            return b[i:i + n].decode(), i + n
        return (_mp_arr if t in (0xDC, 0xDD) else _mp_map)(b, i, n)
    raise ValueError(f"unsupported MessagePack type byte 0x{t:02x} at offset {i - 1}")


def _mp_arr(b: bytes, i: int, n: int) -> tuple[list, int]:
    out = []
    for _ in range(n):
        v, i = _mp(b, i)
        out.append(v)
    return out, i


def _mp_map(b: bytes, i: int, n: int) -> tuple[dict, int]:
    out = {}
    for _ in range(n):
        k, i = _mp(b, i)
        v, i = _mp(b, i)
        out[k] = v
    return out, i


# ---------------------------------------------------------------------------------------------- AMD code objects

NT_AMDGPU_METADATA = 32
EM_AMDGPU, EM_CUDA = 224, 190


def amd_metadata(path: Path) -> dict:
    """The code object's metadata note (``amdhsa.version``, ``amdhsa.target``, ``amdhsa.kernels`` ...)."""
    elf = Elf(Path(path).read_bytes())
    if elf.machine != EM_AMDGPU:
        raise ValueError(f"{path}: not an AMDGPU code object (e_machine {elf.machine})")
    for name, typ, desc in elf.notes():
        if name == "AMDGPU" and typ == NT_AMDGPU_METADATA:
            return unpack_msgpack(desc)
    raise ValueError(f"{path}: no AMDGPU metadata note")


@dataclass(frozen=True)
class FloatModes:
    """Fields of a kernel descriptor's COMPUTE_PGM_RSRC1: 0 = round to nearest even, 3 = keep denormals."""

    round_32: int
    round_16_64: int
    denorm_32: int
    denorm_16_64: int


def amd_float_modes(path: Path) -> dict[str, FloatModes]:
    """{kernel: float modes} from the 64-byte kernel descriptors ``<kernel>.kd`` (rsrc1 at byte 48)."""
    elf = Elf(Path(path).read_bytes())
    out = {}
    for name, _info, _shndx, _value, _size in elf.symbols():
        if name.endswith(".kd"):
            kd = elf.symbol_bytes(name)
            if kd is None or len(kd) < 52:
                continue
            rsrc1, = struct.unpack_from("<I", kd, 48)
            out[name[:-3]] = FloatModes((rsrc1 >> 12) & 3, (rsrc1 >> 14) & 3, (rsrc1 >> 16) & 3, (rsrc1 >> 18) & 3)
    return out


@dataclass(frozen=True)
class AmdArch:
    """What occupancy needs to know of one architecture (LLVM's AMDGPUBaseInfo rules)."""

    wave: int
    max_waves: int  # per SIMD
    vgpr_file: int  # VGPRs per SIMD lane available to waves (unified with AGPRs on gfx90a+)
    granule: int  # VGPR allocation granule
    unified: bool  # gfx90a+: VGPRs and AGPRs share one file
    lds_per_cu: int  # bytes per CU (gfx9) or WGP (gfx10+, WGP mode)
    simds: int  # SIMDs sharing that LDS
    sgpr_limited: bool  # gfx9: the SGPR file can limit waves


_GFX9 = AmdArch(64, 10, 256, 4, False, 65536, 4, True)
_CDNA2 = AmdArch(64, 8, 512, 8, True, 65536, 4, True)
_RDNA = AmdArch(32, 16, 1024, 16, False, 131072, 4, False)
_RDNA_15X = AmdArch(32, 16, 1536, 24, False, 131072, 4, False)  # 1.5x VGPR file: Navi31/32, Strix Halo, RDNA4
AMD_ARCH_INFO: dict[str, AmdArch] = {
    "gfx906": _GFX9, "gfx908": _GFX9, "gfx90a": _CDNA2, "gfx942": _CDNA2,
    "gfx950": AmdArch(64, 8, 512, 8, True, 163840, 4, True),
    "gfx1030": _RDNA, "gfx1100": _RDNA_15X, "gfx1101": _RDNA_15X, "gfx1102": _RDNA, "gfx1150": _RDNA,
    "gfx1151": _RDNA_15X, "gfx1200": _RDNA_15X, "gfx1201": _RDNA_15X,
}
MAX_LDS_PER_WORKGROUP = 65536
MAX_ARCH_VGPRS = 256  # per wave, architectural (AGPRs separately 256 on CDNA)


def _ceil_to(v: int, g: int) -> int:
    return -(-v // g) * g


def amd_occupancy(arch: str, vgprs: int, agprs: int, sgprs: int, lds: int, workgroup: int) -> int:
    """Theoretical waves per SIMD of a kernel: LLVM's GCNSubtarget::computeOccupancy (VGPR file and granule,
    SGPRs on gfx9, LDS and barriers per workgroup), for kernels whose flat workgroup size ranges from 1 to
    ``workgroup`` (``.max_flat_workgroup_size``; PQ_LAUNCH_BOUNDS and the default both start at 1)."""
    a = AMD_ARCH_INFO[arch]
    if a.unified:
        regs = _ceil_to(vgprs, 4) + agprs if agprs else vgprs
    else:
        regs = max(vgprs, agprs)
    waves = min(a.max_waves, a.vgpr_file // _ceil_to(max(regs, 1), a.granule))
    if a.sgpr_limited:
        waves = min(waves, 10 if sgprs <= 80 else 9 if sgprs <= 88 else 8 if sgprs <= 100 else 7)
    return min(waves, _occupancy_with_workgroup_sizes(a, lds, workgroup))


def _occupancy_with_workgroup_sizes(a: AmdArch, lds: int, max_wg: int) -> int:
    """LLVM's AMDGPUSubtarget::getOccupancyWithWorkGroupSizes(LDS, {1, max_wg}).second: the most waves per SIMD
    that LDS and barriers allow, waves spread over the SIMDs as evenly as possible (so rounded up)."""
    max_wgs_lds = a.lds_per_cu // max(lds, 1)
    if max_wgs_lds == 0:
        return 1
    slots = a.max_waves * a.simds
    barriers = 16 if a.wave == 64 else 32  # gfx9: 16 per CU; gfx10+ in WGP mode: 32

    def props(wg: int) -> tuple[int, int, int]:
        waves_per_wg = -(-wg // a.wave)
        groups = slots if waves_per_wg == 1 else min(slots // waves_per_wg, barriers)
        groups = min(groups, max_wgs_lds)
        return waves_per_wg, groups, waves_per_wg * groups

    min_wpw, max_groups, max_waves_cu = props(1)
    _, _, min_waves_cu = props(max_wg)
    if min_waves_cu >= max_waves_cu:
        max_waves_cu = min_waves_cu
    else:
        spare = (slots - max_groups * min_wpw) // max_groups  # a larger group than 1 wave may fit more waves
        if spare:
            max_waves_cu += max_groups * min(spare, (max_wg - 1) // a.wave + 1 - min_wpw)
    return max(1, min(-(-max_waves_cu // a.simds), a.max_waves))


def resident_waves(arch: str, resident_threads: int) -> int:
    """The waves per SIMD that PQ_LAUNCH_BOUNDS(threads, resident) asks of the compiler (pq_port.h's
    PQ_WAVES_PER_EU): resident / (wave size * 4 SIMDs), halved on gfx906 (a VGPR file half of CDNA2's and no
    AGPRs to spill into; gfx908 spills into its AGPRs instead)."""
    per = wavefront_size(arch) * (8 if arch == "gfx906" else 4)
    return max(1, resident_threads // per)


def amd_kernels(path: Path) -> dict[str, dict]:
    """{kernel name: its metadata map} of one HSACO."""
    return {k[".name"]: k for k in amd_metadata(path).get("amdhsa.kernels", [])}


def amd_resources(arch: str, k: dict) -> dict[str, int]:
    vg, ag, sg = k.get(".vgpr_count", 0), k.get(".agpr_count", 0), k.get(".sgpr_count", 0)
    lds, wg = k.get(".group_segment_fixed_size", 0), k.get(".max_flat_workgroup_size", 1024)
    return {"vgpr": vg, "agpr": ag, "sgpr": sg, "lds": lds, "scratch": k.get(".private_segment_fixed_size", 0),
            "workgroup": wg, "waves": amd_occupancy(arch, vg, ag, sg, lds, wg),
            "vgpr_spill": k.get(".vgpr_spill_count", 0), "sgpr_spill": k.get(".sgpr_spill_count", 0)}


_ARG_KINDS = {"ptr": ("global_buffer", 8), "i64": ("by_value", 8), "i32": ("by_value", 4), "f32": ("by_value", 4)}


def amd_arg_signature(k: dict) -> tuple[tuple[str, int], ...]:
    """(value kind, size) of each explicit kernel argument (hidden_* arguments left out)."""
    return tuple((a[".value_kind"], a[".size"]) for a in k.get(".args", [])
                 if not str(a.get(".value_kind", "")).startswith("hidden_"))


# ---------------------------------------------------------------------------------------------- NVIDIA code objects

STT_FUNC = 2


def cubin_kernels(path: Path) -> set[str]:
    """Kernel entry points of a cubin: global function symbols that own a ``.text.<name>`` section."""
    elf = Elf(Path(path).read_bytes())
    if elf.machine != EM_CUDA:
        raise ValueError(f"{path}: not a CUDA cubin (e_machine {elf.machine})")
    texts = {s.name[len(".text."):] for s in elf.sections if s.name.startswith(".text.")}
    funcs = {name for name, info, *_ in elf.symbols() if info & 0xF == STT_FUNC and info >> 4 == 1}
    return texts & funcs


_ENTRY = re.compile(r"\.entry\s+(\w+)\s*\(([^)]*)\)", re.S)
_PARAM = re.compile(r"\.param\s+\.(?:u|b|s|f)(\d+)")


def ptx_kernels(path: Path) -> dict[str, tuple[int, ...]]:
    """{kernel: byte size of each parameter} from a PTX file's ``.entry`` lines."""
    text = Path(path).read_text()
    return {m.group(1): tuple(int(b) // 8 for b in _PARAM.findall(m.group(2))) for m in _ENTRY.finditer(text)}


def ptx_target(path: Path) -> str | None:
    m = re.search(r"^\.target\s+(\w+)", Path(path).read_text(), re.M)
    return m.group(1) if m else None


def find_cuobjdump() -> str | None:
    found = shutil.which("cuobjdump")
    if found:
        return found
    try:  # pip install nvidia-cuda-cuobjdump puts it inside the nvidia namespace package
        import nvidia  # type: ignore

        for base in getattr(nvidia, "__path__", []):
            for cand in sorted(Path(base).glob("*/bin/cuobjdump")):
                return str(cand)
    except ImportError:
        pass
    return None


_RES = re.compile(r"Function (\w+):\s*\n\s*REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)")


def cubin_resources(path: Path, cuobjdump: str | None = None) -> dict[str, dict[str, int]] | None:
    """{kernel: {reg, stack, shared, local}} from ``cuobjdump --dump-resource-usage``, or None without the tool."""
    tool = cuobjdump or find_cuobjdump()
    if not tool:
        return None
    r = subprocess.run([tool, "--dump-resource-usage", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"cuobjdump failed on {path}: {r.stderr.strip()}")
    return {m.group(1): {"reg": int(m.group(2)), "stack": int(m.group(3)), "shared": int(m.group(4)),
                         "local": int(m.group(5))} for m in _RES.finditer(r.stdout)}


def cubin_arch(path: Path, cuobjdump: str | None = None) -> str | None:
    """``sm_90`` etc. as cuobjdump reports it (None without the tool)."""
    tool = cuobjdump or find_cuobjdump()
    if not tool:
        return None
    r = subprocess.run([tool, "--list-elf", str(path)], capture_output=True, text=True)
    m = re.search(r"\b(sm_\d+[a-z]?)\b", r.stdout)
    return m.group(1) if m else None


def kernel_names(path: Path) -> set[str]:
    """Kernel names in one code object of any kind."""
    path = Path(path)
    if path.suffix == ".hsaco":
        return set(amd_kernels(path))
    if path.suffix == ".cubin":
        return cubin_kernels(path)
    if path.suffix == ".ptx":
        return set(ptx_kernels(path))
    raise ValueError(f"unknown code object kind: {path}")


# ---------------------------------------------------------------------------------------------- checks


def check_all(directory: Path | None = None, *, expected_kernels: Iterable[str] = (),
              arg_types: dict[str, tuple[str, ...]] | None = None,
              min_workgroup: dict[str, int] | None = None,
              min_waves: Callable[[str, str], int | None] | None = None,
              require_archs: Iterable[str] = (*AMD_ARCHS, *NVIDIA_ARCHS, *PTX_ARCHS),
              compiler_remarks: dict | None = None) -> list[str]:
    """Every problem found in the code objects of ``directory`` (empty list: all good).

    ``expected_kernels``: names every object must contain (besides the manifest's own list).
    ``arg_types``: {kernel: launch-spec arg types} checked against the AMD argument metadata and PTX parameters.
    ``min_workgroup``: {kernel-name prefix: threads} the launch specs use; ``.max_flat_workgroup_size`` must allow it.
    ``min_waves``: (arch, kernel) -> the least theoretical waves/SIMD the kernel must reach, or None.
    ``require_archs``: architectures the manifest must have objects for (default: every one pyquant ships).
    ``compiler_remarks``: {arch: {kernel: clang's resource remarks}}: occupancy computed here must agree.
    """
    directory = Path(directory or kernels_dir())
    problems: list[str] = []
    try:
        man = read_manifest(directory)
    except FileNotFoundError:
        return [f"no manifest.json in {directory}"]
    objects: dict = man.get("objects", {})
    kernels = set(man.get("kernels", []))
    missing_expected = set(expected_kernels) - kernels
    if missing_expected:
        problems.append(f"manifest lacks kernels {sorted(missing_expected)}")
    for a in require_archs:
        if a not in objects:
            problems.append(f"manifest has no object for {a}")
    want = kernels | set(expected_kernels)
    cuobjdump = find_cuobjdump()
    for arch, entry in objects.items():
        path = directory / entry["file"]
        if not path.exists():
            problems.append(f"{arch}: {entry['file']} missing")
            continue
        if entry.get("sha256") and entry["sha256"] != sha256_file(path):
            problems.append(f"{arch}: {entry['file']} does not match the manifest's sha256")
        if entry.get("wavefront_size") != wavefront_size(arch):
            problems.append(f"{arch}: manifest wavefront_size {entry.get('wavefront_size')} != {wavefront_size(arch)}")
        try:
            if entry.get("vendor") == "amd":
                problems += _check_amd(arch, path, want, arg_types or {}, min_workgroup or {}, min_waves,
                                       (compiler_remarks or {}).get(arch))
            elif path.suffix == ".cubin":
                problems += _check_cubin(arch, path, want, cuobjdump)
            elif path.suffix == ".ptx":
                problems += _check_ptx(arch, path, want, arg_types or {})
            else:
                problems.append(f"{arch}: unknown object kind {entry['file']}")
        except (ValueError, RuntimeError, struct.error, IndexError) as e:
            problems.append(f"{arch}: cannot read {entry['file']}: {e}")
    return problems


def _prefixed(table: dict, name: str):
    for prefix, v in table.items():
        if name.startswith(prefix):
            return v
    return None


def _check_amd(arch, path, want, arg_types, min_workgroup, min_waves, remarks) -> list[str]:
    p: list[str] = []
    meta = amd_metadata(path)
    target = meta.get("amdhsa.target", "")
    if not target.endswith(f"--{arch}") and f"--{arch}:" not in target:
        p.append(f"{arch}: code object target is {target!r}")
    ks = {k[".name"]: k for k in meta.get("amdhsa.kernels", [])}
    missing = sorted(want - set(ks))
    if missing:
        p.append(f"{arch}: kernels missing: {missing}")
    modes = amd_float_modes(path)
    info = AMD_ARCH_INFO.get(arch)
    if info is None:
        p.append(f"{arch}: no register budget known for this architecture (add it to AMD_ARCH_INFO)")
        return p
    wave = wavefront_size(arch)
    for name, k in ks.items():
        r = amd_resources(arch, k)
        where = f"{arch} {name}"
        if k.get(".wavefront_size") != wave:
            p.append(f"{where}: .wavefront_size {k.get('.wavefront_size')}, expected {wave}")
        if r["scratch"] != 0 or r["vgpr_spill"] or r["sgpr_spill"] or k.get(".uses_dynamic_stack"):
            p.append(f"{where}: uses scratch ({r['scratch']} bytes/lane, {r['vgpr_spill']} VGPR and "
                     f"{r['sgpr_spill']} SGPR spills)")
        if r["vgpr"] > (2 * MAX_ARCH_VGPRS if info.unified else MAX_ARCH_VGPRS) or r["agpr"] > MAX_ARCH_VGPRS:
            p.append(f"{where}: {r['vgpr']} VGPRs / {r['agpr']} AGPRs exceed the budget")
        if r["lds"] > MAX_LDS_PER_WORKGROUP:
            p.append(f"{where}: {r['lds']} bytes of LDS exceed {MAX_LDS_PER_WORKGROUP}")
        if r["waves"] < 1:
            p.append(f"{where}: cannot run (occupancy 0)")
        floor = min_waves(arch, name) if min_waves else None
        if floor is not None and r["waves"] < floor:
            p.append(f"{where}: occupancy {r['waves']} waves/SIMD, below the {floor} it is compiled for")
        threads = _prefixed(min_workgroup, name)
        if threads is not None and r["workgroup"] < threads:
            p.append(f"{where}: .max_flat_workgroup_size {r['workgroup']} < the {threads} threads it is launched with")
        m = modes.get(name)
        if m is None:
            p.append(f"{where}: no kernel descriptor")
        elif (m.round_32, m.round_16_64, m.denorm_32, m.denorm_16_64) != (0, 0, 3, 3):
            p.append(f"{where}: float modes {m} (bit-exactness needs round-to-nearest-even and denormals kept)")
        if name in arg_types:
            got = amd_arg_signature(k)
            exp = tuple(_ARG_KINDS[t] for t in arg_types[name])
            if got != exp:
                p.append(f"{where}: arguments {got} do not match the launch spec's {arg_types[name]}")
        if remarks and name in remarks and "Occupancy" in remarks[name]:
            if int(remarks[name]["Occupancy"]) != r["waves"]:
                p.append(f"{where}: computed occupancy {r['waves']} != compiler's {remarks[name]['Occupancy']}")
    return p


def _check_cubin(arch, path, want, cuobjdump) -> list[str]:
    p: list[str] = []
    names = cubin_kernels(path)
    missing = sorted(want - names)
    if missing:
        p.append(f"{arch}: kernels missing: {missing}")
    if cuobjdump:
        got = cubin_arch(path, cuobjdump)
        if got != arch:
            p.append(f"{arch}: cuobjdump says the cubin is for {got}")
        res = cubin_resources(path, cuobjdump) or {}
        for name in sorted(want):
            r = res.get(name)
            if r is None:
                p.append(f"{arch} {name}: no resource usage reported")
            elif r["local"] or r["stack"]:
                p.append(f"{arch} {name}: uses local memory ({r['local']} bytes) / stack ({r['stack']} bytes)")
    return p


def _check_ptx(arch, path, want, arg_types) -> list[str]:
    p: list[str] = []
    entries = ptx_kernels(path)
    missing = sorted(want - set(entries))
    if missing:
        p.append(f"{arch}: kernels missing: {missing}")
    target = ptx_target(path)
    if target != arch.replace("compute_", "sm_"):
        p.append(f"{arch}: PTX .target is {target}")
    for name, types in arg_types.items():
        if name in entries:
            exp = tuple(_ARG_KINDS[t][1] for t in types)
            if entries[name] != exp:
                p.append(f"{arch} {name}: PTX parameter sizes {entries[name]} != launch spec's {exp}")
    return p


# ---------------------------------------------------------------------------------------------- resources.md


def resources_report(directory: Path | None = None, manifest: dict | None = None,
                     compiler_remarks: dict | None = None) -> str:
    """Markdown tables of register use and theoretical occupancy per kernel and architecture."""
    directory = Path(directory or kernels_dir())
    man = manifest or read_manifest(directory)
    objects = man["objects"]
    amd = [a for a in sorted(objects, key=arch_sort_key) if objects[a].get("vendor") == "amd"]
    nv = [a for a in sorted(objects, key=arch_sort_key) if a.startswith("sm_")]
    lines = ["# Kernel resources", "",
             f"Generated by `hsaco/build.py` (source_hash `{man['source_hash'][:16]}`).", ""]
    if amd:
        res = {a: {n: amd_resources(a, k) for n, k in amd_kernels(directory / objects[a]["file"]).items()} for a in amd}
        names = sorted(set().union(*(res[a] for a in amd)))
        lines += ["## AMD", "",
                  "Cell: VGPRs (+AGPRs) / SGPRs → theoretical waves per SIMD (of the maximum in the header). "
                  "Every kernel: 0 bytes scratch; LDS in the last column (bytes, largest over architectures).", "",
                  "| kernel | " + " | ".join(f"{a} (max {AMD_ARCH_INFO[a].max_waves})" if a in AMD_ARCH_INFO else a
                                              for a in amd) + " | LDS |",
                  "|---|" + "---|" * (len(amd) + 1)]
        for n in names:
            cells = []
            for a in amd:
                r = res[a].get(n)
                if r is None:
                    cells.append("—")
                    continue
                regs = f"{r['vgpr']}" + (f"+{r['agpr']}a" if r["agpr"] else "")
                cells.append(f"{regs}/{r['sgpr']} → {r['waves']}")
            lds = max(res[a][n]["lds"] for a in amd if n in res[a])
            lines.append(f"| `{n}` | " + " | ".join(cells) + f" | {lds} |")
        if compiler_remarks:
            bad = [(a, n) for a in amd for n, rm in (compiler_remarks.get(a) or {}).items()
                   if n in res[a] and "Occupancy" in rm and int(rm["Occupancy"]) != res[a][n]["waves"]]
            lines.append("")
            if bad:
                lines.append(f"WARNING: occupancy computed from the notes differs from clang's for {bad}")
            else:
                lines.append("Occupancy computed from the metadata notes agrees with clang's "
                             "`-Rpass-analysis=kernel-resource-usage` remarks for every kernel.")
        lines.append("")
    if nv:
        tool = find_cuobjdump()
        lines += ["## NVIDIA", ""]
        if not tool:
            lines += ["(cuobjdump not installed: `pip install nvidia-cuda-cuobjdump` to list registers)", ""]
        else:
            res = {a: cubin_resources(directory / objects[a]["file"], tool) or {} for a in nv}
            names = sorted(set().union(*(res[a] for a in nv)))
            lines += ["Cell: registers per thread (local memory and stack are 0 unless shown).", "",
                      "| kernel | " + " | ".join(nv) + " |", "|---|" + "---|" * len(nv)]
            for n in names:
                cells = []
                for a in nv:
                    r = res[a].get(n)
                    if r is None:
                        cells.append("—")
                    else:
                        extra = f" local {r['local']} stack {r['stack']}" if r["local"] or r["stack"] else ""
                        cells.append(f"{r['reg']}{extra}")
                lines.append(f"| `{n}` | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)
