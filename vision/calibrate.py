"""OpenCV camera calibration from checkerboard images -> intrinsics/distortion YAML.

``calibrate_simulated`` renders a checkerboard plane (textured through MjSpec) at random poses in front
of a MuJoCo camera with the vision cameras' fovy and calibrates it: the recovered K must match the
pinhole model MuJoCo renders with (tests check this), which validates the whole chain the pose labels
and the marker baseline rely on. ``calibrate_images`` does the same for real photos.

``calibrate_extrinsics`` adds each camera's pose in the hand frame (what the estimator triangulates with)
from one image per camera of the board lying at a known pose on the hand (e.g. in a 3D-printed palm
cradle): solvePnP gives camera <- board, the known pose hand <- board, together camera <- hand.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from vision.runtime.calibration import CameraCalibration, pinhole_matrix

BOARD_INNER = (7, 5)  # inner corners (cols, rows) of the rendered board
BOARD_SQUARE = 0.01  # m
MARGIN_SQUARES = 1
TEXEL = 32  # texture pixels per square


def checkerboard_png(path: Path, inner=BOARD_INNER) -> Path:
    """A board of (cols+1) x (rows+1) squares with a white margin one square wide."""
    cols, rows = inner[0] + 1, inner[1] + 1
    w, h = (cols + 2 * MARGIN_SQUARES) * TEXEL, (rows + 2 * MARGIN_SQUARES) * TEXEL
    img = np.full((h, w), 255, np.uint8)
    for r in range(rows):
        for c in range(cols):
            if (r + c) % 2 == 0:
                y, x = (r + MARGIN_SQUARES) * TEXEL, (c + MARGIN_SQUARES) * TEXEL
                img[y:y + TEXEL, x:x + TEXEL] = 0
    cv2.imwrite(str(path), img)
    return path


def board_points(inner=BOARD_INNER, square: float = BOARD_SQUARE) -> np.ndarray:
    grid = np.mgrid[0:inner[0], 0:inner[1]].T.reshape(-1, 2)
    return np.concatenate([grid * square, np.zeros((len(grid), 1))], axis=1).astype(np.float32)


def _board_scene(fovy: float, size: int):
    import mujoco

    # MuJoCo reads the PNG when it compiles; the temporary folder goes once it has.
    with tempfile.TemporaryDirectory(prefix="dexhand_checker_") as folder:
        png = checkerboard_png(Path(folder) / "board.png")
        spec = mujoco.MjSpec()
        spec.visual.global_.offwidth = size
        spec.visual.global_.offheight = size
        spec.add_texture(name="board", type=mujoco.mjtTexture.mjTEXTURE_2D, file=str(png))
        mat = spec.add_material(name="board", texrepeat=[1, 1], texuniform=False)
        mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "board"
        spec.worldbody.add_light(pos=[0, 0, 1], dir=[0, 0, -1], diffuse=[0.8, 0.8, 0.8])
        spec.worldbody.add_camera(name="cam", pos=[0, 0, 0], fovy=fovy)
        board = spec.worldbody.add_body(name="board", mocap=True)
        cols, rows = BOARD_INNER[0] + 1 + 2 * MARGIN_SQUARES, BOARD_INNER[1] + 1 + 2 * MARGIN_SQUARES
        board.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[cols * BOARD_SQUARE / 2, rows * BOARD_SQUARE / 2, 0.01],
                       material="board", rgba=[1, 1, 1, 1])
        return spec.compile()


def render_board_views(n_views: int, fovy: float, size: int = 200, seed: int = 0) -> list[np.ndarray]:
    """``n_views`` grey images of the board at random tilts and distances in front of the camera."""
    import mujoco

    from sim import rotations
    from sim.visual import CameraRenderer

    model = _board_scene(fovy, size)
    data = mujoco.MjData(model)
    renderer = CameraRenderer(model, size, size)
    rng = np.random.default_rng(seed)
    images = []
    try:
        for _ in range(n_views):
            dist = rng.uniform(0.17, 0.24)
            half_view = dist * np.tan(np.radians(fovy) / 2)
            xy = rng.uniform(-0.25, 0.25, 2) * half_view
            tilt = rotations.from_axis_angle(np.array([*rng.normal(size=2), 0.0]), rng.uniform(0.2, 0.6))
            spin = rotations.from_axis_angle(np.array([0.0, 0.0, 1.0]), rng.uniform(-0.3, 0.3))
            data.mocap_pos[0] = [xy[0], xy[1], -dist]
            data.mocap_quat[0] = rotations.multiply(tilt, spin)
            mujoco.mj_forward(model, data)
            images.append(cv2.cvtColor(renderer.render(data, "cam"), cv2.COLOR_RGB2GRAY))
    finally:
        renderer.close()
    return images


def calibrate_grey_images(images: list[np.ndarray], inner=BOARD_INNER, square: float = BOARD_SQUARE,
                          min_views: int = 4) -> CameraCalibration:
    """Detect the board (sub-pixel corners) in each image and run cv2.calibrateCamera."""
    if not images:
        raise ValueError("no calibration images")
    h, w = images[0].shape[:2]
    obj, img = [], []
    for im in images:
        if im.shape[:2] != (h, w):
            raise ValueError(f"calibration images differ in size: {im.shape[:2]} vs {(h, w)}")
        found, corners = cv2.findChessboardCorners(im, inner, flags=cv2.CALIB_CB_ADAPTIVE_THRESH)
        if not found:
            continue
        corners = cv2.cornerSubPix(im, corners, (3, 3), (-1, -1),
                                   (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3))
        obj.append(board_points(inner, square))
        img.append(corners)
    if len(obj) < min_views:
        raise ValueError(f"the checkerboard ({inner[0]}x{inner[1]} inner corners) was found in only {len(obj)} of "
                         f"{len(images)} images; need {min_views}")
    rms, k, dist, _, _ = cv2.calibrateCamera(obj, img, (w, h), None, None,
                                             flags=cv2.CALIB_ZERO_TANGENT_DIST | cv2.CALIB_FIX_K3)
    return CameraCalibration(w, h, k, dist.ravel(), float(rms))


def calibrate_simulated(n_views: int = 12, size: int = 200, seed: int = 0,
                        fovy: float | None = None) -> dict[str, CameraCalibration]:
    """Calibrate each vision camera from rendered checkerboards (fovy: the scene's unless given)."""
    from sim.scene import CAMERA_FOVY, VISION_CAMERAS

    out = {}
    for i, cam in enumerate(VISION_CAMERAS):
        out[cam] = calibrate_grey_images(render_board_views(n_views, fovy or CAMERA_FOVY, size, seed + i))
    return out


def scene_calibration(size: int | None = None) -> dict[str, CameraCalibration]:
    """The simulated rig's calibration without rendering: the ideal pinhole intrinsics of the scene's
    cameras (``size``: the env's vision image size by default) and their nominal poses."""
    from sim.config import EnvConfig
    from sim.scene import CAMERA_FOVY, VISION_CAMERAS

    size = size or EnvConfig().scene.vision_image_size
    return scene_extrinsics({c: CameraCalibration(size, size, pinhole_matrix(CAMERA_FOVY, size, size), np.zeros(5))
                             for c in VISION_CAMERAS})


def scene_extrinsics(cals: dict[str, CameraCalibration]) -> dict[str, CameraCalibration]:
    """``cals`` with the simulated scene's nominal camera poses as their extrinsics (hand frame): what the
    simulated rig (``sim_hand``, randomization off) needs for the estimator to triangulate."""
    from dataclasses import replace

    import mujoco

    from sim.env import HAND_ORIGIN, CubeReorientEnv
    from vision.cameras import camera_pose

    env = CubeReorientEnv(overrides=["randomization.enabled=false"])
    try:
        data = mujoco.MjData(env.nominal)
        mujoco.mj_forward(env.nominal, data)
        out = {}
        for name, cal in cals.items():
            geom = camera_pose(env.nominal, data, name, cal.width, HAND_ORIGIN)
            out[name] = replace(cal, R_cam_from_hand=geom.R_cw, t_cam_from_hand=geom.t_cw)
        return out
    finally:
        env.close()


def calibrate_images(folder: Path, inner=BOARD_INNER, square: float = 0.02) -> dict[str, CameraCalibration]:
    """Real photos: ``folder/<camera>/*.png|jpg`` -> one calibration per camera sub-folder."""
    folder = Path(folder)
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not subdirs:
        raise FileNotFoundError(f"{folder}: expected one sub-folder of checkerboard images per camera")
    out = {}
    for sub in subdirs:
        files = sorted(p for p in sub.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"))
        images = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in files]
        out[sub.name] = calibrate_grey_images([im for im in images if im is not None], tuple(inner), square)
    return out


def board_corners(image: np.ndarray, inner=BOARD_INNER) -> np.ndarray | None:
    """(N, 2) sub-pixel inner corners of the board in a grey image in the board frame's order, or None when
    the board is not found: row by row (``inner[0]`` per row), the first next to the black corner square.

    OpenCV may list the grid from any of its corners, mirrored or not. A camera sees the board's front,
    never its mirror image, which fixes the handedness; on a board with an odd and an even number of
    squares only one of the two remaining starts has a black corner square, which fixes the rest."""
    found, corners = cv2.findChessboardCorners(image, tuple(inner), flags=cv2.CALIB_CB_ADAPTIVE_THRESH)
    if not found:
        return None
    corners = cv2.cornerSubPix(image, corners, (3, 3), (-1, -1),
                               (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3))
    grid = corners.reshape(inner[1], inner[0], 2)  # OpenCV 4 gives (N, 1, 2), OpenCV 5 (N, 2)

    def grey(point: np.ndarray) -> float:
        x, y = np.clip(np.round(point).astype(int), 0, [image.shape[1] - 1, image.shape[0] - 1])
        return float(image[y, x])

    for g in (grid, grid[::-1, ::-1], grid[:, ::-1], grid[::-1, :]):
        along, down = g[0, 1] - g[0, 0], g[1, 0] - g[0, 0]
        if along[0] * down[1] - along[1] * down[0] <= 0:  # image y points down: the front has a positive turn
            continue
        if grey(g[0, 0] - 0.5 * along - 0.5 * down) < grey(g[0, 0] + 0.5 * along - 0.5 * down):
            return np.ascontiguousarray(g.reshape(-1, 2), dtype=np.float32)
    return None


def calibrate_extrinsics(images: dict[str, np.ndarray], cals: dict[str, CameraCalibration],
                         board_in_hand: tuple[np.ndarray, np.ndarray], inner=BOARD_INNER,
                         square: float = BOARD_SQUARE) -> dict[str, CameraCalibration]:
    """Each camera's pose in the hand frame from a grey image of the board at a known pose.

    ``board_in_hand``: (R, t) with x_hand = R @ x_board + t (board frame: origin at the first inner corner,
    x along the columns, y along the rows, z out of the board's back, as ``board_points``). Returns copies of
    ``cals`` with ``R_cam_from_hand`` and ``t_cam_from_hand`` set; a camera that does not see the whole
    board is a ValueError naming it."""
    from dataclasses import replace

    R_hb, t_hb = (np.asarray(a, np.float64) for a in board_in_hand)
    out = {}
    for name, cal in cals.items():
        if name not in images:
            raise ValueError(f"extrinsics: no board image for camera {name!r}")
        corners = board_corners(images[name], inner)
        if corners is None:
            raise ValueError(f"extrinsics: the {inner[0]}x{inner[1]} board is not (fully) visible to camera {name!r}")
        ok, rvec, tvec = cv2.solvePnP(board_points(inner, square), corners, cal.camera_matrix, cal.distortion,
                                      flags=cv2.SOLVEPNP_ITERATIVE)
        if not ok:
            raise ValueError(f"extrinsics: solvePnP failed for camera {name!r}")
        R_cb = cv2.Rodrigues(rvec)[0]
        R_ch = R_cb @ R_hb.T
        out[name] = replace(cal, R_cam_from_hand=R_ch, t_cam_from_hand=tvec.ravel() - R_ch @ t_hb)
    return out


def parse_pose(text: str) -> tuple[np.ndarray, np.ndarray]:
    """"x y z qw qx qy qz" (m, unit quaternion wxyz) -> (R, t); errors say what is wrong."""
    from dexhand.robot.rotations import to_matrix

    try:
        values = [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"--board-pose: {text!r} is not 7 numbers 'x y z qw qx qy qz'") from None
    if len(values) != 7:
        raise ValueError(f"--board-pose: expected 7 numbers 'x y z qw qx qy qz', got {len(values)}")
    q = np.array(values[3:])
    if not 0.9 < np.linalg.norm(q) < 1.1:
        raise ValueError(f"--board-pose: the quaternion {values[3:]} is not of unit length")
    return to_matrix(q), np.array(values[:3])


def print_calibration(cals: dict[str, CameraCalibration], fovy: float | None = None) -> None:
    from dexhand.report import format_table
    from sim.scene import CAMERA_FOVY

    rows = []
    for name, c in cals.items():
        ideal = pinhole_matrix(fovy or CAMERA_FOVY, c.width, c.height)
        rows.append({"camera": name, "fx": c.camera_matrix[0, 0], "fy": c.camera_matrix[1, 1],
                     "cx": c.camera_matrix[0, 2], "cy": c.camera_matrix[1, 2], "k1": c.distortion[0],
                     "fovy deg": c.fovy, "rms px": c.rms, "pinhole f": ideal[0, 0], "pinhole c": ideal[0, 2]})
    print(format_table(rows, title="camera calibration (pinhole f/c: what a simulated camera of the scene's fovy has)"))
