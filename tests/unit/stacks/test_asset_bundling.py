"""Asset bundling without Docker: the real Lambda and worker assets, built for the target architecture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stacks.app_builder import build_app
from stacks.video_pipeline_stack import HANDLER
from tests.conftest import make_app

# The handler's file in the asset, from the function's Handler setting ("lambdas.video_processor.handler.x").
HANDLER_FILE = Path(*HANDLER.split(".")[:-1]).with_suffix(".py")

pytestmark = pytest.mark.slow

ELF_MACHINE = {"arm64": 0xB7, "x86_64": 0x3E}


def _elf_machine(binary: Path) -> int:
    header = binary.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{binary} is not an ELF executable"
    return int.from_bytes(header[18:20], "little")


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Synthesize the app with bundling on (wheels come from build/wheelhouse, filled by `make setup`)."""
    outdir = tmp_path_factory.mktemp("bundled")
    app = build_app(
        make_app({"aws:cdk:bundling-stacks": ["VideoPipelineStack", "WorkerFleetStack"]}, bundle=True, outdir=outdir)
    )
    app.synth()
    found: dict[str, Path] = {}
    for stack in ("VideoPipelineStack", "WorkerFleetStack"):
        manifest = json.loads((outdir / f"{stack}.assets.json").read_text())
        for entry in manifest["files"].values():
            source = outdir / entry["source"]["path"]
            if (source / HANDLER_FILE).exists():
                found["lambda"] = source
            if (source / "worker" / "__main__.py").exists():
                found["worker"] = source
    return found


def test_the_lambda_asset_holds_the_handler_the_library_and_an_arm64_ffmpeg(assets: dict[str, Path]) -> None:
    asset = assets["lambda"]
    # the handler and its settings contract, at the import path the handler and the stack use
    assert (asset / HANDLER_FILE).is_file()
    assert (asset / HANDLER_FILE.parent / "settings.py").is_file()
    assert (asset / "lambdas" / "__init__.py").is_file()
    assert (asset / "video_processing" / "__init__.py").is_file()
    assert (asset / "aws_lambda_powertools").is_dir()
    ffmpeg = sorted((asset / "imageio_ffmpeg" / "binaries").glob("ffmpeg-linux-*"))
    assert len(ffmpeg) == 1 and "aarch64" in ffmpeg[0].name
    assert _elf_machine(ffmpeg[0]) == ELF_MACHINE["arm64"]
    # native extensions are built for Lambda's Python and architecture, not for this machine
    pydantic_core = sorted((asset / "pydantic_core").glob("_pydantic_core*.so"))
    assert pydantic_core and "cpython-314-aarch64" in pydantic_core[0].name
    # and the tests of this repository are not shipped
    assert not (asset / "tests").exists()


def test_the_lambda_asset_fits_lambdas_250_mb_unzipped_limit(assets: dict[str, Path]) -> None:
    asset = assets["lambda"]
    size = sum(f.stat().st_size for f in asset.rglob("*") if f.is_file())
    assert size < 250 * 1024 * 1024, f"{size / 2**20:.0f} MiB"


def test_the_worker_asset_holds_the_worker_the_library_and_wheels_for_python_3_11(assets: dict[str, Path]) -> None:
    asset = assets["worker"]
    assert (asset / "worker" / "__main__.py").is_file()
    assert (asset / "video_processing" / "__init__.py").is_file()
    assert (asset / "boto3").is_dir()
    ffmpeg = sorted((asset / "imageio_ffmpeg" / "binaries").glob("ffmpeg-linux-*"))
    assert len(ffmpeg) == 1 and _elf_machine(ffmpeg[0]) == ELF_MACHINE["arm64"]
    assert sorted((asset / "pydantic_core").glob("_pydantic_core.cpython-311-aarch64*.so"))
