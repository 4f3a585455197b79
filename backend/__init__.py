"""ShotBridge backend: canonical ShotSequence, camera core, conditioning, models and serving."""

__version__ = "0.1.0"
