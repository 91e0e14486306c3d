"""`edge bench`: per-stage latency of one or more models on this machine, as a table and as JSON.

Each measured prediction is timed in five stages with one clock (`time.perf_counter`):

  decode       the encoded file (read into memory beforehand: disk time is left out) to BGR,
               through the runtime's own reader (`edge.inputs.read_image_bytes`)
  preprocess   resize / normalise / layout (LocalPredictor's own stage timing)
  inference    the engine's run (Paddle Lite or Paddle Inference)
  postprocess  threshold, clip, masks per kept box
  visualise    masks, boxes and labels drawn on the picture (`edge.visualize.draw_instances`)

`total` is timed around the whole prediction on its own, so the stages' means summing to the
total's mean (`stage_sum_ratio` ≈ 1) is a check that no work was left out of the stages, not an
identity. (Means, not medians: the median of a sum is not the sum of the medians when a loaded
machine adds rare stalls to every stage.)

Several models (`--compare`) are measured side by side: round after round, every model predicts
the same image before the next image comes, so a machine that warms up or throttles slows them
alike; the ratios are each model's median over the first model's median.

Memory: `peak_rss_bytes` is the process's high-water mark (VmHWM) after a model's load and
warm-up. Where Linux lets us reset it (`/proc/self/clear_refs`), it is reset before each model is
loaded, and `rss_increase_bytes` (that peak less the RSS before the load) is the model's own
share; the models loaded before it stay in the process, so with `--compare` read the increase.
`process_peak_rss_bytes` is the whole run's peak.
"""
from __future__ import annotations

import glob
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .config import check_threshold
from .errors import ConfigError, InputError
from .inputs import IMAGE_SUFFIXES, read_image_bytes

STAGES = ("decode", "preprocess", "inference", "postprocess", "visualise")
PERCENTILES = (50, 90, 99)
SCHEMA = "edge-bench/1"
DEFAULT_THRESHOLD = 0.5


