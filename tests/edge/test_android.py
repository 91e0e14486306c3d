"""`edge bundle BUNDLE --android DIR`: a checked ARM bundle copied into the Android demo's assets."""
import json
import shutil
from pathlib import Path

import pytest

from edge.android import SELECTED_FILE, install_bundle
from edge.cli import main
from edge.errors import ConfigError, ManifestError, ModelError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def arm_bundle(tmp_path_factory) -> Path:
    from standin import standin_bundle

    return standin_bundle(tmp_path_factory.mktemp("standin_arm"), "edge", (64, 64), target="arm")[1]


@pytest.fixture()
def project(tmp_path) -> Path:
    """The Android demo project's layout (its real AndroidManifest.xml), without build outputs."""
    main_dir = tmp_path / "android_demo" / "app" / "src" / "main"
    main_dir.mkdir(parents=True)
    shutil.copyfile(REPO / "android_demo" / "app" / "src" / "main" / "AndroidManifest.xml", main_dir / "AndroidManifest.xml")
    return tmp_path / "android_demo"


def models(project: Path) -> Path:
    return project / "app" / "src" / "main" / "assets" / "models"


def test_copies_model_and_manifest_and_selects_the_bundle(arm_bundle, project, capsys):
    assert main(["bundle", str(arm_bundle), "--android", str(project)]) == 0
    installed = models(project) / arm_bundle.name
    assert sorted(p.name for p in installed.iterdir()) == ["manifest.json", "model.nb"]
    for name in ("manifest.json", "model.nb"):
        assert (installed / name).read_bytes() == (arm_bundle / name).read_bytes()
    assert json.loads((models(project) / SELECTED_FILE).read_text()) == {"bundle": arm_bundle.name}
    assert "./gradlew :app:installDebug" in capsys.readouterr().out


def test_a_second_install_replaces_the_first_and_leaves_no_staging(arm_bundle, project):
    install_bundle(arm_bundle, project)
    (models(project) / arm_bundle.name / "model.nb").write_bytes(b"stale")
    install_bundle(arm_bundle, project)
    assert (models(project) / arm_bundle.name / "model.nb").read_bytes() == (arm_bundle / "model.nb").read_bytes()
    assert sorted(p.name for p in models(project).iterdir()) == sorted([arm_bundle.name, SELECTED_FILE])


def test_refuses_a_bundle_for_another_target(standin_edge, project):
    with pytest.raises(ModelError, match="'x86' bundle.*--target arm"):
        install_bundle(standin_edge.bundle_dir, project)
    assert not models(project).exists()


def test_refuses_a_damaged_bundle_and_keeps_the_installed_one(arm_bundle, project, tmp_path):
    install_bundle(arm_bundle, project)
    damaged = tmp_path / "damaged"
    shutil.copytree(arm_bundle, damaged)
    (damaged / "model.nb").write_bytes((damaged / "model.nb").read_bytes()[:-10])
    with pytest.raises(ManifestError, match="sha256"):
        install_bundle(damaged, project)
    assert (models(project) / arm_bundle.name / "model.nb").read_bytes() == (arm_bundle / "model.nb").read_bytes()
    assert json.loads((models(project) / SELECTED_FILE).read_text()) == {"bundle": arm_bundle.name}


def test_refuses_a_folder_that_is_not_the_android_project(arm_bundle, tmp_path, capsys):
    with pytest.raises(ConfigError, match="not the Android demo project"):
        install_bundle(arm_bundle, tmp_path)
    assert main(["bundle", str(arm_bundle), "--android", str(tmp_path)]) == 2
    assert "not the Android demo project" in capsys.readouterr().err
