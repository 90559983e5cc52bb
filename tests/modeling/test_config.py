import pytest

from modeling.config import (
    Config,
    ConfigError,
    config_dump,
    config_from_dict,
    config_load,
)


def test_defaults_follow_the_paper():
    cfg = Config()
    assert cfg.optim.optimizer == "sgd"
    assert cfg.optim.lr == 1e-3
    assert cfg.optim.momentum == 0.9
    assert cfg.optim.weight_decay == 5e-4
    assert cfg.loss.name == "emd"
    assert cfg.data.n_frames == 8
    assert cfg.data.size == 224
    assert cfg.runtime.amp == "auto"


def test_yaml_values_are_loaded_and_ints_accepted_as_floats(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("optim:\n  lr: 1\n  epochs: 3\nloss:\n  name: mse\n")
    cfg = config_load(path)
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert cfg.optim.epochs == 3
    assert cfg.loss.name == "mse"


def test_unknown_key_is_an_error_naming_the_key_and_the_valid_ones():
    with pytest.raises(ConfigError, match=r"'lrate'.*section 'optim'.*lr"):
        config_from_dict({"optim": {"lrate": 0.1}})
    with pytest.raises(ConfigError, match=r"'optimiser'.*top level"):
        config_from_dict({"optimiser": {}})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"optim": {"lr": "fast"}}, r"optim.lr: expected float, got str"),
        ({"optim": {"epochs": 2.5}}, r"optim.epochs: expected int"),
        ({"optim": {"epochs": True}}, r"optim.epochs: expected int, got boolean"),
        ({"loss": {"name": "hinge"}}, r"loss.name: 'hinge' is not one of"),
        (
            {"data": {"speed_features": "speed"}},
            r"data.speed_features: expected a list",
        ),
        ({"cv": {"k": 1}}, r"cv.k must be >= 2"),
        ({"optim": "fast"}, r"optim: expected a mapping"),
    ],
)
def test_wrong_types_and_values_are_errors_with_the_key_path(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_overrides_are_parsed_as_yaml(tmp_path):
    cfg = config_load(
        None, overrides=["optim.lr=0.01", "data.speed_features=[speed, vcl]"]
    )
    assert cfg.optim.lr == 0.01
    assert cfg.data.speed_features == ["speed", "vcl"]
    with pytest.raises(ConfigError, match="section.key=value"):
        config_load(None, overrides=["optim.lr"])


def test_dumped_config_loads_back_identically(tmp_path):
    cfg = config_from_dict({"model": {"name": "x3d", "kwargs": {"depth": 2}}})
    path = config_dump(cfg, tmp_path / "config.yaml")
    assert config_load(path) == cfg


def test_missing_and_malformed_files_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config_load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        config_load(bad)
