"""VGG-style CNN of Hewitt & Gunes (2018), "CNN-based facial affect analysis on mobile devices"."""

from __future__ import annotations

import keras

from kerascv_emotion.models.blocks import PAPER_DROPOUT, PAPER_POOL_DROPOUT, paper_network
from kerascv_emotion.models.registry import register_model

# Filters of the five blocks; each block holds two 3x3 convs.
VGG_WIDTHS = (16, 32, 64, 128, 128)


@register_model("vgg")
def vgg(
    input_shape: tuple[int, int, int],
    num_classes: int,
    head: str,
    dropout: float = PAPER_DROPOUT,
    pool_dropout_rate: float = PAPER_POOL_DROPOUT,
) -> keras.Model:
    """Five blocks of two 3x3 convs (``block<N>_conv1``, ``block<N>_conv2``: Conv2D same/no bias
    -> BN -> ReLU) at widths 16, 32, 64, 128, 128, each pair followed by a 2x2 max-pool and
    GaussianDropout(``pool_dropout_rate``); Flatten (:data:`HEAD_START`); two dense blocks of
    1024 (Dense no bias -> BN -> ReLU -> Dropout(``dropout``)); the output layer.

    3,753,016 parameters at 128x128x3 with 8 classes. Call through ``build_model``.
    """
    blocks = [[(filters, 3), (filters, 3)] for filters in VGG_WIDTHS]
    return paper_network(input_shape, blocks, num_classes, head, dropout, pool_dropout_rate, name="vgg")
