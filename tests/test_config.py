from pathlib import Path

import pytest

from mdrchca import Config  # the package export registers the models; mdrchca.config alone knows none
from mdrchca.errors import ConfigError


def test_defaults_follow_the_paper() -> None:
    cfg = Config.for_model("lightgcn")
    assert cfg.model_params.embedding_size == 64
    assert cfg.train.batch_size == 2048
    assert cfg.train.learning_rate == pytest.approx(1e-3)
    assert cfg.train.valid_metric == "recall@20"
    assert cfg.train.patience == 20
    assert cfg.model_params.n_layers == 2


def test_overrides_are_typed() -> None:
    cfg = Config.load(
        "lightgcn",
        overrides=[
            "epochs=2",
            "learning_rate=1e-2",
            "topk=[5,10]",
            "valid_metric=recall@10",
            "train.seed=3",
            "n_layers=3",
        ],
    )
    assert cfg.train.epochs == 2 and isinstance(cfg.train.epochs, int)
    assert cfg.train.learning_rate == pytest.approx(0.01) and isinstance(cfg.train.learning_rate, float)
    assert cfg.train.topk == [5, 10]
    assert cfg.train.seed == 3
    assert cfg.model_params.n_layers == 3


def test_unknown_key_names_the_nearest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        Config.load("lightgcn", overrides=["epoch=2"])
    with pytest.raises(ConfigError, match="n_layers"):
        Config.load("lightgcn", overrides=["n_layer=2"])


def test_wrong_type_is_an_error() -> None:
    with pytest.raises(ConfigError, match="'epochs' expects an integer"):
        Config.load("bpr", overrides=["epochs=abc"])


def test_unknown_model() -> None:
    with pytest.raises(ConfigError, match="did you mean 'lightgcn'"):
        Config.for_model("lightgnc")


def test_yaml_nested_and_flat_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model: bpr\ntrain:\n  epochs: 7\nreg_weight: 1e-3\nbatch_size: 512\n")
    cfg = Config.load(config_file=path, overrides=["epochs=9"])
    assert cfg.model == "bpr"
    assert cfg.train.epochs == 9
    assert cfg.model_params.reg_weight == pytest.approx(1e-3)
    assert cfg.train.batch_size == 512


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = Config.load("lightgcn", overrides=["epochs=4", "split_ratios=[0.7,0.15,0.15]"])
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    again = Config.load(config_file=path)
    assert again.to_dict() == cfg.to_dict()


def test_flat_keys_are_unique_across_sections() -> None:
    from mdrchca.models import MODEL_REGISTRY

    for name in MODEL_REGISTRY:
        keys = Config.for_model(name).valid_keys()
        assert len(keys) == len(set(keys)), name


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        Config.load(config_file=tmp_path / "nope.yaml")
