"""Training-throughput benchmark: converge (Rust, libtorch) against PyTorch.

For each of the paper's manifests (experiments/paper/{transformer,rnn,
diffusion}.toml) this takes the first run of `converge plan M --json`, then,
for several rounds, times `converge bench M` and bench/reference.py (the same
model, batch size, optimizer and thread count in plain PyTorch) as
subprocesses, alternating which goes first. The medians of each side's
steps/second and peak RSS are written as a Markdown table to BENCHMARKS.md
(and printed), with the ratio converge/PyTorch against the 1.3x target.

Usage, from the repository root, with the venv's Python (it needs torch):

    .venv/bin/python bench/run.py [--steps 30] [--warmup 5] [--rounds 3] \
        [--threads 2] [--out BENCHMARKS.md]

CONVERGE_BIN overrides the converge binary (default target/release/converge).
Exits non-zero, printing the stderr, if any subprocess fails.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tomllib
from pathlib import Path

MANIFESTS = [
    "experiments/paper/transformer.toml",
    "experiments/paper/rnn.toml",
    "experiments/paper/diffusion.toml",
]
REFERENCE = Path(__file__).resolve().parent / "reference.py"
DEFAULT_DATA = "data/mnist"
TARGET_RATIO = 1.3
ANALYSIS_MARKER = "<!-- analysis: kept by bench/run.py -->"


def log(message):
    print(message, file=sys.stderr, flush=True)


def run(cmd):
    """Run a command; its stdout, or exit non-zero showing its stderr."""
    log("$ " + shlex.join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        log(f"command failed with exit status {proc.returncode}: {shlex.join(cmd)}")
        log(proc.stderr.rstrip() or "(no stderr)")
        sys.exit(proc.returncode or 1)
    return proc.stdout


def last_json_line(text, cmd):
    """The last line of a command's stdout that parses as JSON."""
    for line in reversed(text.strip().splitlines()):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    log(f"no JSON line in the output of {shlex.join(cmd)}:\n{text}")
    sys.exit(1)


def data_dir(manifest):
    """The MNIST folder a manifest names ([data] dir, relative to the file),
    or data/mnist when it names none."""
    try:
        with open(manifest, "rb") as f:
            doc = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return DEFAULT_DATA
    d = doc.get("data", {}).get("dir")
    return str((Path(manifest).parent / d).resolve()) if d else DEFAULT_DATA


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def torch_version():
    out = run([sys.executable, "-c", "import warnings; warnings.simplefilter('ignore'); "
               "import torch; print(torch.__version__)"])
    return out.strip().splitlines()[-1]


def git_commit():
    """The checked-out commit, read-only, for the record; None outside git."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def bench_manifest(binary, manifest, args):
    """Median steps/s and peak RSS of both sides for one manifest's first run."""
    plan_cmd = [binary, "plan", manifest, "--json"]
    runs = json.loads(run(plan_cmd))
    if not runs:
        log(f"{manifest}: the plan has no runs")
        sys.exit(1)
    spec = runs[0]["spec"]
    common = ["--steps", str(args.steps), "--warmup", str(args.warmup),
              "--threads", str(args.threads)]
    converge_cmd = [binary, "bench", manifest, *common]
    reference_cmd = [sys.executable, str(REFERENCE), "--spec", json.dumps(spec),
                     "--data", data_dir(manifest), *common]

    results = {"converge": [], "pytorch": []}
    for r in range(args.rounds):
        # Alternate the order, so neither side always runs on a warmer machine.
        order = [("converge", converge_cmd), ("pytorch", reference_cmd)]
        if r % 2 == 1:
            order.reverse()
        for side, cmd in order:
            result = last_json_line(run(cmd), cmd)
            results[side].append(result)
            log(f"  round {r + 1}/{args.rounds} {side}: "
                f"{result['steps_per_sec']:.3f} steps/s, {result['peak_rss_mb']:.0f} MB")

    c, p = results["converge"][0], results["pytorch"][0]
    if c["parameters"] != p["parameters"]:
        log(f"{manifest}: converge has {c['parameters']} parameters, the PyTorch "
            f"reference {p['parameters']}: the models differ, the comparison is void")
        sys.exit(1)
    if c["batch_size"] != p["batch_size"]:
        log(f"{manifest}: batch sizes differ (converge {c['batch_size']}, "
            f"PyTorch {p['batch_size']})")
        sys.exit(1)

    def median(side, key):
        return statistics.median(x[key] for x in results[side])

    row = {
        "model": c.get("model", spec["model"]["kind"]),
        "parameters": c["parameters"],
        "batch": c["batch_size"],
        "converge": median("converge", "steps_per_sec"),
        "pytorch": median("pytorch", "steps_per_sec"),
        "converge_rss": median("converge", "peak_rss_mb"),
        "pytorch_rss": median("pytorch", "peak_rss_mb"),
        "rounds": {s: [x["steps_per_sec"] for x in v] for s, v in results.items()},
    }
    row["ratio"] = row["converge"] / row["pytorch"]
    return row


