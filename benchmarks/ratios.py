"""Headline speed ratios of maxlik against its strongest anchors, measured in one process.

    python benchmarks/ratios.py [--quick] [--only AREA ...] [--rounds N] [--repeat N] [--json F]

The rows are the table of issue 16 (``--quick``: the small sizes, for a smoke
run). Every row times maxlik and each installed peer on the same data,
interleaved in rounds so that all see the same machine load, with the same
thread count (maxlik.get_num_threads(); torch, faiss and the BLAS are limited
to it), and reports the median and the ratio peer / maxlik (> 1: maxlik is
faster). Peers: scipy, scikit-learn, scikit-learn-intelex, torch, jax,
faiss-cpu, pomegranate -- each skipped with a note when not installed
(``pip install 'maxlik[bench]'``).

Every row also reports the fraction of its floor maxlik reaches: the machine's
streaming-read bandwidth and DGEMM/SGEMM rate are measured first, in this
process (numpy), and a row's floor time is max(bytes / bandwidth, FLOPs /
GEMM rate) for the bytes and FLOPs it cannot avoid (see maxlik._bench).

The cases live in maxlik/_bench.py (one copy, shared with ``maxlik bench``).
Timing stays out of the test suite.
"""
from __future__ import annotations

import argparse
import json

from maxlik import _bench


def markdown(d):
    """The README's benchmark table from a measure() result."""
    rows = {}
    for r in d["results"]:
        rows.setdefault(r["case"], []).append(r)
    lines = ["| workload | maxlik | strongest anchor | ratio | other anchors | % of floor |",
             "|---|---|---|---|---|---|"]
    for case, rs in rows.items():
        ours = next(r for r in rs if r["impl"] == "maxlik")
        peers = sorted((r for r in rs if r["impl"] != "maxlik"), key=lambda r: r["median_s"])
        strongest = (f"{peers[0]['impl']} {_ms(peers[0]['median_s'])}" if peers else "—")
        ratio = f"{peers[0]['speedup_vs_maxlik']:.2f}×" if peers else "—"
        others = "; ".join(f"{r['impl']} {r['speedup_vs_maxlik']:.1f}×" for r in peers[1:]) or "—"
        floor = (f"{100 * ours['floor_fraction']:.0f}% ({ours['achieved']:.1f} {ours['unit']})"
                 if "floor_fraction" in ours else "—")
        lines.append(f"| {case} | {_ms(ours['median_s'])} | {strongest} | {ratio} | {others} "
                     f"| {floor} |")
    f = d["floors"]
    lines.append("")
    lines.append(f"Floors measured in the same run: streaming read {f['read_GBps']:.1f} GB/s, "
                 f"DGEMM {f['dgemm_GFLOPs']:.1f} GFLOP/s, SGEMM {f['sgemm_GFLOPs']:.1f} GFLOP/s; "
                 f"{d['threads']} thread(s), {d['isa']}, load average {d['loadavg']}.")
    return "\n".join(lines)


def _ms(s):
    return f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, one round (a smoke run)")
    ap.add_argument("--only", nargs="*", choices=sorted(_bench.CASES), help="areas to run")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 3; --quick 1)")
    ap.add_argument("--repeat", type=int, help="runs per implementation and round (default 5)")
    ap.add_argument("--json", metavar="FILE", help="also write the raw results as JSON")
    args = ap.parse_args()
    size = "small" if args.quick else "full"
    rounds = args.rounds or (1 if args.quick else None)
    d = _bench.measure(args.only or list(_bench.CASES), size, args.repeat, rounds,
                       out=__import__("sys").stdout)
    print()
    print(markdown(d))
    for s in d["skipped"]:
        print(f"skipped: {s.get('case', s['area'])}: {s['reason']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(d, fh, indent=2)
