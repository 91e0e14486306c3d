"""Pipeline configuration: PaddleX's pipeline YAML (docs/SPEC.md §4) plus our backend / serving keys."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, Optional, Union

import yaml

from .errors import ConfigError

PIPELINE_NAME = "instance_segmentation"
DEFAULT_CONFIG_PATH = Path(__file__).parent / "configs" / f"{PIPELINE_NAME}.yaml"
FALLBACK_POLICIES = ("never", "server_only", "on_error")
BACKENDS = ("auto", "lite", "paddle", "remote")  # auto: a bundle runs on lite, an inference directory on paddle


def default_config() -> Dict[str, Any]:
    return yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))


def _merge(base: Dict[str, Any], override: Dict[str, Any]) -> Dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_config(pipeline: Union[str, Path] = PIPELINE_NAME, overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """`pipeline` is the pipeline name or the path of a pipeline YAML; missing keys take the defaults."""
    if str(pipeline) == PIPELINE_NAME:
        user: Dict[str, Any] = {}
    else:
        path = Path(pipeline)
        if not path.is_file():
            raise ConfigError(
                f"pipeline {str(pipeline)!r} is neither {PIPELINE_NAME!r} nor an existing YAML file; "
                f"`edge --get_pipeline_config {PIPELINE_NAME} --save_path DIR` writes one to start from"
            )
        try:
            user = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from None
        if user.get("pipeline_name", PIPELINE_NAME) != PIPELINE_NAME:
            raise ConfigError(f"{path}: pipeline_name {user.get('pipeline_name')!r} is not {PIPELINE_NAME!r}")
        module = (user.get("SubModules") or {}).get("InstanceSegmentation") or {}
        if module.get("model_dir") and not Path(module["model_dir"]).is_absolute():
            # relative to the YAML, so a bundle's pipeline.yaml (`model_dir: .`) works from anywhere
            module["model_dir"] = str((path.parent / module["model_dir"]).resolve())
    config = _merge(default_config(), user)
    if overrides:
        config = _merge(config, overrides)
    validate(config)
    return config


def module_config(config: Dict[str, Any]) -> Dict[str, Any]:
    return config["SubModules"]["InstanceSegmentation"]


def validate(config: Dict[str, Any]) -> None:
    module = module_config(config)
    if module.get("threshold") is not None:
        check_threshold(module["threshold"])
    if module.get("backend", "auto") not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {module.get('backend')!r}")
    if config.get("Serving", {}).get("fallback", "never") not in FALLBACK_POLICIES:
        raise ConfigError(f"Serving.fallback must be one of {', '.join(FALLBACK_POLICIES)}")
    budget = config.get("Serving", {}).get("latency_budget_ms")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0):
        raise ConfigError(f"Serving.latency_budget_ms must be a positive number of milliseconds or null, got {budget!r}")


def check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < float(threshold) < 1.0:
        raise ConfigError(f"threshold must be a number in (0, 1), got {threshold!r}")
    return float(threshold)


def write_default_config(save_path: Union[str, Path]) -> Path:
    """`--get_pipeline_config`: a directory gets `<dir>/instance_segmentation.yaml`."""
    path = Path(save_path)
    if path.suffix.lower() not in (".yaml", ".yml"):
        path = path / f"{PIPELINE_NAME}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    return path
