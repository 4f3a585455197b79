"""Preview videos in the viewport: playblasts, first-frame images, and the camera backgrounds.

- :func:`playblast`: the shot rendered through its camera with Workbench (the scene's viewport
  shading, Render Properties > Lighting/Color) to an MP4, needing no model.
- :func:`render_first_frame`: a shot's first frame as a PNG, the image condition of
  image-to-video models.
- :func:`attach_background`: a preview MP4 (playblast or generated) as the shot camera's
  background movie clip, its clip frame 1 on the shot's first frame; :func:`add_strip` puts it in
  the sequencer too.

Renders change render settings only inside :func:`_render_settings`, which puts every one of them
back (and the scene camera, frame range and current frame) whatever happens. ShotBridge's
backgrounds are recognised by their movie clip's ``"shotbridge_preview"`` property, so replacing
one never touches the user's own background images.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import reduce
from pathlib import Path

import bpy

PREVIEW_PROPERTY = "shotbridge_preview"
STRIP_CHANNEL = 5
STRIP_CHANNEL_NAME = "ShotBridge"
WORKBENCH = "BLENDER_WORKBENCH"

# Every setting a render here may change, restored in this order (the media type before the
# file format it allows, the format before its colour options).
_SAVED_SETTINGS = (
    "camera", "frame_start", "frame_end", "frame_step",
    "render.engine", "render.filepath", "render.resolution_percentage",
    "render.use_file_extension", "render.use_overwrite", "render.use_placeholder",
    "render.use_compositing", "render.use_sequencer", "render.film_transparent",
    "render.image_settings.media_type", "render.image_settings.file_format",
    "render.image_settings.color_mode", "render.image_settings.color_depth",
    "render.image_settings.compression",
    "render.ffmpeg.format", "render.ffmpeg.codec", "render.ffmpeg.constant_rate_factor",
    "render.ffmpeg.ffmpeg_preset", "render.ffmpeg.gopsize", "render.ffmpeg.audio_codec",
)


class PreviewError(RuntimeError):
    """A preview that could not be made or attached; the message names what to change."""


def _owner(scene: bpy.types.Scene, path: str) -> tuple[object, str]:
    *parents, name = path.split(".")
    return reduce(getattr, parents, scene), name


def render_settings_snapshot(scene: bpy.types.Scene) -> dict[str, object]:
    """The settings a render here may change (those this Blender has), by dotted path."""
    snapshot = {}
    for path in _SAVED_SETTINGS:
        owner, name = _owner(scene, path)
        if hasattr(owner, name):
            snapshot[path] = getattr(owner, name)
    return snapshot


@contextmanager
def _render_settings(scene: bpy.types.Scene) -> Iterator[None]:
    saved = render_settings_snapshot(scene)
    frame = scene.frame_current
    try:
        yield
    finally:
        for path, value in saved.items():
            owner, name = _owner(scene, path)
            if getattr(owner, name) != value and value != "":
                # An enum reads "" in a scene made by bpy.data.scenes.new until something sets
                # it; Blender refuses "" as a value, and there is nothing to restore.
                setattr(owner, name, value)
        scene.frame_set(frame)


def _media(scene: bpy.types.Scene, media_type: str, file_format: str) -> None:
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):  # Blender 5.0 split images from videos
        settings.media_type = media_type
    settings.file_format = file_format


def _prepare(scene: bpy.types.Scene, camera: bpy.types.Object, engine: str | None,
             percentage: int | None) -> None:
    render = scene.render
    scene.camera = camera
    if engine:
        render.engine = engine
    if percentage:
        render.resolution_percentage = percentage
    render.use_compositing = False
    render.use_sequencer = False
    render.film_transparent = False
    render.use_file_extension = True
    render.use_overwrite = True
    render.use_placeholder = False


def _render_size(scene: bpy.types.Scene) -> tuple[int, int]:
    render = scene.render  # as Blender computes it: res * percentage // 100
    percentage = render.resolution_percentage
    return render.resolution_x * percentage // 100, render.resolution_y * percentage // 100


def safe_name(name: str) -> str:
    """``name`` usable in a file name on every system."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "shot"


