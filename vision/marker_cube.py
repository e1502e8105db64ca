"""A cube with one ArUco marker per face, built through MjSpec (sim/ is not edited), and where its
marker corners sit in the cube's frame.

The scene's cube texture is a 3x4 cube-map grid (layout ".U..LFRB.D..", MuJoCo's faces R/L = +-x,
U/D = +-y, F/B = +-z); we write a PNG of the same layout with a marker in each cell and point the
cube's texture at it. ``FACE_AXES`` records, per face, the cube-frame directions of the marker
image's right (u) and down (v) axes as MuJoCo's cube mapping places them (checked by the tests
through pose recovery).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from sim.config import SceneConfig
from sim.scene import build_spec

if TYPE_CHECKING:  # mujoco loads only after sim has chosen the GL backend
    import mujoco

ARUCO_DICT = cv2.aruco.DICT_4X4_50
GRID_LAYOUT = ".U..LFRB.D.."
FACES = "RLUDFB"  # marker id = index here
FACE_NORMALS = {"R": (1, 0, 0), "L": (-1, 0, 0), "U": (0, 1, 0), "D": (0, -1, 0), "F": (0, 0, 1), "B": (0, 0, -1)}
MARKER_FRACTION = 0.7  # marker side / face side
CELL_PX = 120


def aruco_dictionary():
    return cv2.aruco.getPredefinedDictionary(ARUCO_DICT)


def marker_texture(path: Path, cell: int = CELL_PX) -> Path:
    """Write the 3x4 cube-map PNG: white faces, one marker (id = FACES.index(face)) centred on each."""
    grid = np.full((3 * cell, 4 * cell, 3), 255, np.uint8)
    side = int(round(cell * MARKER_FRACTION))
    off = (cell - side) // 2
    for k, ch in enumerate(GRID_LAYOUT):
        if ch == ".":
            continue
        r, c = divmod(k, 4)
        marker = cv2.aruco.generateImageMarker(aruco_dictionary(), FACES.index(ch), side)
        grid[r * cell + off:r * cell + off + side, c * cell + off:c * cell + off + side] = marker[..., None]
    cv2.imwrite(str(path), grid)
    return path


def marker_model(cfg: SceneConfig | None = None) -> mujoco.MjModel:
    """The dexhand scene with the marker texture on the cube, compiled. The texture PNG lives only in a
    temporary folder while MuJoCo compiles (it reads the file then), so nothing is left behind."""
    spec = build_spec(cfg or SceneConfig())
    with tempfile.TemporaryDirectory(prefix="dexhand_aruco_") as folder:
        png = marker_texture(Path(folder) / "aruco_cube.png")
        tex = spec.texture("texture:object")
        tex.file = str(png.resolve())
        tex.gridlayout = GRID_LAYOUT
        tex.gridsize = [3, 4]
        return spec.compile()


# Per face: (u, v) = cube-frame directions of the marker image's +column and +row axes on the rendered
# cube (OpenGL's cube-map convention; measured by single-marker solvePnP on renders, checked in tests).
FACE_AXES: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "R": ((0, 0, -1), (0, -1, 0)),
    "L": ((0, 0, 1), (0, -1, 0)),
    "U": ((1, 0, 0), (0, 0, 1)),
    "D": ((1, 0, 0), (0, 0, -1)),
    "F": ((1, 0, 0), (0, -1, 0)),
    "B": ((-1, 0, 0), (0, -1, 0)),
}


def marker_corners_cube(half: float, face_axes=None) -> dict[int, np.ndarray]:
    """Marker id -> its 4 corners (ArUco order: TL, TR, BR, BL) in the cube frame, metres."""
    face_axes = face_axes or FACE_AXES
    s = half * MARKER_FRACTION
    out = {}
    for face, (u, v) in face_axes.items():
        n, u, v = (np.array(a, float) for a in (FACE_NORMALS[face], u, v))
        centre = n * half
        out[FACES.index(face)] = np.array([centre - s * u - s * v, centre + s * u - s * v,
                                           centre + s * u + s * v, centre - s * u + s * v])
    return out
