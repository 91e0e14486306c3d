"""Exports of the demo model shared by several test modules (each takes minutes)."""
import pytest

from export.demo import demo_source
from export.exporter import ExportOptions, export_model
from export.precision import Precision


def _export_demo(tmp_path_factory, **options):
    with pytest.MonkeyPatch.context() as mp:   # calibration and held-out images go to a private cache
        mp.setenv("EDGE_CACHE", str(tmp_path_factory.mktemp("demo_cache")))
        return export_model(demo_source(), ExportOptions(out_dir=tmp_path_factory.mktemp("out"), **options))


@pytest.fixture(scope="session")
def demo_int8_export(tmp_path_factory):
    """ARM INT8 export of the demo model, verified on the held-out split (what `make demo` does);
    with the emulator here, that includes the ARM kernels (`int8_arm_vs_fp32`)."""
    return _export_demo(tmp_path_factory, target="arm", precision=Precision.INT8)


@pytest.fixture(scope="session")
def demo_fp32_arm_export(tmp_path_factory):
    return _export_demo(tmp_path_factory, target="arm")


@pytest.fixture(scope="session")
def demo_x86_export(tmp_path_factory):
    return _export_demo(tmp_path_factory, target="x86", verify=False)
