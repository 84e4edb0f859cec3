"""GRU-D training throughput: grukit's GRUD against PyPOTS' GRU-D on the same data and sizes.

    python benchmarks/bench_grud.py [--repeats 7] [--case B,T,V,H ...] [--json results.json]

Needs the `bench` extra (pypots). One training step = forward, cross-entropy on a linear read-out
of the final state, backward, Adam step — for each model on the same batch: values with NaN where
missing (50% at random), the mask, gaps δ from irregular timestamps, 2 classes. PyPOTS' model is
its classifier's core (`BackboneGRUD` + the same linear head), fed what its dataset class feeds it,
the last-observation-carried-forward values and the empirical mean precomputed outside the timed
step (grukit's GRUD computes x_last inside its forward, and is timed with it). Reported: the median
of interleaved repeats (ms per step) and PyPOTS' time / grukit's (higher: grukit faster).
Both run on the same torch threads. The models differ in a documented way (see `grukit.nn.grud`:
PyPOTS' GRU cell also reads ĥ as an input, and resets after the product); parameter counts are
printed beside the times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

CASES = (  # batch, steps, variables, hidden
    (64, 48, 35, 64),  # PhysioNet-2012-like: 48 hourly steps, 35 variables (the paper's setting)
    (32, 100, 6, 32),  # the clinical task's size: 6 variables, ~100 measurement times
    (128, 48, 35, 128),
)


def make_batch(batch: int, steps: int, variables: int, *, seed: int = 0):
    from grukit.nn.time_gaps import last_observed, time_gaps

    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(batch, steps, variables, generator=generator)
    mask = (torch.rand(batch, steps, variables, generator=generator) < 0.5).float()
    times = torch.cumsum(torch.rand(batch, steps, generator=generator) + 0.1, dim=1)
    gaps = time_gaps(mask, times)
    labels = torch.randint(0, 2, (batch,), generator=generator)
    mean = torch.zeros(variables)
    filled = torch.where(mask.bool(), values, torch.zeros(()))
    return {"values": values.masked_fill(mask == 0, float("nan")), "filled": filled, "mask": mask, "gaps": gaps,
            "locf": last_observed(filled, mask, mean), "mean": mean, "labels": labels}


def grukit_step(variables: int, hidden: int):
    from grukit.nn.grud import GRUD

    model, head = GRUD(variables, hidden, batch_first=True), torch.nn.Linear(hidden, 2)
    optimizer = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=1e-3)

    def step(data):
        optimizer.zero_grad()
        _, h_n = model(data["values"], mask=data["mask"], gaps=data["gaps"])
        torch.nn.functional.cross_entropy(head(h_n[0]), data["labels"]).backward()
        optimizer.step()

    return step, sum(p.numel() for p in [*model.parameters(), *head.parameters()])


def pypots_step(steps: int, variables: int, hidden: int):
    from pypots.nn.modules.grud import BackboneGRUD

    model, head = BackboneGRUD(steps, variables, hidden), torch.nn.Linear(hidden, 2)
    optimizer = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=1e-3)

    def step(data):
        optimizer.zero_grad()
        _, h = model(data["filled"], data["mask"], data["gaps"], data["mean"], data["locf"])
        torch.nn.functional.cross_entropy(head(h), data["labels"]).backward()
        optimizer.step()

    return step, sum(p.numel() for p in [*model.parameters(), *head.parameters()])


def measure(repeats: int, cases=CASES) -> list[dict]:
    rows = []
    for batch, steps, variables, hidden in cases:
        data = make_batch(batch, steps, variables)
        runs = {"grukit": grukit_step(variables, hidden), "pypots": pypots_step(steps, variables, hidden)}
        times = {name: [] for name in runs}
        for step, _ in runs.values():  # warm-up (the kernel compiles or loads from its cache)
            step(data)
            step(data)
        for _ in range(repeats):
            for name, (step, _) in runs.items():  # interleaved, so drift hits both alike
                start = time.perf_counter()
                step(data)
                times[name].append(time.perf_counter() - start)
        medians = {name: 1e3 * statistics.median(values) for name, values in times.items()}
        rows.append({"batch": batch, "steps": steps, "variables": variables, "hidden": hidden,
                     "grukit_ms": medians["grukit"], "pypots_ms": medians["pypots"],
                     "speedup": medians["pypots"] / medians["grukit"],
                     "grukit_parameters": runs["grukit"][1], "pypots_parameters": runs["pypots"][1]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--case", action="append", metavar="B,T,V,H",
                        help="run this batch, steps, variables, hidden size (repeatable; default: CASES)")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    cases = tuple(tuple(int(n) for n in case.split(",")) for case in args.case) if args.case else CASES
    try:
        import pypots  # noqa: F401
    except ImportError:
        raise SystemExit("bench_grud needs PyPOTS: pip install 'grukit[bench]'") from None
    rows = measure(args.repeats, cases)
    print(f"GRU-D training step (forward, backward, Adam), {torch.get_num_threads()} torch threads, "
          f"median of {args.repeats} interleaved repeats")
    print("| B | T | V | H | grukit GRUD (ms) | PyPOTS GRU-D (ms) | PyPOTS / grukit | parameters (grukit / PyPOTS) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['batch']} | {row['steps']} | {row['variables']} | {row['hidden']} | {row['grukit_ms']:.1f} | "
              f"{row['pypots_ms']:.1f} | {row['speedup']:.2f}× | {row['grukit_parameters']} / "
              f"{row['pypots_parameters']} |")
    if args.json:
        from pathlib import Path

        from grukit.io.atomic import write_text_atomic

        write_text_atomic(Path(args.json), json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