def table(rows):
    lines = [
        "| model | parameters | batch | converge steps/s | PyTorch steps/s | ratio "
        f"| target (>= {TARGET_RATIO}x) | converge peak RSS MB | PyTorch peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        met = "met" if r["ratio"] >= TARGET_RATIO else "not met"
        lines.append(
            f"| {r['model']} | {r['parameters']:,} | {r['batch']} | {r['converge']:.2f} "
            f"| {r['pytorch']:.2f} | {r['ratio']:.2f}x | {met} "
            f"| {r['converge_rss']:.0f} | {r['pytorch_rss']:.0f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=30, help="timed training steps per run")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps before timing")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each side per model")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads, both sides")
    ap.add_argument("--out", default="BENCHMARKS.md", help="Markdown report to write")
    args = ap.parse_args(argv)

    binary = os.environ.get("CONVERGE_BIN", "target/release/converge")
    if not Path(binary).exists():
        log(f"converge binary not found at {binary} (build it, or set CONVERGE_BIN)")
        sys.exit(1)

    rows, notes = [], []
    for manifest in MANIFESTS:
        if not Path(manifest).exists():
            notes.append(f"{manifest} is missing: skipped.")
            log(notes[-1])
            continue
        log(f"== {manifest}")
        rows.append(bench_manifest(binary, manifest, args))

    command = "python bench/run.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    commit = git_commit()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = table(rows) if rows else "(no manifest found: nothing measured)"
    raw = "\n".join(
        f"- {r['model']}: converge {', '.join(f'{x:.2f}' for x in r['rounds']['converge'])}; "
        f"PyTorch {', '.join(f'{x:.2f}' for x in r['rounds']['pytorch'])}"
        for r in rows
    )
    report = f"""# Benchmarks: converge vs PyTorch

Training throughput of converge (Rust, libtorch through tch) against a plain
PyTorch script (`bench/reference.py`) training the same model: identical
architecture and parameter count, batch size, optimizer and thread count.
Each model is the first run of `converge plan experiments/paper/<model>.toml`.
A step is: index a shuffled batch, forward, loss, zero_grad, backward,
optimizer step; both sides read the loss back every 10 steps.

- Command: `{command}`{f" (commit {commit})" if commit else ""}
- Date: {now}
- CPU: {cpu_model()} (CPU only)
- Threads: {args.threads} (intra-op, both sides)
- Steps: {args.steps} timed after {args.warmup} warm-up, {args.rounds} rounds per side,
  alternating which side runs first; medians reported
- torch: {torch_version()} (the reference; converge links the same libtorch)
- Ratio = converge steps/s / PyTorch steps/s; the target is >= {TARGET_RATIO}x.
  Peak RSS is each process's maximum resident set size.

{body}
"""
    if raw:
        report += f"\nSteps/s of each round:\n\n{raw}\n"
    if notes:
        report += "\n" + "\n".join(f"Note: {n}" for n in notes) + "\n"
    # Keep the hand-written analysis (profiles, explanations) below the
    # marker: only the measurements above it are regenerated.
    out = Path(args.out)
    if out.exists() and ANALYSIS_MARKER in out.read_text():
        report = report.rstrip("\n") + "\n\n" + ANALYSIS_MARKER + out.read_text().split(ANALYSIS_MARKER, 1)[1]
    out.write_text(report)
    print(body)
    for n in notes:
        print(f"Note: {n}")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
