"""CPU flags, read as the kernel lists them."""

from __future__ import annotations

from tweetcls.core.host import BF16_FLAGS, cpu_flags


def test_cpu_flags_are_those_asked_for_that_the_cpu_lists(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC avx512_bf16 in a name is no flag\n"
        "flags\t\t: fpu avx2 avx512f avx512_vnni\n"
    )
    assert cpu_flags(cpuinfo=cpuinfo) == ["avx2", "avx512f", "avx512_vnni"]
    assert cpu_flags(BF16_FLAGS, cpuinfo) == []
    assert cpu_flags(cpuinfo=tmp_path / "missing") == []
