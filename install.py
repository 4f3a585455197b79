#!/usr/bin/env python3
"""ShotBridge's one set-up step (standard library only).

    python3 install.py            set up .venv (Python 3.11) with the backend's dependencies
    python3 install.py demo       set up if needed, then run the main job: python -m backend demo
    python3 install.py test       set up with the test extras if needed, then run the whole suite
    python3 install.py blender [--blender PATH]
                                  build the extension zip and install it into Blender

Set-up is idempotent: a stamp in .venv records what was installed from which pyproject.toml, and a
second run only checks that the environment still imports.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / "shotbridge-install.json"
ADDON = ROOT / "blender_addon"
DIST = ROOT / "dist"
REQUIRED_PYTHON = (3, 11)
# The CPU build of torch; pip picks the CUDA build itself where an NVIDIA GPU is present.
CPU_TORCH = "torch==2.13.0"
PROFILES = {
    # The demo builds its scene in headless Blender, so bpy is part of the base set-up.
    "base": "blender",
    "test": "blender,test",
}
CHECK_IMPORTS = {
    "base": "import numpy, scipy, torch, bpy, diffusers, fastapi, backend",
    "test": "import numpy, scipy, torch, bpy, diffusers, fastapi, backend, pytest, hypothesis, "
            "jsonschema, httpx",
}


def say(message: str) -> None:
    print(f"[install] {message}", flush=True)


def venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def find_python311() -> str:
    """A Python 3.11 interpreter to build the venv with; exits with a clear message if none."""
    if sys.version_info[:2] == REQUIRED_PYTHON:
        return sys.executable
    for name in ("python3.11", "python3", "python"):
        path = shutil.which(name)
        if not path:
            continue
        probe = subprocess.run([path, "-c", "import sys; print(sys.version_info[:2] == (3, 11))"],
                               capture_output=True, text=True)
        if probe.stdout.strip() == "True":
            return path
    sys.exit(f"ShotBridge needs Python 3.11 (bpy 5.0 from PyPI is built for CPython 3.11 only); "
             f"this is Python {sys.version.split()[0]} at {sys.executable} and no python3.11 is on "
             "PATH. Install Python 3.11 and run: python3.11 install.py")


def has_nvidia_gpu() -> bool:
    """True where an NVIDIA driver answers; then pip may choose torch's CUDA build."""
    if Path("/proc/driver/nvidia/version").exists():
        return True
    smi = shutil.which("nvidia-smi")
    if smi:
        return subprocess.run([smi, "-L"], capture_output=True).returncode == 0
    return False


def wanted_state(profile: str) -> dict[str, str]:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    torch = "torch (pip's choice, CUDA)" if has_nvidia_gpu() else CPU_TORCH
    return {"pyproject": digest, "extras": PROFILES[profile], "torch": torch}


def run(command: list[str | Path], **kwargs) -> None:
    printable = " ".join(str(part) for part in command)
    say(printable)
    result = subprocess.run([str(part) for part in command], **kwargs)
    if result.returncode:
        sys.exit(f"[install] failed ({result.returncode}): {printable}")


def imports_work(profile: str) -> bool:
    probe = subprocess.run([venv_python(), "-c", CHECK_IMPORTS[profile]], capture_output=True,
                           text=True, cwd=ROOT)
    return probe.returncode == 0


def stamp_covers(profile: str) -> bool:
    if not STAMP.exists():
        return False
    state = json.loads(STAMP.read_text())
    wanted = wanted_state(profile)
    installed = set(state.get("extras", "").split(","))
    return (state.get("pyproject") == wanted["pyproject"]
            and state.get("torch") == wanted["torch"]
            and set(wanted["extras"].split(",")) <= installed)


def setup(profile: str = "base") -> Path:
    """Create or check .venv for ``profile`` ('base' or 'test'); returns the venv's Python."""
    if venv_python().exists() and stamp_covers(profile) and imports_work(profile):
        say(f"environment ready ({VENV}, {profile}); nothing to install")
        return venv_python()
    if not venv_python().exists():
        run([find_python311(), "-m", "venv", VENV])
    python = venv_python()
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2] == (3, 11))"],
                             capture_output=True, text=True).stdout.strip()
    if version != "True":
        sys.exit(f"[install] {VENV} was made with another Python than 3.11; delete it and run "
                 "python3.11 install.py")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    wanted = wanted_state(profile)
    if not has_nvidia_gpu():
        # Without a pin pip pulls the newest torch with gigabytes of CUDA packages.
        run([*pip, CPU_TORCH])
    run([*pip, "-e", f".[{wanted['extras']}]"], cwd=ROOT)
    if not imports_work(profile):
        sys.exit(f"[install] the environment does not import ({CHECK_IMPORTS[profile]})")
    STAMP.write_text(json.dumps(wanted, indent=1) + "\n")
    say(f"environment ready ({VENV}, {profile})")
    return python


# ------------------------------------------------------------------------------------------------
# The Blender extension


def extension_version() -> str:
    for line in (ADDON / "blender_manifest.toml").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "version":
            return value.strip().strip('"')
    raise SystemExit("[install] blender_addon/blender_manifest.toml has no version")


def build_extension_zip(out_dir: Path = DIST) -> Path:
    """Zip blender_addon/ as Blender's "Install from Disk" expects: the manifest at the top."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"shotbridge-{extension_version()}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(ADDON.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                archive.write(file, file.relative_to(ADDON).as_posix())
    return path


def find_blender(explicit: str | None) -> str | None:
    if explicit:
        if not Path(explicit).exists() and not shutil.which(explicit):
            sys.exit(f"[install] --blender {explicit}: no such program")
        return explicit
    candidates = [shutil.which("blender"), "/Applications/Blender.app/Contents/MacOS/Blender",
                  "/snap/bin/blender"]
    program_files = Path(os.environ.get("PROGRAMFILES", "C:/Program Files")) / "Blender Foundation"
    if program_files.exists():
        candidates += [str(p) for p in sorted(program_files.glob("Blender */blender.exe"))[::-1]]
    return next((c for c in candidates if c and Path(c).exists()), None)


def install_blender(explicit: str | None) -> None:
    path = build_extension_zip()
    say(f"built {path}")
    blender = find_blender(explicit)
    if blender is None:
        say("no Blender found (give one with --blender PATH). Install the zip by hand: Blender > "
            f"Edit > Preferences > Get Extensions > Install from Disk > {path}")
        return
    run([blender, "--command", "extension", "install-file", "--repo", "user_default", "--enable",
         path])
    say(f"installed and enabled ShotBridge in {blender}")


# ------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", nargs="?", default="setup",
                        choices=["setup", "demo", "test", "blender"])
    parser.add_argument("--blender", help="Blender executable for the 'blender' command")
    args, rest = parser.parse_known_args()
    if args.command == "blender":
        install_blender(args.blender)
        return
    python = setup("test" if args.command == "test" else "base")
    if args.command == "demo":
        sys.exit(subprocess.run([python, "-m", "backend", "demo", *rest], cwd=ROOT).returncode)
    if args.command == "test":
        sys.exit(subprocess.run([python, "-m", "pytest", *rest], cwd=ROOT).returncode)


if __name__ == "__main__":
    main()
