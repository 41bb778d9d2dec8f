"""Offline synthetic datasets (drawn faces, chest X-rays); see :mod:`.faces`."""

from kerascv_emotion.data.synthetic.faces import (
    CIRCUMPLEX,
    FACE_CLASSES,
    XRAY_CLASSES,
    generate_faces,
    generate_xrays,
)

__all__ = ["CIRCUMPLEX", "FACE_CLASSES", "XRAY_CLASSES", "generate_faces", "generate_xrays"]
