"""Per-object cost of the v1 → v3 conversion and of its validation, without etcd.

    python3 bench/migration/profile_convert.py [--hosts 1000] [--workloads 20000] [--profile]

Converts the generated dataset three ways (no validation, the validator with its defensive deep
copy, and the migration's own call on converter-owned objects) and prints CPU microseconds per
object, best of ``--repeat``; ``--profile`` adds a cProfile of the migration's conversion.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from datagen import calico_v1_dataset as gen

from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import validate
from ansible_collections.kubescale.calico.plugins.module_utils.migration import phases, v1_convert, v1_model


def best_cpu(data: v1_model.V1Data, validator, repeat: int) -> tuple[float, int]:
    best, count = float("inf"), 0
    for _run in range(repeat):
        start = time.process_time()
        conv = v1_convert.convert(data, validate=validator)
        best, count = min(best, time.process_time() - start), len(conv.resources)
    return best, count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--workloads", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    data = v1_model.V1Data()
    for key, value in gen.generate(hosts=args.hosts, workloads=args.workloads):
        data.add(key, value)
    bare, n = best_cpu(data, None, args.repeat)
    copying = best_cpu(data, validate, args.repeat)[0]
    owned = best_cpu(data, phases._validate_owned, args.repeat)[0]
    print(f"{n} objects; CPU per object, best of {args.repeat}:")
    print(f"  conversion alone                    {bare / n * 1e6:7.1f} us")
    print(f"  validation, defensive deep copy     {(copying - bare) / n * 1e6:7.1f} us")
    print(f"  validation as the migration runs it {(owned - bare) / n * 1e6:7.1f} us (converter-owned objects)")
    if args.profile:
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        v1_convert.convert(data, validate=phases._validate_owned)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
