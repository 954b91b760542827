"""Find the cloud assemblies to read, synthesizing them with the pinned CDK CLI when they are missing.

The default assembly is the project's ``cdk.out`` (what ``make synth`` writes); the other scaling mode is
synthesized once into ``build/cdk.out.<mode>`` with ``-c scaling_mode=<mode>``. Synthesis never calls AWS.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from tools.localcloud.paths import REPO_ROOT
from tools.scaling.template import FLEET_STACK, PIPELINE_STACK, TemplateError, read_fleet

SCALING_MODES = ("step", "backlog")


def is_stale(out: Path) -> bool:
    """True when cdk.json, app.py or a product module (sqs_decoupling/) changed after ``out`` was synthesized."""
    synthesized = (out / "manifest.json").stat().st_mtime
    sources = [REPO_ROOT / "cdk.json", REPO_ROOT / "app.py", *(REPO_ROOT / "sqs_decoupling").rglob("*.py")]
    return any(source.stat().st_mtime > synthesized for source in sources if source.exists())


def ensure_assembly(
    out: Path, context: dict[str, str] | None = None, *, stacks: tuple[str, ...] = (), refresh: bool = False
) -> Path:
    """``out`` if it holds a cloud assembly (and, with ``refresh``, a current one), else ``cdk synth`` into it."""
    if (out / "manifest.json").is_file() and not (refresh and is_stale(out)):
        return out
    cli = REPO_ROOT / "node_modules" / ".bin" / "cdk"
    if not cli.exists():
        raise TemplateError(f"no cloud assembly in {out} and no CDK CLI at {cli}: run `make setup` (or `make synth`)")
    command = [str(cli), "synth", "--quiet", "--output", str(out)]
    for key, value in (context or {}).items():
        command += ["-c", f"{key}={value}"]
    if stacks:
        command += [*stacks, "--exclusively"]
    print(f"synthesizing {out} ({' '.join(command[1:])})", file=sys.stderr)
    # cdk.json runs `python3 app.py`: the interpreter running this module has the project's dependencies.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("AWS_PROFILE", None)
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise TemplateError(f"cdk synth into {out} failed ({done.returncode}): {last}")
    return out


def other_mode(mode: str) -> str:
    return SCALING_MODES[1 - SCALING_MODES.index(mode)]


def other_mode_assembly(mode: str) -> Path:
    """The WorkerFleetStack synthesized with ``-c scaling_mode=<mode>`` (cached in build/)."""
    out = REPO_ROOT / "build" / f"cdk.out.{mode}"
    return ensure_assembly(out, {"scaling_mode": mode}, stacks=(FLEET_STACK,), refresh=True)


def assemblies(cdk_out: Path | None, other: Path | None, context: dict[str, str]) -> tuple[Path, Path]:
    """(the main assembly, the one with the other scaling mode).

    With ``context`` (``-c key=value``), both are synthesized into build/ with it; else the main one is ``cdk_out``
    (default ``cdk.out``, synthesized if missing) and the other ``other`` or ``build/cdk.out.<other mode>``.
    """
    if context:
        if cdk_out or other:
            raise TemplateError("-c synthesizes both assemblies itself: pass either -c or --cdk-out/--other-cdk-out")
        tag = hashlib.sha256(json.dumps(context, sort_keys=True).encode()).hexdigest()[:10]
        mode = context.get("scaling_mode", "step")
        main = ensure_assembly(
            REPO_ROOT / "build" / f"cdk.out.{mode}-{tag}", context, stacks=(FLEET_STACK, PIPELINE_STACK), refresh=True
        )
        second = ensure_assembly(
            REPO_ROOT / "build" / f"cdk.out.{other_mode(mode)}-{tag}",
            {**context, "scaling_mode": other_mode(mode)},
            stacks=(FLEET_STACK,),
            refresh=True,
        )
        return main, second
    main = cdk_out or ensure_assembly(REPO_ROOT / "cdk.out")
    if other is not None:
        return main, other
    return main, other_mode_assembly(other_mode(read_fleet(main).mode))
