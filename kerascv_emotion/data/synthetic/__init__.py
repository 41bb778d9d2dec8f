"""Offline synthetic datasets: drawn faces (8 AffectNet expressions + valence/arousal) and
chest X-rays (normal / covid / viral pneumonia).

Both generators are deterministic for a seed (numpy + Pillow ``ImageDraw`` only, no
downloads), write ``OUT/<class>/<class>_00001.png`` and then ``OUT/index.csv`` (+ sidecar),
so that tests, demos and the workflow run without real data. Every image draws its own
random stream from ``(seed, dataset, class, number)``: an image does not change when
``per_class`` or the class list changes.

The images are meant to be learnable but not trivial: expressions vary in intensity
(a weak contempt is close to neutral, fear and surprise share raised brows and wide eyes,
anger and disgust share lowered, knit brows) under random pose, lighting, skin tone,
background, noise and occlusion; COVID ground-glass opacities can be faint and compete with
vessels, ribs and breast shadows. Calibrated so that a small CNN trained from scratch for 12
epochs (Adam 1e-3, batch 32, 64 px, 105 training images per class) reaches about 70-85 %
test accuracy, not 100 %.

:mod:`.faces` draws the faces, :mod:`.xrays` the X-rays; :mod:`.writer` saves the images
and the index for both.
"""

from kerascv_emotion.data.synthetic.faces import CIRCUMPLEX, FACE_CLASSES, generate_faces
from kerascv_emotion.data.synthetic.xrays import XRAY_CLASSES, generate_xrays

__all__ = ["CIRCUMPLEX", "FACE_CLASSES", "XRAY_CLASSES", "generate_faces", "generate_xrays"]
