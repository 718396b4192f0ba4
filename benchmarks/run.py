"""Runs the benchmarks, prints their tables and writes ``results/<machine>.json``.

    python -m benchmarks.run [--quick] [--gpu] [--only NAME[,NAME...]] [--readme]

``--readme`` also replaces the results section of ``benchmarks/README.md`` with the
tables of this run (use it for full runs). ``--gpu`` is the accelerator suite: the
IWAE and VDM training steps also at batch 1000, K = 5000 evaluation of the whole test
set in one call, PyTorch on the GPU, and FLOP rates against float32 (default and
highest precision) and bfloat16 matmul rates measured in the same run.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import pathlib
import sys
import time
import traceback

HERE = pathlib.Path(__file__).resolve().parent

# name -> (module, the vbounds module it needs)
BENCHMARKS = {
    "iwae_step": ("benchmarks.iwae_step", "vbounds.estimators"),
    "loglik": ("benchmarks.loglik", "vbounds.evaluation"),
    "mi": ("benchmarks.mi_bounds", "vbounds.mi"),
    "diffusion": ("benchmarks.diffusion_vlb", "vbounds.diffusion"),
    "multidevice": ("benchmarks.multidevice", "vbounds.estimators"),
    "framework": ("benchmarks.framework_overhead", "vbounds.lab.train"),
}
# The accelerator suite (--gpu): what a GPU changes; mi and multidevice are CPU questions.
GPU_BENCHMARKS = ["iwae_step", "loglik", "diffusion", "mi"]
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    cols = list(rows[0])
    for row in rows[1:]:
        cols += [c for c in row if c not in cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def section(name: str, result: dict) -> str:
    parts = [f"### {name}: {result.get('title', '')}", "", markdown_table(result["rows"])]
    notes = result.get("notes") or []
    if notes:
        parts += [""] + [f"- {n}" for n in notes]
    if "elapsed_s" in result:
        load = ", ".join(f"{v:.1f}" for v in result.get("load_average_after", []))
        parts += [
            "",
            f"_`{result.get('command', '')}`: {result['elapsed_s']:.0f} s; 1/5/15-min load "
            f"average after: {load}_",
        ]
    return "\n".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {list(BENCHMARKS)}")
    parser.add_argument("--readme", action="store_true", help="write the tables into README.md")
    parser.add_argument("--gpu", action="store_true", help="the accelerator suite (see above)")
    args = parser.parse_args(argv)
    default = GPU_BENCHMARKS if args.gpu else list(BENCHMARKS)
    names = [n for n in args.only.split(",") if n] or default
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")

    from benchmarks import common

    if args.gpu and not common.is_gpu() and not args.quick:
        parser.error("--gpu needs a GPU backend (on a CPU only with --quick, as a smoke run)")
    info = common.machine_info()
    print(
        f"machine: {info['slug']} ({info['platform']}), jax {info['jax']}, "
        f"load average {info['load_average_at_start']}",
        flush=True,
    )
    command = (
        "python -m benchmarks.run"
        + (" --quick" if args.quick else "")
        + (" --gpu" if args.gpu else "")
        + (f" --only {args.only}" if args.only else "")
    )
    results: dict = {}
    for name in names:
        module_name, needs = BENCHMARKS[name]
        try:
            importlib.import_module(needs)
        except ImportError as err:
            note = f"skipped: {needs} is not importable ({err})"
            print(f"\n### {name}: {note}", flush=True)
            results[name] = {"skipped": note, "rows": [], "notes": [note]}
            continue
        start = time.perf_counter()
        try:
            run = importlib.import_module(module_name).run
            kwargs = {"quick": args.quick}
            if "gpu" in inspect.signature(run).parameters:
                kwargs["gpu"] = args.gpu
            result = run(**kwargs)
        except Exception:  # noqa: BLE001 - one failing benchmark must not hide the others
            note = "failed:\n" + traceback.format_exc()
            print(f"\n### {name}: {note}", flush=True)
            results[name] = {"failed": note, "rows": [], "notes": [note.splitlines()[-1]]}
            continue
        result["elapsed_s"] = time.perf_counter() - start
        result["load_average_after"] = list(os.getloadavg())
        result["command"] = command
        results[name] = result
        print("\n" + section(name, result), flush=True)

    for result in results.values():
        result["command"] = command
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    gpu_mode = "-gpu-mode" if args.gpu and not common.is_gpu() else ""
    path = out_dir / f"{info['slug']}{gpu_mode}{'-quick' if args.quick else ''}.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    for result in previous.get("benchmarks", {}).values():
        result.setdefault("command", previous.get("command", ""))
    merged = previous.get("benchmarks", {}) | results
    payload = {
        "machine": info,
        "mode": "quick" if args.quick else "full",
        "command": command,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "benchmarks": merged,
    }
    path.write_text(json.dumps(payload, indent=1, default=float) + "\n")
    print(f"\nwrote {path.relative_to(HERE.parent)}")
    if args.readme:
        _write_readme(payload)
    return 1 if any("failed" in r for r in results.values()) else 0


def _write_readme(payload: dict) -> None:
    readme = HERE / "README.md"
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md lacks the {BEGIN} / {END} markers")
    info = payload["machine"]
    body = [
        BEGIN,
        "",
        f"Last command: `{payload['command']}` ({payload['mode']} mode), finished "
        f"{payload['finished']}; each section names the command that produced it.",
        f"Machine: `{info['slug']}`, {info['platform']}, jax {info['jax']}, "
        f"backend {info['backend']}; load average at start "
        f"{', '.join(f'{v:.1f}' for v in info['load_average_at_start'])}.",
        "",
    ]
    for name, result in payload["benchmarks"].items():
        body += [section(name, result), ""]
    body.append(END)
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    readme.write_text(head + "\n".join(body) + tail)
    print(f"updated {readme.relative_to(HERE.parent)}")


if __name__ == "__main__":
    sys.exit(main())
