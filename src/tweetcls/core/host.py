"""What this machine's CPU can do, for the choices that depend on it (bf16 training, int8)."""

from __future__ import annotations

from pathlib import Path

#: Flags that decide how fast (and, for 8-bit dot products, how exactly) a CPU runs a model:
#: AVX2 alone, AVX-512, VNNI (int8 dot products without saturation), bf16 units, AMX.
MODEL_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
#: Flags of CPUs that compute in bf16 natively.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(
    names: tuple[str, ...] = MODEL_FLAGS, cpuinfo: Path = Path("/proc/cpuinfo")
) -> list[str]:
    """Those of ``names`` that the CPU reports, in the order given; ``[]`` when its flags
    cannot be read (not Linux).

    Args:
        names: The flags asked about.
        cpuinfo: Where the kernel lists the CPU's flags.
    """
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    present = {
        flag for line in text.splitlines() if line.startswith("flags") for flag in line.split()
    }
    return [name for name in names if name in present]