# ------------------------------------------------------------------------------------ inputs
def load_inputs(source: Path) -> List[Tuple[str, bytes]]:
    """(name, encoded bytes) of an image, or of every image in a directory (sorted, not recursive).

    Every image is decoded once here, so a file that cannot be used is reported before any model
    is loaded, by name, rather than in the middle of a measurement.
    """
    source = Path(source)
    if not source.exists():
        raise InputError(str(source), "no such file or directory; pass an image or a directory of images")
    if source.is_dir():
        paths = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise InputError(str(source), f"the directory has no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    else:
        paths = [source]
    inputs = []
    for path in paths:
        data = path.read_bytes()
        read_image_bytes(data, str(path))  # raises InputError naming the file
        inputs.append((path.name, data))
    return inputs


# ------------------------------------------------------------------------------------ models
@dataclass
class Candidate:
    """One model to measure: what the user named, and the engine to run it with."""

    spec: str  # as given: a bundle / inference directory path or a model name, optional "@lite" / "@paddle"
    label: str = ""
    model: Optional[str] = None
    backend: str = "auto"

    def __post_init__(self) -> None:
        from .backends import ENGINES

        model, _, backend = self.spec.rpartition("@")
        if model and backend in ENGINES and not Path(self.spec).exists():
            self.model, self.backend = model, backend
        else:
            self.model = self.spec
        if not self.model:
            raise ConfigError(f"empty model in {self.spec!r}; pass a bundle, an inference directory or a model name")
        self.label = self.label or (Path(self.model).name if Path(self.model).exists() else self.model) + (
            f"@{self.backend}" if self.backend != "auto" else "")


def parse_candidates(model: Optional[str], compare: Optional[Sequence[str]]) -> List[Candidate]:
    """`--model A` alone, or `--compare B C ...` (with `--model A` first when given): 2 or more."""
    specs = ([model] if model else []) + list(compare or [])
    if not specs:
        raise ConfigError("pass --model (a bundle, an inference directory or a model name) or --compare A B")
    if compare is not None and len(specs) < 2:
        raise ConfigError(f"--compare needs two or more models in all, got {len(specs)} ({', '.join(specs)})")
    candidates = [Candidate(s) for s in specs]
    seen: Dict[str, int] = {}
    for c in candidates:  # labels key the JSON: make repeats distinct
        seen[c.label] = seen.get(c.label, 0) + 1
        if seen[c.label] > 1:
            c.label = f"{c.label}#{seen[c.label]}"
    return candidates


def open_candidate(candidate: Candidate, threads: Optional[int], power_mode: Optional[str]):
    """A LocalPredictor for the candidate (a bench measures this machine, never a server)."""
    from .models import named_model_dir, open_model_dir
    from .predictor import LocalPredictor

    path = Path(candidate.model)
    model = open_model_dir(path if path.exists() else named_model_dir(candidate.model))
    return LocalPredictor(model, candidate.backend, threads=threads, power_mode=power_mode)


def model_size_bytes(predictor) -> int:
    """The bytes a board must hold: model.nb for a bundle; program + parameters for an inference directory."""
    path = Path(predictor.model.path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.iterdir()
               if p.is_file() and p.suffix in (".pdmodel", ".pdiparams", ".json", ".nb"))


# ------------------------------------------------------------------------------------ memory
def _status_kib(key: str) -> Optional[int]:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_bytes() -> Optional[int]:
    """The process's peak resident memory (VmHWM; ru_maxrss where /proc is missing)."""
    kib = _status_kib("VmHWM")
    if kib is None:
        try:
            import resource

            kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        except (ImportError, OSError):
            return None
    return kib * 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# ------------------------------------------------------------------------------------ machine
def _read(path: str) -> Optional[str]:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Hardware", "Model", "cpu model"):
        for line in text.splitlines():
            if line.split(":")[0].strip() == key and ":" in line:
                return line.split(":", 1)[1].strip()
    board = _read("/proc/device-tree/model")  # Raspberry Pi, Jetson
    if board:
        return board.rstrip("\x00")
    return platform.processor() or platform.machine()


def cpu_freq_mhz() -> Optional[Dict[str, float]]:
    """Current frequency per core from cpufreq (min / max over cores), else /proc/cpuinfo's MHz."""
    values = [int(v) / 1000.0 for v in (_read(p) for p in glob.glob("/sys/devices/system/cpu/cpu*/cpufreq/scaling_cur_freq")) if v]
    if not values:
        values = [float(line.split(":")[1]) for line in (_read("/proc/cpuinfo") or "").splitlines()
                  if line.startswith("cpu MHz") and ":" in line]
    return {"min": min(values), "max": max(values)} if values else None


def temperature_c() -> Optional[float]:
    """The hottest thermal zone, where the kernel exposes one (boards do; VMs often do not)."""
    values = []
    for path in glob.glob("/sys/class/thermal/thermal_zone*/temp"):
        text = _read(path)
        if text and text.lstrip("-").isdigit():
            values.append(int(text) / 1000.0)
    return max(values) if values else None


def _version(package: str) -> Optional[str]:
    try:
        from importlib.metadata import version

        return version(package)
    except Exception:  # not installed
        return None


def machine_info() -> Dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model(), "arch": platform.machine(), "cores": os.cpu_count(), "usable_cores": usable,
        "freq_mhz": cpu_freq_mhz(), "temperature_c": temperature_c(), "os": platform.platform(),
        "python": platform.python_version(), "paddlelite": _version("paddlelite"),
        "paddlepaddle": _version("paddlepaddle"), "numpy": np.__version__,
    }


# ------------------------------------------------------------------------------------ measuring
@dataclass
class _Samples:
    seconds: Dict[str, List[float]] = field(default_factory=lambda: {s: [] for s in (*STAGES, "total")})
    instances: List[int] = field(default_factory=list)


