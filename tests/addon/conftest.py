"""Fixtures for the add-on's tests: the real ``bpy`` with ShotBridge registered."""

from __future__ import annotations

import bpy
import pytest

import blender_addon


def ensure_registered() -> None:
    """Register the add-on once per process (registration survives factory resets)."""
    if not hasattr(bpy.types, "SHOTBRIDGE_OT_export_shots"):
        blender_addon.register()


@pytest.fixture
def empty_scene() -> bpy.types.Scene:
    """A fresh empty scene (factory settings) with ShotBridge registered."""
    ensure_registered()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 640, 360
    scene.render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = 1, 48
    return scene


# -- the backend link: a real HTTP peer, a tiny two-shot scene, the main-thread drain ------------

PEER_TOKEN = "peer-token-0123456789"


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (just now)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def drain_until(predicate, timeout: float = 15.0) -> None:
    """Be Blender's main thread: run the timer function until ``predicate()`` holds.

    ``service.tick`` is what ``bpy.app.timers`` calls in Blender; the bpy module has no event
    loop, so the test calls it (and only it) in a loop.
    """
    import time

    from blender_addon import service

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out; panel says: {service.state.message}"
        service.tick()
        time.sleep(0.01)


@pytest.fixture
def link():
    """The add-on's backend link with fresh state; waits for its worker threads afterwards."""
    from blender_addon import service

    ensure_registered()
    service.reset_state()
    yield service
    service.reset_state()
    service.worker.wait_idle(10.0)
    service.worker.drain()


@pytest.fixture
def peer(tmp_path):
    """A real HTTP peer speaking the backend API on a free port (see contract_peer.py)."""
    from tests.addon.contract_peer import ContractPeer

    folder = tmp_path / "peer"
    folder.mkdir()
    with ContractPeer(PEER_TOKEN, folder) as server:
        yield server


def build_shot_scene() -> bpy.types.Scene:
    """64×36 px, 24 fps, frames 1-11: shot_a (CamA, 1-6) and shot_b (CamB, 7-11), one subject."""
    from blender_addon import scene_io

    ensure_registered()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 64, 36
    scene.render.resolution_percentage = 100
    scene.render.fps, scene.render.fps_base = 24, 1.0
    scene.frame_start, scene.frame_end = 1, 11
    mesh = bpy.data.meshes.new("Box")
    mesh.from_pydata([(-0.5, -0.5, 0), (0.5, -0.5, 0), (0.5, 0.5, 0), (-0.5, 0.5, 0),
                      (0, 0, 1)], [], [(0, 1, 2, 3), (0, 1, 4), (1, 2, 4), (2, 3, 4), (3, 0, 4)])
    box = bpy.data.objects.new("Box", mesh)
    scene.collection.objects.link(box)
    scene_io.add_subjects(scene, [box])
    for name, location, frame in (("CamA", (0, -6, 1.5), 1), ("CamB", (5, -4, 2), 7)):
        camera = bpy.data.objects.new(name, bpy.data.cameras.new(name))
        camera.location = location
        scene.collection.objects.link(camera)
        constraint = camera.constraints.new("TRACK_TO")
        constraint.target, constraint.track_axis, constraint.up_axis = (
            box, "TRACK_NEGATIVE_Z", "UP_Y")
        marker = scene.timeline_markers.new(f"shot_{name[-1].lower()}", frame=frame)
        marker.camera = camera
    scene.camera = bpy.data.objects["CamA"]
    settings = scene.shotbridge
    settings.global_prompt = "A box on a plain."
    settings.preview_percentage = 100
    for shot, prompt in (("shot_a", "push in"), ("shot_b", "orbit")):
        settings.shots.add().name = shot
        settings.shots[shot].prompt = prompt
    return scene


@pytest.fixture
def shot_scene() -> bpy.types.Scene:
    return build_shot_scene()
