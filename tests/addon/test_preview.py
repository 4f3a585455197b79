"""blender_addon.preview in real Blender: playblasts, first frames, backgrounds and strips."""

from __future__ import annotations

import bpy
import pytest

from blender_addon import preview, scene_io


def shot(scene: bpy.types.Scene, name: str) -> scene_io.ShotSpec:
    return next(s for s in scene_io.read_shots(scene) if s.name == name)


def scene_state(scene: bpy.types.Scene) -> dict:
    return {**preview.render_settings_snapshot(scene), "frame_current": scene.frame_current}


def test_playblast_has_one_frame_per_shot_frame_and_restores_every_setting(shot_scene,
                                                                            tmp_path):
    scene = shot_scene
    scene.render.engine = "BLENDER_EEVEE"
    scene.render.resolution_percentage = 50
    scene.render.filepath = "//renders/final_"
    scene.frame_set(3)
    before = scene_state(scene)
    assert before["camera"].name == "CamA"
    shot_b = shot(scene, "shot_b")
    path = preview.playblast(scene, shot_b.camera, shot_b.frame_start, shot_b.frame_end,
                             tmp_path / "layout.mp4", percentage=100)
    assert scene_state(scene) == before
    clip = bpy.data.movieclips.load(str(path))
    assert clip.frame_duration == shot_b.frame_end - shot_b.frame_start + 1 == 5
    assert tuple(clip.size) == (64, 36)
    assert list(tmp_path.iterdir()) == [path]


def test_settings_are_restored_when_the_render_is_refused(shot_scene, tmp_path):
    scene = shot_scene
    scene.render.resolution_x = 65  # odd: H.264 cannot take it
    before = scene_state(scene)
    with pytest.raises(preview.PreviewError, match="must be even"):
        preview.playblast(scene, bpy.data.objects["CamB"], 7, 11, tmp_path / "x.mp4")
    assert scene_state(scene) == before


def test_first_frame_png_is_the_shots_first_frame_through_its_camera(shot_scene, tmp_path):
    scene = shot_scene
    scene.render.resolution_percentage = 100
    before = scene_state(scene)
    path = preview.render_first_frame(scene, bpy.data.objects["CamB"], 7, tmp_path / "f.png",
                                      percentage=50)
    assert scene_state(scene) == before
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = bpy.data.images.load(str(path))
    assert tuple(image.size) == (32, 18)
    assert list(tmp_path.iterdir()) == [path]


@pytest.fixture
def movie(shot_scene, tmp_path):
    """A 6-frame layout MP4 of shot_a."""
    return preview.playblast(shot_scene, bpy.data.objects["CamA"], 1, 6, tmp_path / "a.mp4")


def test_attach_puts_clip_frame_one_on_the_shots_first_frame(shot_scene, movie):
    camera = bpy.data.objects["CamB"]
    background = preview.attach_background(camera, movie, 7, "shot_b", "layout", alpha=0.3)
    assert background.source == "MOVIE_CLIP"
    assert background.clip.frame_start == 7
    assert background.clip.frame_duration == 6
    assert background.alpha == pytest.approx(0.3)
    assert background.frame_method == "CROP"
    assert camera.data.show_background_images
    assert preview.shotbridge_background(camera) == background


def test_reattaching_replaces_only_shotbridges_background(shot_scene, movie, tmp_path):
    camera = bpy.data.objects["CamA"]
    user_image = bpy.data.images.new("reference", 4, 4)
    mine = camera.data.background_images.new()
    mine.image = user_image
    first = preview.attach_background(camera, movie, 1, "shot_a", "layout")
    first_clip = first.clip.name
    second = preview.attach_background(camera, movie, 1, "shot_a", "generated")
    backgrounds = list(camera.data.background_images)
    assert len(backgrounds) == 2
    assert backgrounds[0].source == "IMAGE" and backgrounds[0].image == user_image
    assert backgrounds[1] == second and second.clip["shotbridge_kind"] == "generated"
    assert first_clip not in bpy.data.movieclips  # the replaced clip had no other user
    assert preview.detach_background(camera)
    assert [b.image for b in camera.data.background_images] == [user_image]


def test_strip_sits_on_the_shotbridge_channel_at_the_shot_start(shot_scene, movie):
    scene = shot_scene
    strip = preview.add_strip(scene, movie, 7, 10, "shot_b")
    assert (strip.channel, strip.frame_final_start) == (preview.STRIP_CHANNEL, 7)
    assert strip.frame_final_duration == 4  # cut at the shot's end
    assert scene.sequence_editor.channels[preview.STRIP_CHANNEL].name == "ShotBridge"
    again = preview.add_strip(scene, movie, 7, 12, "shot_b")
    assert again.frame_final_duration == 6
    assert [s.name for s in scene.sequence_editor.strips] == [again.name]
    assert preview.shotbridge_strip(scene, "shot_b") == again


def test_layout_preview_of_a_shot_attaches_it_with_the_scene_settings(shot_scene, tmp_path):
    scene = shot_scene
    settings = scene.shotbridge
    settings.preview_alpha, settings.preview_strips = 0.6, True
    before = scene_state(scene)
    path = preview.layout_preview(scene, shot(scene, "shot_b"), tmp_path)
    assert scene_state(scene) == before
    assert path.parent == tmp_path / "previews" and path.suffix == ".mp4"
    background = preview.shotbridge_background(bpy.data.objects["CamB"])
    assert background.clip.frame_start == 7 and background.clip.frame_duration == 5
    assert background.alpha == pytest.approx(0.6)
    assert preview.shotbridge_strip(scene, "shot_b").frame_final_start == 7
    assert preview.remove_preview(scene, bpy.data.objects["CamB"], "shot_b")
    assert preview.shotbridge_background(bpy.data.objects["CamB"]) is None
    assert preview.shotbridge_strip(scene, "shot_b") is None


def test_layout_preview_operator_reports_a_scene_without_shots(empty_scene):
    with pytest.raises(RuntimeError, match="no camera"):
        bpy.ops.shotbridge.layout_preview(shot="")