def predict_timed(predictor, data: bytes, name: str, threshold: float) -> Tuple[Dict[str, float], int]:
    """One prediction from the encoded bytes to the drawn picture: seconds per stage and in total."""
    from .visualize import draw_instances

    start = time.perf_counter()
    image = read_image_bytes(data, name)
    decoded = time.perf_counter()
    detections = predictor(image, threshold)
    predicted = time.perf_counter()
    draw_instances(image, detections.boxes, detections.masks)
    end = time.perf_counter()
    stages = predictor.last_stage_seconds
    seconds = {"decode": decoded - start, "preprocess": stages["preprocess"], "inference": stages["model"],
               "postprocess": stages["postprocess"], "visualise": end - predicted, "total": end - start}
    return seconds, len(detections.boxes)


def percentiles_ms(values: Sequence[float]) -> Dict[str, float]:
    ms = np.asarray(values, dtype=np.float64) * 1000.0
    out = {f"p{p}": float(np.percentile(ms, p)) for p in PERCENTILES}
    out["mean"] = float(ms.mean())
    return out


def run_bench(candidates: Sequence[Candidate], inputs: Sequence[Tuple[str, bytes]], *, threads: Optional[int] = None,
              power_mode: Optional[str] = None, warmup: int = 3, repeat: int = 20,
              threshold: float = DEFAULT_THRESHOLD, progress: Any = None) -> Dict[str, Any]:
    """Measure every candidate on the inputs, side by side; the report `edge bench --json` writes."""
    if repeat < 1 or warmup < 0:
        raise ConfigError(f"repeat must be >= 1 and warmup >= 0, got repeat={repeat}, warmup={warmup}")
    if not inputs:
        raise InputError("<inputs>", "no images to measure")
    threshold = check_threshold(threshold)
    machine = machine_info()
    resettable = reset_peak_rss()
    predictors, facts = [], []
    for candidate in candidates:
        reset_peak_rss()
        rss_before = (_status_kib("VmRSS") or 0) * 1024
        loaded_at = time.perf_counter()
        predictor = open_candidate(candidate, threads, power_mode)
        load_seconds = time.perf_counter() - loaded_at
        for i in range(warmup):
            name, data = inputs[i % len(inputs)]
            predict_timed(predictor, data, name, threshold)
        manifest = predictor.model.manifest or {}
        facts.append({
            "label": candidate.label, "model": candidate.model, "engine": predictor.name,
            "model_kind": predictor.model.kind, "model_name": predictor.spec.model_name,
            "precision": manifest.get("precision", "fp32"), "target": manifest.get("target", "paddle"),
            "input_size": list(predictor.spec.input_size) if predictor.spec.input_size else None,
            "model_size_bytes": model_size_bytes(predictor), "load_seconds": load_seconds,
            "peak_rss_bytes": peak_rss_bytes(), "rss_increase_bytes": (peak_rss_bytes() or 0) - rss_before,
        })
        predictors.append(predictor)
    samples = [_Samples() for _ in candidates]
    for i in range(repeat):  # rounds: every model on the same image before the next image
        name, data = inputs[i % len(inputs)]
        for predictor, sample in zip(predictors, samples):
            seconds, count = predict_timed(predictor, data, name, threshold)
            for stage, value in seconds.items():
                sample.seconds[stage].append(value)
            sample.instances.append(count)
        if progress is not None:
            progress.update(1)
    results = []
    for fact, sample in zip(facts, samples):
        stages = {stage: percentiles_ms(sample.seconds[stage]) for stage in STAGES}
        total = percentiles_ms(sample.seconds["total"])
        results.append({
            **fact, "stages": stages, "total": total,
            "stage_sum_ratio": sum(s["mean"] for s in stages.values()) / total["mean"],
            "fps": len(sample.seconds["total"]) / sum(sample.seconds["total"]),
            "instances": {"per_image_mean": float(np.mean(sample.instances)), "per_image_max": int(max(sample.instances)),
                          "total": int(sum(sample.instances))},
            "samples_ms": {k: [round(v * 1000.0, 4) for v in vs] for k, vs in sample.seconds.items()},
        })
    machine["temperature_c_end"] = temperature_c()
    return {
        "schema": SCHEMA, "machine": machine,
        "settings": {"threads": threads, "power_mode": power_mode, "warmup": warmup, "repeat": repeat,
                     "threshold": threshold, "images": [n for n, _ in inputs], "peak_rss_per_model": resettable},
        "process_peak_rss_bytes": peak_rss_bytes(),
        "results": results,
        "ratios": ratios(results),
    }


