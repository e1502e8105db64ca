"""dexhand's simulator: the Shadow Hand + cube scene in MuJoCo and the Dactyl task as a Gymnasium env.

Importing ``sim`` picks an offscreen OpenGL backend before MuJoCo loads (MuJoCo reads MUJOCO_GL
once, at import): EGL when libEGL is present, else OSMesa. Set MUJOCO_GL yourself to override.
"""

from __future__ import annotations

import ctypes.util
import os


def _choose_gl_backend() -> None:
    if os.environ.get("MUJOCO_GL"):
        return
    backend = "egl" if ctypes.util.find_library("EGL") else "osmesa"
    os.environ["MUJOCO_GL"] = backend
    if backend == "osmesa":
        os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
    else:
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


_choose_gl_backend()

from sim.registration import register_envs  # noqa: E402

register_envs()
