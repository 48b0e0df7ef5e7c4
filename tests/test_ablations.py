"""Chapter 11's ablation harness: each arm changes only what it says, every arm gets the same
pre-training tokens, the verdict on hand-made scores, and a real run of two arms at "tiny"."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from bertlab import ablations
from bertlab.ablations import ARMS, BASELINE, AblationBudget, arm_config


def _changed(arm: str) -> dict:
    base, config = asdict(arm_config(BASELINE)), asdict(arm_config(arm))
    return {k: v for k, v in config.items() if base[k] != v}


def test_each_arm_changes_only_its_switches():
    assert _changed(BASELINE) == {}
    assert _changed("No NSP") == {"nsp": False}
    assert _changed("LTR & No NSP") == {"objective": "ltr", "nsp": False}
    assert _changed("mask 40%") == {"mask_prob": 0.4}
    assert _changed("dynamic masking") == {"masking": "dynamic"}
    assert _changed("full-length, no NSP") == {"packing": "full", "nsp": False}
    assert _changed("ALBERT: E = H/4, shared") == {"embedding_size": 32, "share_layers": True}
    assert set(_changed("4x batch")) == {"batch_size", "accumulate", "steps", "lr"}


@pytest.mark.parametrize("arm", sorted(ARMS))
def test_every_arm_sees_the_same_tokens(arm):
    base, config = arm_config(BASELINE), arm_config(arm)
    if arm == ablations.NO_PRETRAINING:
        assert config.steps == 0
        return
    tokens = config.steps * config.batch_size * config.max_len
    assert tokens == base.steps * base.batch_size * base.max_len == 262_144
    assert (config.layers, config.hidden) == (2, 128)  # BERT-Tiny's shape


def test_every_study_starts_from_the_baseline_and_names_real_arms():
    for arms in ablations.STUDIES.values():
        assert arms[0] == BASELINE and set(arms) <= set(ARMS)
    assert set(ablations.PAPER_TABLE_5) == {BASELINE, "No NSP", "LTR & No NSP"}


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="unknown arm 'no mlm'.*'No NSP'"):
        arm_config("no mlm")
    with pytest.raises(ValueError, match="unknown study 'xlnet'.*roberta"):
        ablations.run_study("xlnet")
    with pytest.raises(ValueError, match="unknown preset 'big'.*'cpu'"):
        AblationBudget.preset("big")
    with pytest.raises(ValueError, match="one train_examples .* per task"):
        AblationBudget(tasks=("sst2",), train_examples=(10, 20))
    with pytest.raises(ValueError, match="at least two seeds"):
        AblationBudget(seeds=(0,))


def test_verdict_on_hand_made_scores():
    # 872 SST-2 sentences: the sampling noise of a difference near 0.7 is 2*sqrt(2*.21/872) = 0.044
    assert ablations.verdict([0.70, 0.70], [0.80, 0.80], 872) == "helps"
    assert ablations.verdict([0.70, 0.70], [0.60, 0.60], 872) == "hurts"
    assert ablations.verdict([0.70, 0.70], [0.73, 0.73], 872) == "within noise"
    # a 6-point gain is past the sampling noise but not past a 10-point spread over seeds
    assert ablations.verdict([0.70, 0.70], [0.71, 0.81], 872) == "within noise"
    assert ablations.verdict([0.70, 0.70], [0.75, 0.77], 872) == "helps"
    # 50,000 examples: even 2 points is past the sampling noise (0.008)
    assert ablations.verdict([0.70, 0.70], [0.72, 0.72], 50_000) == "helps"


def _result(arm, sst2):
    return ablations.ArmResult(arm, arm_config(arm), 10, {"seconds": 1.0, "mlm_accuracy": 0.1},
                               {"sst2": sst2}, {}, {"sst2": 872}, 1.0)  # fmt: skip


def test_table_rows_means_spreads_and_verdicts():
    rows = ablations.table([_result(BASELINE, [0.6, 0.7]), _result("No NSP", [0.9, 0.9])])
    assert rows[0]["sst2"] == 0.65 and rows[0]["sst2_spread"] == 0.05
    assert "sst2_verdict" not in rows[0]
    assert rows[1]["sst2_verdict"] == "helps"
    with pytest.raises(ValueError, match="baseline 'MLM \\+ NSP' is not among"):
        ablations.table([_result("No NSP", [0.9, 0.9])])


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, data_mirror):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BERTLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        arms = (BASELINE, "LTR & No NSP", "ALBERT: E = H/4, shared")
        first = [ablations.run_arm(a, "tiny") for a in arms]
        again = ablations.run_arm(BASELINE, "tiny")  # from the cache
        yield first, again


def test_a_tiny_run_fine_tunes_every_task_and_seed(tiny_runs):
    (base, ltr, albert), again = tiny_runs
    budget = AblationBudget.preset("tiny")
    for r in (base, ltr, albert):
        assert set(r.scores) == set(budget.tasks)
        assert all(len(s) == len(budget.seeds) and all(0 <= x <= 1 for x in s)
                   for s in r.scores.values())  # fmt: skip
        assert r.test_examples == {t: 16 for t in budget.tasks}
        assert r.pretrain["tokens_seen"] == budget.steps * budget.batch_size * budget.max_len
    assert "nsp_accuracy" in base.pretrain and "nsp_accuracy" not in ltr.pretrain
    assert again.scores == base.scores and again.pretrain == base.pretrain
    assert albert.parameters < base.parameters
    rows = ablations.table([base, ltr])
    assert [r["arm"] for r in rows] == [BASELINE, "LTR & No NSP"]
    assert rows[1]["sst2_verdict"] in ("helps", "hurts", "within noise")


def test_an_albert_arm_is_saved_and_read_back(tiny_runs, tmp_path):
    from bertlab import pretraining

    config = arm_config("ALBERT: E = H/4, shared", "tiny")
    bert = pretraining.pretrain(config, tmp_path, progress=False)  # no Hugging Face BERT folder
    again = pretraining.load_pretrained_folder(tmp_path)
    assert again.model.config.share_layers and again.model.config.embedding_size == 8
    for (name, a), b in zip(bert.model.state_dict().items(), again.model.state_dict().values()):
        assert a.equal(b), name
