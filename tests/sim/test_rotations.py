import numpy as np
import pytest

from sim import rotations


def test_distance_is_symmetric_sign_invariant_and_matches_axis_angle():
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rotations.random_uniform(rng)
        angle = rng.uniform(0, np.pi)
        rotated = rotations.multiply(rotations.from_axis_angle(rng.normal(size=3), angle), q)
        assert rotations.distance(q, rotated) == pytest.approx(angle, abs=1e-6)
        assert rotations.distance(rotated, q) == pytest.approx(angle, abs=1e-6)
        assert rotations.distance(q, -q) == pytest.approx(0.0, abs=1e-6)


def test_relative_rotation_takes_current_to_goal():
    rng = np.random.default_rng(1)
    a, b = rotations.random_uniform(rng, 5), rotations.random_uniform(rng, 5)
    rel = rotations.relative(a, b)
    assert np.all(rel[:, 0] >= 0)
    np.testing.assert_allclose(rotations.distance(rotations.multiply(rel, a), b), 0.0, atol=1e-6)


def test_face_orientations_are_24_distinct_proper_rotations():
    faces = rotations.face_aligned_orientations()
    assert faces.shape == (24, 4)
    mats = rotations.to_matrix(faces)
    np.testing.assert_allclose(np.linalg.det(mats), 1.0, atol=1e-9)
    # Every entry of a face-aligned rotation matrix is -1, 0 or 1.
    np.testing.assert_allclose(np.abs(mats), np.round(np.abs(mats)), atol=1e-9)
    pair = rotations.distance(faces[:, None], faces[None])
    assert np.all(pair[~np.eye(24, dtype=bool)] > 1.0)


def test_matrix_round_trip():
    rng = np.random.default_rng(2)
    for q in rotations.random_uniform(rng, 10):
        back = rotations.from_matrix(rotations.to_matrix(q))
        assert rotations.distance(q, back) < 1e-6


def test_look_at_points_the_camera_at_the_target():
    eye, target = np.array([0.8, 0.7, 0.4]), np.array([1.0, 0.9, 0.2])
    mat = rotations.to_matrix(rotations.look_at(eye, target))
    view = -mat[:, 2]  # MuJoCo cameras look along their -z axis
    np.testing.assert_allclose(view, (target - eye) / np.linalg.norm(target - eye), atol=1e-9)
