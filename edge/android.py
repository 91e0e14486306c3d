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
import tempfile
from pathlib import Path

from .errors import ConfigError, ModelError
from .models import MANIFEST_FILE, open_bundle

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
    model = open_bundle(bundle_dir)
    target = (model.manifest or {}).get("target")
    if target != "arm":
        raise ModelError(f"{bundle_dir} is a {target!r} bundle; the Android app runs ARM bundles: "
                         "make one with `edge export --target arm` (add --int8 for INT8 kernels)")
    name = bundle_dir.resolve().name
    models.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=models))
    final = models / name
    try:
        shutil.copyfile(model.path, staging / model.path.name)
        shutil.copyfile(bundle_dir / MANIFEST_FILE, staging / MANIFEST_FILE)
        staging.chmod(0o755)
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=models))
            old.rmdir()
            os.rename(final, old)
        os.rename(staging, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    selected = models / SELECTED_FILE
    partial = selected.with_suffix(".json.partial")
    partial.write_text(json.dumps({"bundle": name}) + "\n", encoding="utf-8")
    os.replace(partial, selected)
    return final


def install_report(installed: Path, project: Path) -> str:
    size = sum(f.stat().st_size for f in installed.iterdir()) / 1e6
    return "\n".join([
        f"copied to {installed} ({size:.1f} MB) and selected in {installed.parent / SELECTED_FILE}",
        "next (Android SDK and a phone with USB debugging):",
        f"  cd {project} && gradle wrapper --gradle-version 8.7 && ./gradlew :app:installDebug",
    ])
