"""What `edge serve --ray` deploys, without Ray: the options and the deployments' settings.

One set of options feeds both ways of deploying: `edge serve --ray ...` (edge/cli.py) and a Ray
Serve config file (`serve run` / `serve deploy` / KubeRay's `RayService`), whose application names
`APP_IMPORT_PATH` with flat `args` (the CLI's option names with underscores). Both end in
`ClusterOptions.from_args`, so a bad value gets the same one-line `ConfigError` either way, before
Ray is imported or a model is loaded.

Mapping onto Ray Serve (ray_app.py):

* model replicas (one pipeline = one model copy each, one image at a time): `replicas`, or
  `autoscale` (min, max) with `target_ongoing_requests` 1 (scale up as soon as requests wait);
  each reserves `threads` CPUs (1 when not given), `max_ongoing_requests` = 1 + `max_queue`, and
  a dying replica's work is answered 503 + Retry-After by the ingress (Ray restarts the replica);
* the ingress (the unchanged FastAPI app, no model, 0 CPUs): admits `replicas + max_queue`
  requests (the most replicas with autoscale), more get the contract's 503 at once, exactly as
  `--workers N` with N threads.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from ..config import PIPELINE_NAME, check_threshold
from ..errors import ConfigError
from .limits import MiB, ServeLimits

APP_IMPORT_PATH = "edge.serve.ray_app:build_app"  # what a Ray Serve config / KubeRay RayService names
APP_NAME = "edge"
INGRESS_MAX_ONGOING = 1024  # the ingress only parses and waits; the gate bounds the real work

# flat option name -> ServeLimits field (sizes in MiB on the command line and in config files)
_LIMIT_ARGS = {"max_queue": "max_queue", "body_timeout": "body_timeout", "max_pixels": "max_pixels",
               "max_decodes": "max_decodes", "url_timeout": "url_timeout", "allow_private_urls": "allow_private_urls",
               "graceful_timeout": "graceful_timeout"}
_MODEL_ARGS = ("pipeline", "model", "model_dir", "backend", "threads", "threshold")
KNOWN_ARGS = frozenset(_LIMIT_ARGS) | {"max_body_mb", "url_max_mb", "no_visualize", "replicas", "autoscale",
                                      *_MODEL_ARGS}


def parse_autoscale(text: str) -> Tuple[int, int]:
    """`MIN:MAX` replicas, 0 <= MIN <= MAX, MAX >= 1."""
    low, sep, high = str(text).partition(":")
    try:
        bounds = (int(low), int(high)) if sep else None
    except ValueError:
        bounds = None
    if bounds is None or bounds[0] < 0 or bounds[1] < max(1, bounds[0]):
        raise ConfigError(f"autoscale must be MIN:MAX replicas with 0 <= MIN <= MAX and MAX >= 1, got {text!r}")
    return bounds


@dataclass(frozen=True)
class ClusterOptions:
    pipeline: str = PIPELINE_NAME
    overrides: Optional[Dict[str, Any]] = None  # pipeline-config overrides (model, backend, threads, threshold)
    limits: ServeLimits = ServeLimits()  # `workers` = the most model replicas
    visualize: bool = True
    replicas: int = 1
    autoscale: Optional[Tuple[int, int]] = None
    replica_cpus: float = 1.0

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> "ClusterOptions":
        """Flat options (a config file's `args`, or the CLI's): unknown names and bad values are refused."""
        unknown = sorted(set(args) - KNOWN_ARGS)
        if unknown:
            raise ConfigError(f"unknown option(s) for {APP_IMPORT_PATH}: {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(KNOWN_ARGS))}")
        if args.get("model") and args.get("model_dir"):
            raise ConfigError("pass either model or model_dir, not both")
        if args.get("replicas") is not None and args.get("autoscale") is not None:
            raise ConfigError("pass either replicas or autoscale, not both")
        autoscale = parse_autoscale(args["autoscale"]) if args.get("autoscale") is not None else None
        replicas = _count(args.get("replicas", 1) if args.get("replicas") is not None else 1, "replicas")
        threads = _count(args["threads"], "threads") if args.get("threads") is not None else None
        limits = {field: args[name] for name, field in _LIMIT_ARGS.items() if args.get(name) is not None}
        for name, field in (("max_body_mb", "max_body_bytes"), ("url_max_mb", "url_max_bytes")):
            if args.get(name) is not None:
                megabytes = args[name]
                if isinstance(megabytes, bool) or not isinstance(megabytes, (int, float)) or not math.isfinite(megabytes) \
                        or megabytes <= 0:
                    raise ConfigError(f"{name} must be a number of MiB > 0, got {megabytes!r}")
                limits[field] = int(megabytes * MiB)
        most = autoscale[1] if autoscale else replicas
        return cls(pipeline=str(args.get("pipeline") or PIPELINE_NAME),
                   overrides=_pipeline_overrides(args, threads), limits=ServeLimits(workers=most, **limits),
                   visualize=not args.get("no_visualize", False), replicas=replicas, autoscale=autoscale,
                   replica_cpus=float(threads or 1))

    def model_deployment(self) -> Dict[str, Any]:
        """`serve.deployment` options of the model replicas."""
        options: Dict[str, Any] = {
            "max_ongoing_requests": 1 + self.limits.max_queue,
            "ray_actor_options": {"num_cpus": self.replica_cpus},
            "graceful_shutdown_timeout_s": self.limits.graceful_timeout,
            "health_check_period_s": 2.0,  # a dead replica is noticed (and restarted) quickly
        }
        if self.autoscale:
            options["autoscaling_config"] = {"min_replicas": self.autoscale[0], "max_replicas": self.autoscale[1],
                                             "target_ongoing_requests": 1}
        else:
            options["num_replicas"] = self.replicas
        return options

    def ingress_deployment(self) -> Dict[str, Any]:
        """`serve.deployment` options of the ingress (the FastAPI app, one replica, no model)."""
        return {"num_replicas": 1, "max_ongoing_requests": INGRESS_MAX_ONGOING, "ray_actor_options": {"num_cpus": 0},
                "graceful_shutdown_timeout_s": self.limits.graceful_timeout}


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
    return value


def _pipeline_overrides(args: Mapping[str, Any], threads: Optional[int]) -> Dict[str, Any]:
    """The same overrides `edge serve` builds from --model / --model-dir / --backend / --threads / --threshold."""
    module: Dict[str, Any] = {}
    model = args.get("model") or args.get("model_dir")
    if model:
        if Path(model).exists() or args.get("model_dir"):
            module["model_dir"] = str(model)
        else:
            module["model_name"], module["model_dir"] = model, None
    if args.get("backend"):
        if args["backend"] == "remote":
            raise ConfigError("`edge serve` computes locally: backend 'remote' is not allowed; use auto, paddle or lite")
        module["backend"] = args["backend"]
    if threads:
        module["threads"] = threads
    if args.get("threshold") is not None:
        module["threshold"] = check_threshold(args["threshold"])
    return {"SubModules": {"InstanceSegmentation": module}} if module else {}
