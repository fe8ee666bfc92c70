"""SynthFace: the procedural face data set embedded in distill.

    generate(out, num, seed, size, workers, num_test, stability, layout) -> Path   writes a set (writer.py;
                                                          layouts.py: 300W / WFLW / COFW / AFLW's own layouts)
    render_face(params, size) -> Render                                     one face in memory (render.py)
    render_faces(params_list, size) -> [Render]                             a batch, posed together
    sample_params(rng, hard) / mirror_params(params)                        the parameters (params.py)
    mean_shape_nme(dir)                                                     the model-free yardstick

Modules: shape (3D mean face, identity/expression blendshapes, 68 -> 98 points, normals), face_model
(pose, projection, placement, self-occlusion), draw (OpenCV painting), hardcases (occluders, light,
blur, noise, JPEG), backgrounds, params, render, writer, layouts, yardstick.
"""

from distill.data.synthface.params import FaceParams, HardCases, mirror_params, sample_params
from distill.data.synthface.render import Render, render_face, render_faces
from distill.data.synthface.writer import generate
from distill.data.synthface.yardstick import mean_shape_nme

__all__ = ["FaceParams", "HardCases", "Render", "generate", "mean_shape_nme", "mirror_params", "render_face",
           "render_faces", "sample_params"]
