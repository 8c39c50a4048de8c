"""``scripts/_bench_common.py``: the one record of the host, and the plain tables."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from helpers.scripts import import_script

common = import_script("_bench_common")


def test_host_info_reads_the_cpu_once_for_every_benchmark() -> None:
    machine = common.host_info(("numpy", "no-such-package"))
    assert machine["host"] == platform.node() and machine["cpus"] == os.cpu_count()
    cpuinfo = Path("/proc/cpuinfo").read_text()
    flags = next(line for line in cpuinfo.splitlines() if line.startswith("flags")).split()
    assert machine["cpu_model"] in cpuinfo
    assert machine["cpu_flags"] == [flag for flag in common.CPU_FLAGS if flag in flags]
    # CPUID as this process sees it; every host this project supports has AVX2
    assert "AVX2" in machine["simd_features"]
    assert set(machine["simd_features"]) <= set(common.SIMD_FEATURES)
    assert 1 <= machine["physical_cores"] <= machine["cpus"]
    assert machine["versions"]["numpy"] and machine["versions"]["no-such-package"] is None


def test_plain_table_columns_and_formats(capsys) -> None:
    rows = [{"name": "a", "rate": 1.25, "rounds": [1.0, 2.5]}, {"name": "bb", "rate": None}]
    common.print_table(rows, "name rate:.1f rounds:.1f")
    assert capsys.readouterr().out.splitlines() == [
        "name  rate   rounds",
        "a      1.2  1.0 2.5",
        "bb       -        -",
    ]
