import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mdrchca.config import Config
from mdrchca.data import load_dataset
from mdrchca.training import Trainer
from mdrchca.training.trainer import adam_kernel


def _config(*extra: str) -> Config:
    cfg = Config.load(
        "lightgcn", overrides=["epochs=4", "batch_size=256", "learning_rate=0.01", "eval_batch_size=100", *extra]
    )
    cfg.train.device = "cpu"
    return cfg


def test_same_seed_same_metrics(small_catalogue: Path) -> None:
    data = load_dataset(small_catalogue)
    a = Trainer(_config(), data, progress=False).fit()
    b = Trainer(_config(), data, progress=False).fit()
    c = Trainer(_config("seed=5"), data, progress=False).fit()
    assert a.test == b.test and a.valid == b.valid
    assert [r["loss"] for r in a.history] == [r["loss"] for r in b.history]
    assert a.history[-1]["loss"] != c.history[-1]["loss"]


def test_run_dir_outputs_and_selection_on_validation(small_catalogue: Path, tmp_path: Path) -> None:
    data = load_dataset(small_catalogue)
    result = Trainer(_config("epochs=6"), data, tmp_path, progress=False).fit()
    for name in ("log.csv", "best.pt", "last.pt", "metrics.json"):
        assert (tmp_path / name).is_file()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) >= {"model", "dataset", "best_epoch", "epochs", "seconds", "valid", "test"}
    assert "recall@20" in metrics["test"] and "ndcg@20" in metrics["valid"]
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert len(rows) == 6
    valid = [float(r["valid_recall@20"]) for r in rows]
    assert metrics["best_epoch"] == int(np.argmax(valid)) + 1  # first maximum: strict improvement
    assert metrics["valid"]["recall@20"] == pytest.approx(max(valid))
    assert not any(k.startswith("test") for k in rows[0])  # test never looked at during training
    best = torch.load(tmp_path / "best.pt", weights_only=False)
    assert best["epoch"] == metrics["best_epoch"]
    assert set(best) >= {"model", "optimizer", "rng", "config", "sampler"}
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary file
    assert result.best_epoch == metrics["best_epoch"]


def test_resume_gives_the_same_result_as_an_uninterrupted_run(small_catalogue: Path, tmp_path: Path) -> None:
    data = load_dataset(small_catalogue)
    full = Trainer(_config("epochs=4"), data, tmp_path / "full", progress=False).fit()
    Trainer(_config("epochs=2"), data, tmp_path / "cut", progress=False).fit()
    resumed = Trainer(_config("epochs=4"), data, tmp_path / "cut", progress=False)
    resumed.resume()
    assert resumed.epoch == 2
    result = resumed.fit()
    assert [r["loss"] for r in result.history] == [r["loss"] for r in full.history]
    assert result.test == full.test


def test_early_stopping_after_patience(small_catalogue: Path) -> None:
    data = load_dataset(small_catalogue)
    # a learning rate of 1e-12 moves no float32 weight: nothing improves after the first evaluation
    result = Trainer(_config("epochs=50", "patience=3", "learning_rate=1e-12"), data, progress=False).fit()
    assert result.best_epoch == 1
    assert result.epochs == 4


def test_unknown_valid_metric(small_catalogue: Path) -> None:
    from mdrchca.errors import MdrchcaError

    with pytest.raises(MdrchcaError, match="'valid_metric' 'recall@30' is not computed"):
        Trainer(_config("valid_metric=recall@30"), load_dataset(small_catalogue))


def test_time_budget_stops_and_still_tests_the_best_epoch(small_catalogue: Path, tmp_path: Path) -> None:
    data = load_dataset(small_catalogue)
    result = Trainer(_config("epochs=50", "max_seconds=1e-9"), data, tmp_path, progress=False).fit()
    assert result.epochs == 1 and result.best_epoch == 1
    assert json.loads((tmp_path / "metrics.json").read_text())["test"]["recall@20"] == result.test["recall@20"]


def test_learning_rate_schedule_follows_mmrec_decay(small_catalogue) -> None:
    from mdrchca.config import Config
    from mdrchca.data import load_dataset
    from mdrchca.training import Trainer

    cfg = Config.load("lightgcn", overrides=["learning_rate=0.01", "lr_decay=0.5", "lr_decay_epochs=2", "epochs=3"])
    cfg.train.device = "cpu"
    trainer = Trainer(cfg, load_dataset(small_catalogue, cfg.data), progress=False)
    assert [trainer.learning_rate(e) for e in (1, 3, 5)] == [0.01, 0.005, 0.0025]
    trainer.fit()
    assert abs(trainer.optimizer.param_groups[0]["lr"] - 0.01 * 0.5**1) < 1e-12  # epoch 3


def test_deterministic_option_turns_on_torch_deterministic_kernels(small_catalogue: Path) -> None:
    data = load_dataset(small_catalogue)
    before = torch.are_deterministic_algorithms_enabled()
    try:
        plain = Trainer(_config(), data, progress=False).fit()
        assert not torch.are_deterministic_algorithms_enabled()
        strict = Trainer(_config("deterministic=true"), data, progress=False).fit()
        assert torch.are_deterministic_algorithms_enabled()
        # on the CPU LightGCN is already deterministic: the option must not change what it computes
        assert [r["loss"] for r in strict.history] == [r["loss"] for r in plain.history]
        assert strict.test == plain.test
        Trainer(_config(), data, progress=False)  # the next run without the option turns it off again
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before)


def test_cold_item_split_never_trains_the_held_out_items(small_catalogue: Path) -> None:
    cfg = _config("epochs=2", "split_mode=cold_items")
    data = load_dataset(small_catalogue, cfg.data)
    trainer = Trainer(cfg, data, progress=False)
    held_out = np.r_[data.valid[:, 1], data.test[:, 1]]
    before = trainer.model.item_embedding.detach()[held_out].clone()
    trained = trainer.model.item_embedding.detach()[data.train[:, 1]].clone()
    trainer.fit()
    # never a positive and never a sampled negative: Adam leaves their ID embeddings exactly as initialised
    assert torch.equal(trainer.model.item_embedding.detach()[held_out], before)
    assert not torch.equal(trainer.model.item_embedding.detach()[data.train[:, 1]], trained)


def test_adam_kernel_is_fused_where_torch_has_it_and_asked_for_by_name() -> None:
    assert adam_kernel("fused", torch.device("cpu")) == {"fused": True}
    assert adam_kernel("fused", torch.device("cuda")) == {"fused": True}
    assert adam_kernel("fused", torch.device("mps")) == {"foreach": True}
    assert adam_kernel("foreach", torch.device("cpu")) == {"foreach": True}
    assert adam_kernel("loop", torch.device("cpu")) == {"foreach": False}


def test_each_optimizer_kernel_trains_the_same_model_up_to_rounding(small_catalogue: Path) -> None:
    """``optimizer_kernel`` changes how Adam's update is computed, not what it is: two epochs of each kernel end at
    the same parameters up to rounding, and the trainer's optimizer is the fused one by default."""
    states, data = {}, load_dataset(small_catalogue)
    for kernel in ("fused", "foreach", "loop"):
        trainer = Trainer(_config("epochs=2", f"optimizer_kernel={kernel}"), data, progress=False)
        assert trainer.optimizer.param_groups[0]["fused"] is (True if kernel == "fused" else None)
        trainer.fit()
        states[kernel] = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for kernel in ("foreach", "loop"):
        for name, value in states["fused"].items():
            torch.testing.assert_close(states[kernel][name], value, rtol=1e-4, atol=1e-5, msg=name)
