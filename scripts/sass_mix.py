"""The instruction mix of each attention kernel in `cuobjdump --dump-sass` output (stdin).

One line per kernel and architecture: its family and Traits arguments (head dim, key-tile width, schedule flags, from the
mangled name) and the count of the opcodes that matter for the softmax's pipes (MUFU: special
function unit; F2FP: fp32 -> 16-bit conversion; FFMA/FADD/FMUL/FMNMX: FMA pipe; IMAD/PRMT/IADD3/LOP3:
integer pipe), the tensor-core instructions (HGMMA) and local-memory traffic (LDL/STL: spills).
Static counts, not executed ones: they show what the compiler emitted, not how often it ran.

    cuobjdump --dump-sass lvsa_cuda_variants | python3 scripts/sass_mix.py
"""

import collections
import re
import sys

OPS = ["HGMMA", "MUFU", "F2FP", "FFMA", "FADD", "FMUL", "FMNMX", "IMAD", "PRMT", "IADD3", "LOP3", "SHF",
       "SHFL", "BAR", "SYNCS", "LDL", "STL"]


def kernels(lines):
    name, counts, arch = None, collections.Counter(), "?"
    for line in lines:
        m = re.search(r"arch = (sm_\w+)", line)
        if m:
            arch = m.group(1)
        m = re.search(r"Function : (\S+)", line)
        if m:
            if name:
                yield name, counts
            name, counts = f"{arch} {m.group(1)}", collections.Counter()
            continue
        m = re.search(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)(\.[A-Z0-9_.]+)?", line)
        if name and m:
            counts[m.group(1)] += 1
    if name:
        yield name, counts


def main():
    print(f"{'arch family dtype D [N flags]':36s}" + "".join(f"{op:>7s}" for op in OPS))
    for name, counts in kernels(sys.stdin):
        if "fwd_kernel" not in name:
            continue
        arch = name.split()[0]
        family = "sm90" if "sm90" in name else "sm80"
        dtype = "bf16" if "bfloat16" in name else "fp16" if "half" in name else "?"
        if "fp8_e4m3" in name:  # fp8 scores: the instantiation spec's e4m3/<dtype>
            dtype = f"e4m3/{dtype}"
        args = " ".join(re.findall(r"Li(\d+)E", name))
        print(f"{' '.join([arch, family, dtype, args]):36s}" + "".join(f"{counts[op]:7d}" for op in OPS))


if __name__ == "__main__":
    main()
