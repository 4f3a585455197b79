"""Camera core: pure numpy SE(3), resampling, relative poses, scale modes, formats.

Conventions are stated once in :mod:`backend.camera.conventions`.
"""
