"""AlexNet-style CNN of Hewitt & Gunes (2018), "CNN-based facial affect analysis on mobile devices"."""

from __future__ import annotations

import keras

from kerascv_emotion.models.blocks import PAPER_DROPOUT, PAPER_POOL_DROPOUT, paper_network
from kerascv_emotion.models.registry import register_model

# (filters, kernel size) of the five conv blocks.
ALEXNET_CONVS = ((16, 9), (32, 7), (64, 5), (128, 3), (128, 3))


@register_model("alexnet")
def alexnet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    head: str,
    dropout: float = PAPER_DROPOUT,
    pool_dropout_rate: float = PAPER_POOL_DROPOUT,
) -> keras.Model:
    """Five conv blocks (9x9x16, 7x7x32, 5x5x64, 3x3x128, 3x3x128), each ``block<N>_conv``
    (Conv2D same/no bias -> BN -> ReLU) followed by a 2x2 max-pool and
    GaussianDropout(``pool_dropout_rate``); Flatten (:data:`HEAD_START`); two dense blocks of
    1024 (Dense no bias -> BN -> ReLU -> Dropout(``dropout``)); the output layer.

    3,464,952 parameters at 128x128x3 with 8 classes. Call through ``build_model``.
    """
    blocks = [[(filters, kernel)] for filters, kernel in ALEXNET_CONVS]
    return paper_network(input_shape, blocks, num_classes, head, dropout, pool_dropout_rate, name="alexnet")
