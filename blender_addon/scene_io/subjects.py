"""Which objects are subjects: the "ShotBridge Subjects" collection."""

from __future__ import annotations

import bpy

SUBJECTS_COLLECTION = "ShotBridge Subjects"


def subjects_collection(
    scene: bpy.types.Scene, *, create: bool = False
) -> bpy.types.Collection | None:
    """The subjects collection, linked under the scene's collection when ``create`` makes it."""
    collection = bpy.data.collections.get(SUBJECTS_COLLECTION)
    if collection is None and create:
        collection = bpy.data.collections.new(SUBJECTS_COLLECTION)
        scene.collection.children.link(collection)
    return collection


def add_subjects(scene: bpy.types.Scene, objects) -> list[bpy.types.Object]:
    """Link ``objects`` (cameras excepted) into the subjects collection; returns those added.

    Linking keeps every object in its other collections: nothing of the user's layout moves.
    """
    collection = subjects_collection(scene, create=True)
    added = []
    for obj in objects:
        if obj.type != "CAMERA" and obj.name not in collection.all_objects:
            collection.objects.link(obj)
            added.append(obj)
    return added
