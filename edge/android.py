"""Put a bundle into the Android demo app (android_demo/): `edge bundle BUNDLE --android DIR`.

The app reads only bundles: `app/src/main/assets/models/<name>/` holds model.nb + manifest.json,
and `app/src/main/assets/models/selected.json` (`{"bundle": "<name>"}`) is the one it opens first.
The bundle is checked (manifest schema, sha256 of model.nb) and must be an ARM one: Paddle Lite on
the phone aborts the whole app on a .nb made for another target. The copy replaces an older one of
the same name atomically (staging folder, then rename).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .bundle import MANIFEST_FILE, is_bundle, open_bundle
from .errors import ConfigError, ModelError
from .files import publishing

ASSETS = Path("app") / "src" / "main" / "assets"
MODELS = "models"
SELECTED_FILE = "selected.json"


def assets_dir(project: Path) -> Path:
    """The app's assets folder; a clear error when `project` is not the Android demo project."""
    project = Path(project)
    main = project / ASSETS.parent
    if not (main / "AndroidManifest.xml").is_file():
        raise ConfigError(f"{project} is not the Android demo project (no {ASSETS.parent / 'AndroidManifest.xml'}); "
                          "pass the android_demo/ folder of this repository")
    return project / ASSETS


def install_bundle(bundle_dir: Path, project: Path) -> Path:
    """Copy a checked ARM bundle into the app's assets and select it; returns the copied folder."""
    bundle_dir = Path(bundle_dir)
    models = assets_dir(project) / MODELS
    bundle = open_bundle(bundle_dir)
    target = bundle.manifest.get("target")
    if target != "arm":
        raise ModelError(f"{bundle_dir} is a {target!r} bundle; the Android app runs ARM bundles: "
                         "make one with `edge export --target arm` (add --int8 for INT8 kernels)")
    final = models / bundle_dir.resolve().name
    try:
        with publishing(final, replace_if=is_bundle) as staging:
            shutil.copyfile(bundle.model_path, staging / bundle.model_path.name)
            shutil.copyfile(bundle.path / MANIFEST_FILE, staging / MANIFEST_FILE)
            staging.chmod(0o755)
        selected = models / SELECTED_FILE
        partial = selected.with_name(SELECTED_FILE + ".partial")
        partial.write_text(json.dumps({"bundle": final.name}) + "\n", encoding="utf-8")
        os.replace(partial, selected)
    except OSError as exc:
        raise ConfigError(f"cannot copy {bundle_dir} into {models}: {exc}") from None
    return final


def install_report(installed: Path, project: Path) -> str:
    size = sum(f.stat().st_size for f in installed.iterdir()) / 1e6
    return "\n".join([
        f"copied to {installed} ({size:.1f} MB) and selected in {installed.parent / SELECTED_FILE}",
        "next (Android SDK and a phone with USB debugging):",
        f"  cd {project} && gradle wrapper --gradle-version 8.7 && ./gradlew :app:installDebug",
    ])
