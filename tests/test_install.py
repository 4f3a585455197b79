"""install.py: the extension zip is what Blender installs, and the real bpy accepts it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile

import install
from tests.conftest import ROOT

INSTALL_SCRIPT = """
import json, sys
import bpy
bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo="user_default",
                                         enable_on_install=True)
enabled = [m for m in bpy.context.preferences.addons.keys() if m.endswith("shotbridge")]
print(json.dumps({"enabled": enabled,
                  "export": hasattr(bpy.types, "SHOTBRIDGE_OT_export_shots"),
                  "scene_settings": hasattr(bpy.context.scene, "shotbridge")}))
"""


def test_zip_holds_the_extension_with_its_manifest_at_the_top(tmp_path):
    path = install.build_extension_zip(tmp_path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode())
    assert "__init__.py" in names and "camera_model.py" in names and "scene_io/export.py" in names
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    assert manifest["id"] == "shotbridge" and manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0"
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    assert "network" in manifest["permissions"]
    assert path.name == f"shotbridge-{manifest['version']}.zip"


def test_the_addon_never_imports_torch_or_the_backend():
    for path in (ROOT / "blender_addon").glob("*.py"):
        source = path.read_text()
        for forbidden in ("import torch", "from torch", "import backend", "from backend"):
            assert forbidden not in source, f"{path.name} contains {forbidden!r}"


def test_real_blender_installs_and_enables_the_zip(tmp_path):
    path = install.build_extension_zip(tmp_path / "dist")
    # A private user folder, so that the test never touches the real Blender preferences.
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender")}
    result = subprocess.run([sys.executable, "-c", INSTALL_SCRIPT, str(path)], env=env,
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"enabled": ["bl_ext.user_default.shotbridge"], "export": True,
                      "scene_settings": True}
    assert (tmp_path / "blender" / "extensions" / "user_default" / "shotbridge" /
            "blender_manifest.toml").exists()
