"""The experiment plans: which runs each command makes, with which settings."""

from __future__ import annotations

from pathlib import Path

import pytest

import mdrchca.models  # noqa: F401  (registers the models)
from mdrchca.errors import ConfigError
from mdrchca.experiments import plans
from mdrchca.experiments.grid import RunSpec, check_specs


def test_seeds_are_a_count_from_the_default_or_a_list() -> None:
    assert plans.parse_seeds("3") == [999, 1000, 1001]
    assert plans.parse_seeds("1,2,5") == [1, 2, 5]
    for bad in ("x", "0", "1,1"):
        with pytest.raises(ConfigError, match="--seeds"):
            plans.parse_seeds(bad)


def test_a_sweep_moves_one_parameter_at_a_time() -> None:
    specs = plans.sweep_plan("mdrchca", [None], [("k_r", ["5", "10"]), ("tau", ["0.1"])], [1, 2], ["epochs=3"])
    assert len(specs) == 6
    for spec in specs:
        labels = dict(spec.labels)
        assert spec.overrides == ("epochs=3", f"{labels['param']}={labels['value']}")
    with pytest.raises(ConfigError, match="--set k_r"):
        plans.sweep_plan("mdrchca", [None], [("k_r", ["5"])], [1], ["k_r=3"])


def test_the_ablation_is_the_model_and_its_registered_variants() -> None:
    specs = plans.ablation_plan("mdrchca", [None], [1])
    assert [dict(s.labels)["variant"] for s in specs] == ["MDR-CHCA", "A: dense alignment", "B: no confidence screen"]
    configs = [s.config() for s in specs]
    assert [c.model_params.alignment for c in configs] == ["hierarchical", "full", "hierarchical"]
    assert [c.model_params.contrastive for c in configs] == ["confidence", "confidence", "standard"]
    with pytest.raises(ConfigError, match="no ablation"):
        plans.ablation_plan("lightgcn", [None], [1])


def test_robustness_shares_the_clean_run_across_noise_kinds() -> None:
    swap = plans.robustness_plan([None], ["lightgcn"], "swap", [0, 0.2], [1])
    drop = plans.robustness_plan([None], ["lightgcn"], "drop", [0, 0.2], [1])
    assert swap[0].key == drop[0].key and swap[1].key != drop[1].key
    config = swap[1].config()
    assert (config.data.feature_noise, config.data.noise_level, config.data.noise_modality) == ("swap", 0.2, "image")
    with pytest.raises(ConfigError, match="--levels"):
        plans.robustness_plan([None], ["lightgcn"], "swap", [1.5], [1])


def test_run_keys_are_stable_file_names_and_a_wrong_option_fails_before_any_run() -> None:
    spec = RunSpec("lightgcn", "/data/ml100k", 3, ("learning_rate=0.01", "epochs=5"))
    assert spec.key == "ml100k/lightgcn/epochs=5,learning_rate=0.01/seed-3"
    assert RunSpec("lightgcn", "/d/lfm2k.inter", 1).data_name == "d"
    long = RunSpec("lightgcn", None, 1, tuple(f"reg_weight={i}e-5" for i in range(1, 9)))
    assert long.variant.startswith("cfg-") and "/" not in long.variant
    with pytest.raises(ConfigError, match="learning_rat"):
        check_specs([RunSpec("lightgcn", None, 1, ("learning_rat=0.1",))])


def test_a_setting_can_name_the_model_it_is_for() -> None:
    specs = plans.compare_plan([None], ["lightgcn", "mdrchca"], [1], ["epochs=3", "mdrchca:content_grad_items=64"])
    assert [s.overrides for s in specs] == [("epochs=3",), ("epochs=3", "content_grad_items=64")]
    check_specs(specs)  # LightGCN never sees MDR-CHCA's option
    with pytest.raises(ConfigError, match="vbpr is not one of the models"):
        plans.compare_plan([None], ["lightgcn"], [1], ["vbpr:reg_weight=1"])


def test_a_tuned_file_carries_only_the_model_s_searched_settings(tmp_path: Path) -> None:
    from mdrchca.experiments.tune import best_file

    path = best_file(tmp_path, "tiny", "lightgcn")
    path.write_text("params:\n  learning_rate: 0.005\n  reg_weight: 0.001\n", encoding="utf-8")
    assert plans.tuned_overrides(tmp_path, "data/tiny", "lightgcn") == ("learning_rate=0.005", "reg_weight=0.001")
    path.write_text("params:\n  learning_rate: 0.005\n  split_file: /elsewhere/split.inter\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="sets split_file, outside lightgcn's search space"):
        plans.tuned_overrides(tmp_path, "data/tiny", "lightgcn")
    path.write_bytes(b"params:\n  learning_rate: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not a tuned-settings file"):
        plans.tuned_overrides(tmp_path, "data/tiny", "lightgcn")
    path.write_text("params: !!python/object/apply:os.system ['true']\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a tuned-settings file"):
        plans.tuned_overrides(tmp_path, "data/tiny", "lightgcn")


@pytest.mark.parametrize(
    ("text", "message"),
    [("-1,-2", "seed -1 is outside"), ("1000000", "1000000 runs of every setting"), ("4294967296,1", "outside")],
)
def test_seeds_are_checked_before_any_run(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plans.parse_seeds(text)