def preview_path(folder: Path, scene: bpy.types.Scene, shot: str, kind: str,
                 suffix: str = ".mp4", subfolder: str = "previews") -> Path:
    """A new file name under ``folder``/``subfolder`` for one preview of ``shot``.

    Each preview gets its own name (a time stamp), so that a new one never overwrites a file that
    an attached movie clip still reads.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.monotonic_ns() % 1000000:06d}"
    name = f"{safe_name(scene.name)}_{safe_name(shot)}_{kind}_{stamp}{suffix}"
    return folder / subfolder / name


def playblast(scene: bpy.types.Scene, camera: bpy.types.Object, frame_start: int,
              frame_end: int, path: Path, percentage: int | None = None) -> Path:
    """Render ``frame_start..frame_end`` through ``camera`` with Workbench to the MP4 ``path``.

    ``percentage`` overrides the render size percentage for this render only. Every render
    setting, the scene camera, frame range and current frame are as before afterwards.
    """
    if camera is None or camera.type != "CAMERA":
        raise PreviewError("the shot has no camera to render through")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _render_settings(scene):
        _prepare(scene, camera, WORKBENCH, percentage)
        width, height = _render_size(scene)
        if width % 2 or height % 2:
            raise PreviewError(f"the preview size {width}×{height} must be even for H.264: "
                               "change the resolution or the preview size %")
        render = scene.render
        _media(scene, "VIDEO", "FFMPEG")
        render.ffmpeg.format = "MPEG4"
        render.ffmpeg.codec = "H264"
        render.ffmpeg.constant_rate_factor = "MEDIUM"
        render.ffmpeg.audio_codec = "NONE"
        scene.frame_start, scene.frame_end, scene.frame_step = frame_start, frame_end, 1
        render.filepath = str(path.with_suffix(""))
        written = Path(bpy.path.abspath(render.frame_path(frame=frame_start)))
        bpy.ops.render.render(animation=True, scene=scene.name)
    if not written.exists():
        raise PreviewError(f"the playblast was not written ({written})")
    written.replace(path)
    return path


def render_first_frame(scene: bpy.types.Scene, camera: bpy.types.Object, frame: int,
                       path: Path, engine: str | None = WORKBENCH,
                       percentage: int | None = None) -> Path:
    """Render ``frame`` through ``camera`` to the PNG ``path`` (``engine`` None: the scene's)."""
    if camera is None or camera.type != "CAMERA":
        raise PreviewError("the shot has no camera to render through")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _render_settings(scene):
        _prepare(scene, camera, engine, percentage)
        _media(scene, "IMAGE", "PNG")
        settings = scene.render.image_settings
        settings.color_mode, settings.color_depth = "RGB", "8"
        scene.render.filepath = str(path.with_suffix(""))
        scene.frame_set(frame)
        bpy.ops.render.render(write_still=True, scene=scene.name)
        written = Path(bpy.path.abspath(scene.render.frame_path(frame=frame)))
    if written != path and written.exists():
        written.replace(path)
    if not path.exists():
        raise PreviewError(f"the first frame was not written ({path})")
    return path


def shotbridge_background(camera: bpy.types.Object) -> bpy.types.CameraBackgroundImage | None:
    """The camera's ShotBridge background image (the one whose clip ShotBridge loaded)."""
    for background in camera.data.background_images:
        if background.clip is not None and PREVIEW_PROPERTY in background.clip:
            return background
    return None


def detach_background(camera: bpy.types.Object) -> bool:
    """Remove the camera's ShotBridge background (and its clip if no other camera shows it)."""
    removed = False
    backgrounds = camera.data.background_images
    for background in list(backgrounds):
        clip = background.clip
        if clip is None or PREVIEW_PROPERTY not in clip:
            continue
        backgrounds.remove(background)
        removed = True
        # Removing a background keeps its user count on the clip, so count the uses left.
        if not any(other.clip == clip for data in bpy.data.cameras
                   for other in data.background_images):
            bpy.data.movieclips.remove(clip)
    return removed


def attach_background(camera: bpy.types.Object, path: Path, frame_start: int, shot: str,
                      kind: str, alpha: float = 0.5) -> bpy.types.CameraBackgroundImage:
    """Show the MP4 ``path`` behind ``camera``'s view, its frame 1 at scene frame ``frame_start``.

    Replaces the camera's previous ShotBridge background; the user's own ones stay as they are.
    """
    if not Path(path).exists():
        raise PreviewError(f"the preview video {path} does not exist")
    try:
        clip = bpy.data.movieclips.load(str(path), check_existing=False)
    except RuntimeError as error:
        raise PreviewError(f"Blender cannot read the preview video {path}: {error}") from None
    if clip.frame_duration < 1:
        bpy.data.movieclips.remove(clip)
        raise PreviewError(f"Blender cannot read the preview video {path}")
    detach_background(camera)
    clip.name = f"ShotBridge {shot} {kind}"
    clip[PREVIEW_PROPERTY] = shot
    clip["shotbridge_kind"] = kind
    clip.frame_start = frame_start
    background = camera.data.background_images.new()
    background.source = "MOVIE_CLIP"
    background.clip = clip
    background.use_camera_clip = False
    background.alpha = alpha
    # A preview rendered at another aspect than the camera's fills the view and is cropped,
    # rather than letterboxed, so that it lines up with the camera frame.
    background.frame_method = "CROP"
    background.show_background_image = True
    camera.data.show_background_images = True
    return background


def _strips(scene: bpy.types.Scene):
    editor = scene.sequence_editor or scene.sequence_editor_create()
    # Blender 4.4 renamed sequences to strips.
    return editor, editor.strips if hasattr(editor, "strips") else editor.sequences


def shotbridge_strip(scene: bpy.types.Scene, shot: str):
    """The sequencer strip ShotBridge made for ``shot``, or None."""
    if scene.sequence_editor is None:
        return None
    _, strips = _strips(scene)
    return next((s for s in strips if s.get(PREVIEW_PROPERTY) == shot), None)


def add_strip(scene: bpy.types.Scene, path: Path, frame_start: int, frame_end: int, shot: str,
              channel: int = STRIP_CHANNEL):
    """A movie strip of ``path`` on the ShotBridge channel from ``frame_start``, cut at the shot's
    end; replaces the strip ShotBridge made for this shot before."""
    editor, strips = _strips(scene)
    old = shotbridge_strip(scene, shot)
    if old is not None:
        strips.remove(old)
    strip = strips.new_movie(f"ShotBridge {shot}", str(path), channel=channel,
                             frame_start=frame_start)
    strip[PREVIEW_PROPERTY] = shot
    length = frame_end - frame_start + 1
    if strip.frame_final_duration > length:
        strip.frame_final_duration = length
    if hasattr(editor, "channels"):
        editor.channels[channel].name = STRIP_CHANNEL_NAME
    return strip


# -- what the operators call --------------------------------------------------------------------


def attach_preview(scene: bpy.types.Scene, camera: bpy.types.Object, path: Path, shot: str,
                   frame_start: int, frame_end: int, kind: str) -> bpy.types.CameraBackgroundImage:
    """Attach with the scene's ShotBridge settings: background alpha, sequencer strip or not."""
    settings = scene.shotbridge
    background = attach_background(camera, path, frame_start, shot, kind, settings.preview_alpha)
    if settings.preview_strips:
        add_strip(scene, path, frame_start, frame_end, shot)
    return background


def layout_preview(scene: bpy.types.Scene, shot, folder: Path) -> Path:
    """Playblast one shot (a :class:`.scene_io.ShotSpec`) and attach it to its camera."""
    path = preview_path(folder, scene, shot.name, "layout")
    playblast(scene, shot.camera, shot.frame_start, shot.frame_end, path,
              scene.shotbridge.preview_percentage)
    attach_preview(scene, shot.camera, path, shot.name, shot.frame_start, shot.frame_end,
                   "layout")
    return path


def first_frame_png(scene: bpy.types.Scene, camera: bpy.types.Object, frame: int,
                    folder: Path, label: str) -> bytes:
    """A first-frame image condition as PNG bytes, with the scene's image settings."""
    settings = scene.shotbridge
    engine = WORKBENCH if settings.image_engine == "WORKBENCH" else None
    path = preview_path(folder, scene, label, "first_frame", ".png")
    render_first_frame(scene, camera, frame, path, engine, settings.preview_percentage)
    return path.read_bytes()


def remove_preview(scene: bpy.types.Scene, camera: bpy.types.Object, shot: str) -> bool:
    """Detach the shot camera's ShotBridge background and remove the shot's strip."""
    removed = detach_background(camera)
    strip = shotbridge_strip(scene, shot)
    if strip is not None:
        _strips(scene)[1].remove(strip)
        removed = True
    return removed
