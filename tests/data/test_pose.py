import numpy as np
import pytest

from distill import DataError
from distill.data import SCHEMAS, Sample
from distill.data.pose import (
    WFLW98_TO_IBUG68,
    estimate_pose,
    pose_from_samples,
    pose_matrix,
    project_mean_face,
    rotation_to_euler,
)

SIZE = (256, 256)


@pytest.mark.parametrize("angles", [(0, 0, 0), (30, 10, 5), (-45, -20, 15), (60, 15, -25), (-75, 5, 0),
                                    (10, 35, 40)])
def test_recovers_projected_pose_within_one_degree(angles):
    # the physical camera (principal point at the image centre), the head off the optical axis
    pts = project_mean_face(*angles, SIZE, distance=500.0, offset=(20.0, -15.0))
    est = estimate_pose(pts, SIZE, principal="image")
    np.testing.assert_allclose(est, angles, atol=1.0)
    # the default measures against the line of sight; a distant head on the axis reads the same
    far = project_mean_face(*angles, SIZE, distance=3000.0)
    np.testing.assert_allclose(estimate_pose(far, SIZE, principal="face"), angles, atol=1.0)


def test_face_principal_point_ignores_where_the_face_sits():
    pts = project_mean_face(20, -10, 5, SIZE, distance=800.0)
    a = np.array(estimate_pose(pts, SIZE))
    np.testing.assert_allclose(estimate_pose(pts + [60.0, -40.0], SIZE), a, atol=1e-3)
    # whereas against the camera axes a face near the edge is a turned face
    assert abs(estimate_pose(pts + [60.0, 0.0], SIZE, principal="image")[0] - a[0]) > 5


def test_sign_conventions_in_the_image():
    front = project_mean_face(0, 0, 0, SIZE)
    # yaw > 0: the nose tip (30) moves to the image's right of the face's centre line
    turned = project_mean_face(25, 0, 0, SIZE)
    assert turned[30, 0] > front[30, 0] + 5
    # pitch > 0 (looking up): the nose tip moves up, towards the eyes
    up = project_mean_face(0, 20, 0, SIZE)
    assert up[30, 1] - up[36:48, 1].mean() < front[30, 1] - front[36:48, 1].mean() - 3
    # roll > 0 (clockwise on a y-down display): the eye on the image's right (45) moves down,
    # the top of the face (brow centre) moves right of the chin
    rolled = project_mean_face(0, 0, 20, SIZE)
    assert rolled[45, 1] - rolled[36, 1] > 10
    assert rolled[17:27, 0].mean() > rolled[8, 0] + 10


def test_euler_round_trip_and_batch():
    for angles in [(20, -10, 30), (-50, 25, -10)]:
        np.testing.assert_allclose(rotation_to_euler(pose_matrix(*angles)), angles, atol=1e-9)
    batch = np.stack([project_mean_face(a, 0, 0, SIZE) for a in (-30, 0, 30)])
    yaw, pitch, roll = estimate_pose(batch, SIZE, principal="image")
    assert yaw.shape == (3,)
    np.testing.assert_allclose(yaw, [-30, 0, 30], atol=1.0)


def test_wflw_mapping_commutes_with_flips_and_estimates_pose():
    m = np.array(WFLW98_TO_IBUG68)
    assert len(m) == 68 and len(set(m.tolist())) == 68
    f68, f98 = np.array(SCHEMAS["ibug68"].flip_perm), np.array(SCHEMAS["wflw98"].flip_perm)
    np.testing.assert_array_equal(m[f68], f98[m])
    assert (m[36], m[45]) == SCHEMAS["wflw98"].norm_pair
    # a 98-point face whose mapped points are the projected mean face gives the same pose
    p68 = project_mean_face(-35, 10, 8, SIZE)
    p98 = np.zeros((98, 2), np.float32)
    p98[m] = p68
    np.testing.assert_allclose(estimate_pose(p98, SIZE, schema="wflw98", principal="image"), (-35, 10, 8), atol=1.0)


def test_pose_from_samples_prefers_attributes(tmp_path):
    pts = project_mean_face(40, 0, 0, SIZE)
    given = Sample(tmp_path / "a.png", pts, attributes={"yaw": -10.0, "pitch": 2.0, "roll": 3.0})
    estimated = Sample(tmp_path / "b.png", pts, attributes={"image_size": SIZE})
    out = pose_from_samples([given, estimated], principal="image")
    np.testing.assert_allclose(out[0], [-10, 2, 3])
    np.testing.assert_allclose(out[1], [40, 0, 0], atol=1.0)


def test_bad_input_raises():
    with pytest.raises(DataError, match="68"):
        estimate_pose(np.zeros((29, 2)), SIZE, schema="cofw29")
    bad = project_mean_face(0, 0, 0, SIZE)
    bad[36] = np.nan
    with pytest.raises(DataError, match="NaN"):
        estimate_pose(bad, SIZE)
    with pytest.raises(DataError, match="not found"):
        pose_from_samples([Sample("/nonexistent/x.png", project_mean_face(0, 0, 0, SIZE))])
