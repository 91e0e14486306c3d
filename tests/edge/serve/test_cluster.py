"""`edge serve --ray` options (edge/serve/cluster.py), its CLI errors, and the KubeRay example; no cluster needed."""
from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge.cli import main
from edge.errors import ConfigError
from edge.serve.cluster import APP_IMPORT_PATH, ClusterOptions, parse_autoscale
from edge.serve.limits import MiB

ROOT = Path(__file__).resolve().parents[3]
MANIFEST = ROOT / "deploy" / "kuberay" / "rayservice.yaml"


def test_replicas_and_max_queue_map_onto_ray_serve():
    options = ClusterOptions.from_args({"replicas": 3, "max_queue": 5, "model_dir": "/m", "threads": 2,
                                        "max_body_mb": 2, "graceful_timeout": 7})
    model = options.model_deployment()
    assert model["num_replicas"] == 3 and "autoscaling_config" not in model
    assert model["max_ongoing_requests"] == 1 + 5  # one computed, max_queue waiting, per replica
    assert model["ray_actor_options"] == {"num_cpus": 2.0} and model["graceful_shutdown_timeout_s"] == 7
    # the ingress admits like `--workers 3 --max-queue 5`: 8 at once, the 9th gets the contract's 503
    assert options.limits.workers == 3 and options.limits.capacity == 8
    assert options.limits.max_body_bytes == 2 * MiB
    assert options.overrides == {"SubModules": {"InstanceSegmentation": {"model_dir": "/m", "threads": 2}}}
    assert options.ingress_deployment()["num_replicas"] == 1
    assert options.ingress_deployment()["ray_actor_options"] == {"num_cpus": 0}


def test_autoscale_sets_the_bounds_and_the_ingress_admits_for_the_most_replicas():
    options = ClusterOptions.from_args({"autoscale": "1:4", "max_queue": 2})
    scaling = options.model_deployment()["autoscaling_config"]
    assert scaling == {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 1}
    assert "num_replicas" not in options.model_deployment()
    assert options.limits.capacity == 4 + 2
    assert parse_autoscale("0:2") == (0, 2)


@pytest.mark.parametrize("args,words", [
    ({"autoscale": "4:1"}, "MIN:MAX"),
    ({"autoscale": "x"}, "MIN:MAX"),
    ({"autoscale": "0:0"}, "MAX >= 1"),
    ({"replicas": 0}, "replicas must be a whole number"),
    ({"replicas": 2, "autoscale": "1:2"}, "either replicas or autoscale"),
    ({"model": "a", "model_dir": "b"}, "either model or model_dir"),
    ({"backend": "remote"}, "computes locally"),
    ({"threshold": 1.5}, "threshold"),
    ({"max_body_mb": 0}, "max_body_mb"),
    ({"max_queue": -1}, "max_queue"),
    ({"model_dri": "/m"}, "unknown option(s) for edge.serve.ray_app:build_app: model_dri"),
])
def test_bad_options_are_one_clear_error(args, words):
    with pytest.raises(ConfigError) as err:
        ClusterOptions.from_args(args)
    assert words in str(err.value)


@pytest.mark.parametrize("argv,words", [
    (["serve", "--replicas", "2"], "--replicas needs --ray"),
    (["serve", "--autoscale", "1:2"], "--autoscale needs --ray"),
    (["serve", "--ray", "--workers", "2"], "scale with --replicas"),
    (["serve", "--ray", "--autoscale", "3:1"], "MIN:MAX"),
    (["serve", "--ray", "--replicas", "2", "--autoscale", "1:2"], "either replicas or autoscale"),
])
def test_cli_refuses_bad_combinations_before_ray_or_a_model(argv, words, capsys):
    assert main(argv) == 2
    message = capsys.readouterr().err.strip()
    assert words in message and "\n" not in message, message


def test_without_ray_ray_is_never_imported():
    """The plain server, its CLI and the options: no `ray` module loaded (it is an optional extra)."""
    code = ("import sys\n"
            "from edge.cli import build_parser\n"
            "import edge.serve.app, edge.serve.runner, edge.serve.cluster, edge.remote\n"
            "build_parser().parse_args(['serve', '--replicas', '2'])\n"
            "assert not [m for m in sys.modules if m == 'ray' or m.startswith('ray.')], 'ray imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_kuberay_rayservice_names_the_app_entry_point_of_edge_serve_ray():
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayService"
    serve_config = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    [app] = serve_config["applications"]
    assert app["import_path"] == APP_IMPORT_PATH and app["route_prefix"] == "/"
    options = ClusterOptions.from_args(app["args"])  # the args are the CLI's options, validated the same way
    assert options.autoscale == (1, 4)
    assert serve_config["proxy_location"] == "HeadOnly"
    # the cluster's Ray is the version the [cluster] extra pins
    pinned = re.search(r"^ray==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M).group(1)
    assert manifest["spec"]["rayClusterConfig"]["rayVersion"] == pinned
    assert f'ray[serve]=={pinned}' in (ROOT / "pyproject.toml").read_text()
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray Serve not installed: the entry point itself is not loaded")
    from ray import serve

    from edge.serve import ray_app

    module, _, name = APP_IMPORT_PATH.partition(":")
    builder = getattr(importlib.import_module(module), name)
    assert builder is ray_app.build_app  # `edge serve --ray` deploys ray_app.application(), which build_app returns
    assert isinstance(builder(app["args"]), serve.Application)  # bound, without a cluster