def ratios(results: Sequence[Dict[str, Any]]) -> Dict[str, Dict[str, float]]:
    """Each model's p50 over the first model's, per stage and in total ({} for a single model)."""
    if len(results) < 2:
        return {}
    base = results[0]
    out = {}
    for result in results[1:]:
        row = {stage: _ratio(result["stages"][stage]["p50"], base["stages"][stage]["p50"]) for stage in STAGES}
        row["total"] = _ratio(result["total"]["p50"], base["total"]["p50"])
        row["model_size"] = _ratio(result["model_size_bytes"], base["model_size_bytes"])
        out[result["label"]] = row
    return out


def _ratio(a: float, b: float) -> Optional[float]:
    return a / b if b else None


# ------------------------------------------------------------------------------------ output
def _mb(n: Optional[float]) -> str:
    return "n/a" if n is None else f"{n / 2**20:.1f} MB"


def format_report(report: Dict[str, Any]) -> str:
    """The terminal table: one block of p50 / p90 / p99 per model, and the ratios to the first."""
    m, s = report["machine"], report["settings"]
    freq = f", {m['freq_mhz']['max']:.0f} MHz" if m.get("freq_mhz") else ""
    temp = f", {m['temperature_c']:.0f}->{m['temperature_c_end']:.0f} C" if m.get("temperature_c") is not None \
        and m.get("temperature_c_end") is not None else ""
    lines = [f"machine: {m['cpu_model']} ({m['arch']}, {m['cores']} cores{freq}{temp}); "
             f"paddlelite {m['paddlelite'] or '-'}, paddlepaddle {m['paddlepaddle'] or '-'}",
             f"{len(s['images'])} image(s), warm-up {s['warmup']}, {s['repeat']} measured predictions per model, "
             f"threads {s['threads'] or 'default'}, power mode {s['power_mode'] or 'default'}"]
    results = report["results"]
    width = max(12, *(len(r["label"]) for r in results))
    for r in results:
        lines += ["", f"{r['label']}: {r['model_name']} on {r['engine']} ({r['precision']}, {r['target']}), "
                      f"model {_mb(r['model_size_bytes'])}, peak RSS {_mb(r['peak_rss_bytes'])} "
                      f"(+{_mb(r['rss_increase_bytes'])} for this model), "
                      f"{r['instances']['per_image_mean']:.1f} instances/image, {r['fps']:.2f} FPS",
                  f"  {'stage (ms)':<12} {'p50':>9} {'p90':>9} {'p99':>9} {'mean':>9}"]
        for stage in (*STAGES, "total"):
            v = r["total"] if stage == "total" else r["stages"][stage]
            lines.append(f"  {stage:<12} {v['p50']:9.2f} {v['p90']:9.2f} {v['p99']:9.2f} {v['mean']:9.2f}")
        lines.append(f"  stages sum to {r['stage_sum_ratio']:.1%} of the total (means)")
    if report["ratios"]:
        base = results[0]["label"]
        cols = (*STAGES, "total", "model_size")
        lines += ["", f"ratio of p50 to {base}:", f"  {'model':<{width}} " + " ".join(f"{c:>11}" for c in cols)]
        for label, row in report["ratios"].items():
            lines.append(f"  {label:<{width}} " + " ".join(
                f"{'n/a' if row[c] is None else f'{row[c]:.3f}x':>11}" for c in cols))
    return "\n".join(lines)


def write_json(report: Dict[str, Any], path: Path) -> None:
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise ConfigError(f"--json {path}: the folder {path.parent} does not exist")
    path.write_text(json.dumps(report, indent=1))
