"""kerascv_emotion.model_catalog: the model names and builder options known without TensorFlow
agree with the builders (the registry checks the built-ins when it registers them)."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from kerascv_emotion.errors import ConfigError
from kerascv_emotion.model_catalog import (
    APPLICATION_OPTIONS,
    MODEL_OPTIONS,
    available_models,
    check_model_options,
)


def test_the_catalog_imports_no_tensorflow_or_keras() -> None:
    code = ("import sys, kerascv_emotion.model_catalog; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_catalog_lists_every_builder_with_its_options() -> None:
    from kerascv_emotion import models
    from kerascv_emotion.models import applications, registry

    assert sorted(registry._BUILDERS) == sorted(MODEL_OPTIONS)
    for name, builder in registry._BUILDERS.items():
        assert tuple(inspect.signature(builder).parameters)[3:] == MODEL_OPTIONS[name], name
    assert tuple(inspect.signature(applications.build_application).parameters)[4:] == APPLICATION_OPTIONS
    assert models.available_models() == available_models()


def test_register_model_refuses_a_builtin_whose_options_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    from kerascv_emotion.models import registry

    monkeypatch.setitem(MODEL_OPTIONS, "listed_net", ("dropout",))

    def builder(input_shape, num_classes, head, width=1):
        raise AssertionError("not built")

    with pytest.raises(ValueError, match="listed_net.*MODEL_OPTIONS"):
        registry.register_model("listed_net")(builder)
    assert "listed_net" not in registry._BUILDERS


@pytest.mark.parametrize(("name", "options", "message"), [
    ("resnet9000", {}, "unknown model 'resnet9000'; choose one of: alexnet, covid"),
    ("keras:NoSuchNet", {}, "keras:MobileNetV2"),
    ("vgg", {"depth": 3}, "model 'vgg' has no option(s) depth; its options are: dropout, pool_dropout_rate"),
    ("keras:MobileNetV2", {"alpha": 0.5}, "its options are: weights, dropout"),
])
def test_unknown_models_and_options_are_config_errors(name: str, options: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        check_model_options(name, options)
    assert message in str(error.value)
    check_model_options("mobilenet", {"alpha": 0.25, "dropout": 0.0})
