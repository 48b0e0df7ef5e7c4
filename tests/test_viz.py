"""bertlab.viz's attention views: the conversion for bertviz, the heatmap grid, the counter.

A tiny random BERT and a toy WordPiece vocabulary keep these fast; one test checks the same
conversion against a ``transformers`` model carrying the same weights.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from bertlab import viz  # noqa: E402
from bertlab.bert import BertConfig, BertModel  # noqa: E402
from bertlab.params import count, notes_estimate  # noqa: E402
from bertlab.wordpiece import WordPieceTokenizer  # noqa: E402

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "cat", "sat", "on", "mat", "it", "was", "warm", "##s", ".", "dog"]


@pytest.fixture(scope="module")
def tokenizer():
    return WordPieceTokenizer(SPECIALS + WORDS)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(SPECIALS + WORDS),
        hidden=32,
        layers=3,
        heads=4,
        intermediate=64,
        max_position=32,
    )
    return BertModel(config).eval()


@pytest.fixture(scope="module")
def pair(model, tokenizer):
    return viz.attention_data(model, tokenizer, "The cat sat on the mat.", "It was warm.")


def test_attention_data_has_bertviz_format(pair):
    tokens = ["[CLS]", "the", "cat", "sat", "on", "the", "mat", ".", "[SEP]"]
    tokens += ["it", "was", "warm", ".", "[SEP]"]
    assert pair.tokens == tokens
    assert pair.sentence_b_start == 9  # the first token after the first [SEP]
    assert isinstance(pair.attention, tuple) and len(pair.attention) == 3
    for a in pair.attention:
        assert a.shape == (1, 4, len(tokens), len(tokens))
        assert a.dtype == torch.float32
        torch.testing.assert_close(a.sum(-1), torch.ones(1, 4, len(tokens)))
    assert pair.stacked().shape == (3, 4, 14, 14)


def test_single_sentence_has_no_sentence_b(model, tokenizer):
    d = viz.attention_data(model, tokenizer, "the cats sat")
    assert d.tokens == ["[CLS]", "the", "cat", "##s", "sat", "[SEP]"]
    assert d.sentence_b_start is None


def test_attention_data_restores_training_mode(model, tokenizer):
    model.train()
    try:
        a = viz.attention_data(model, tokenizer, "the cat", "the dog")
        b = viz.attention_data(model, tokenizer, "the cat", "the dog")
        assert model.training  # put back as it was
        for x, y in zip(a.attention, b.attention):  # computed without dropout: identical
            torch.testing.assert_close(x, y, rtol=0, atol=0)
    finally:
        model.eval()


def test_attention_data_matches_a_transformers_model(model, tokenizer, tmp_path):
    transformers = pytest.importorskip("transformers")
    from bertlab.hf import save_pretrained

    save_pretrained(model, tmp_path)
    theirs = transformers.BertModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    ours = viz.attention_data(model, tokenizer, "the cat sat", "it was warm")
    ref = viz.attention_data(theirs, tokenizer, "the cat sat", "it was warm")
    assert ours.tokens == ref.tokens and ours.sentence_b_start == ref.sentence_b_start
    for x, y in zip(ours.attention, ref.attention):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)


def params_json(html: str) -> dict:
    start = html.index("const params = ") + len("const params = ")
    return json.loads(html[start : html.index("; //", start)])


@pytest.mark.parametrize("kind", ["head", "model"])
def test_bertviz_html_is_deterministic_with_a_stable_id(pair, kind):
    pytest.importorskip("bertviz")
    first = viz.bertviz_html(pair, kind=kind).data
    second = viz.bertviz_html(pair, kind=kind).data
    assert first == second  # bertviz alone puts a random uuid in every output
    ids = set(re.findall(r"bertviz-[\w-]+", first))
    assert len(ids) == 1 and ids.pop().startswith(f"bertviz-{kind}-")
    params = params_json(first)
    assert params["root_div_id"].startswith(f"bertviz-{kind}-")
    views = {v["name"]: v for v in params["attention"]}
    assert views["All"]["left_text"] == pair.tokens
    assert views["Sentence A -> Sentence A"]["left_text"] == pair.tokens[:9]
    assert views["Sentence B -> Sentence B"]["right_text"] == pair.tokens[9:]
    assert len(views["All"]["attn"]) == 3 and len(views["All"]["attn"][0]) == 4
    assert first.count('"left_text"') == len(views)  # the parameters are written once
    other = viz.bertviz_html(pair.attention, pair.tokens, sentence_b_start=None, kind=kind).data
    assert set(re.findall(r"bertviz-[\w-]+", other)) != {params["root_div_id"]}


def test_attention_view_runs_the_model(model, tokenizer, pair):
    pytest.importorskip("bertviz")
    html = viz.attention_view(model, tokenizer, "The cat sat on the mat.", "It was warm.").data
    assert html == viz.bertviz_html(pair).data


def test_bad_attention_input_says_what_is_wrong(pair):
    with pytest.raises(ValueError, match="covers 14 positions but 13 tokens"):
        viz.AttentionData(pair.attention, pair.tokens[:-1])
    with pytest.raises(ValueError, match="covers 14 positions but 13 tokens"):
        viz.attention_grid(pair.attention, pair.tokens[:-1])
    with pytest.raises(ValueError, match="covers 14 positions but 13 tokens"):
        viz.bertviz_html(pair.attention, pair.tokens[:-1])
    with pytest.raises(ValueError, match="sentence_b_start=14"):
        viz.AttentionData(pair.attention, pair.tokens, sentence_b_start=14)
    with pytest.raises(ValueError, match="kind must be 'head' or 'model'"):
        viz.bertviz_html(pair, kind="neuron")
    with pytest.raises(ValueError, match="output_attentions=True"):
        viz.AttentionData((), [])
    batch = torch.rand(2, 4, 14, 14)  # a batch of two, not one sequence
    with pytest.raises(ValueError, match=r"select one example"):
        viz.AttentionData([batch], pair.tokens)
    with pytest.raises(ValueError, match=r"layer 1 has attention of shape"):
        viz.AttentionData([pair.attention[0], pair.attention[1][:, :2]], pair.tokens)


def test_attention_grid_draws_layers_by_heads(pair):
    fig = viz.attention_grid(pair.attention, pair.tokens, layers=[0, 2], heads=[1, 2, 3])
    assert len(fig.axes) == 2 * 3
    assert [ax.get_title() for ax in fig.axes[:3]] == [f"layer 0, head {h}" for h in (1, 2, 3)]
    assert fig.get_suptitle()
    labels = [t.get_text() for t in fig.axes[3].get_xticklabels()]  # bottom row: key tokens
    assert labels == pair.tokens
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == pair.tokens
    full = viz.attention_grid(pair.stacked(), pair.tokens, title="all heads")
    assert len(full.axes) == 3 * 4 and full.get_suptitle() == "all heads"
    matplotlib.pyplot.close("all")


def test_attention_grid_pairs_and_errors(pair):
    fig = viz.attention_grid(
        pair, pair.tokens, pairs=[(0, 1), (2, 3), (1, 0)], ncols=2, labels=["a", "b", "c"]
    )
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(visible) == 3 and visible[1].get_title() == "layer 2, head 3\nb"
    with pytest.raises(ValueError, match=r"\(layer 3, head 0\) does not exist"):
        viz.attention_grid(pair, pair.tokens, pairs=[(3, 0)])
    with pytest.raises(ValueError, match="not both"):
        viz.attention_grid(pair, pair.tokens, pairs=[(0, 0)], heads=[0])
    with pytest.raises(ValueError, match="one per panel"):
        viz.attention_grid(pair, pair.tokens, pairs=[(0, 0)], labels=["a", "b"])
    matplotlib.pyplot.close("all")


def test_param_counter_starts_at_the_exact_count():
    html = viz.param_counter().data
    base = BertConfig.named("base")
    assert f"<b>{count(base)['total']:,}</b>" in html and "109,482,240" in html
    assert f"<b>{notes_estimate(base):,}</b>" in html
    assert html.count("<script>") == 1 and 'type="range"' in html
    assert viz.param_counter().data == html  # a stable element id


def test_param_counter_inlines_its_javascript_file():
    js = Path(viz.params.__file__).with_name("params.js").read_text(encoding="utf-8")
    html = viz.param_counter(layers=6, hidden=384, heads=12).data
    assert js in html and "function bertlabCount(V, H, L, A)" in js
    uid = re.search(r'<div id="(bertlab-params-[0-9a-f]+)"', html).group(1)
    assert f'bertlabCounter(document.getElementById("{uid}"));' in html


COUNTER_JS = Path(viz.params.__file__).with_name("params.js")


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the JavaScript")
def test_param_counter_javascript_matches_params_count():
    configs = [(30522, 768, 12, 12), (30522, 1024, 24, 16), (30000, 128, 2, 2), (8000, 384, 6, 3)]
    call = f"console.log(JSON.stringify({json.dumps(configs)}.map(c => bertlabCount(...c))));"
    out = subprocess.run(
        ["node", "-e", COUNTER_JS.read_text(encoding="utf-8") + call],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    for (V, H, L, A), js in zip(configs, json.loads(out)):
        cfg = BertConfig(vocab_size=V, hidden=H, layers=L, heads=A, intermediate=4 * H)
        assert js["total"] == count(cfg)["total"]
        assert js["seed"] == notes_estimate(cfg)
        assert js["headSize"] == H // A
    heads_free = json.loads(
        subprocess.run(
            [
                "node",
                "-e",
                COUNTER_JS.read_text(encoding="utf-8")
                + "console.log(JSON.stringify([1, 5, 12, 768]"
                ".map(A => bertlabCount(30522, 768, 12, A))));",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    )
    assert len({r["total"] for r in heads_free}) == 1  # A changes nothing in the count
    assert [r["headSize"] for r in heads_free] == [768, None, 64, 1]


# ---- tokens and model inputs (chapter 8) ------------------------------------------------------


def test_tokens_html_groups_pieces_of_a_word_and_escapes():
    html = viz.tokens_html(["[CLS]", "cat", "##s", "<b>", "[UNK]", "[SEP]"], [2, 6, 13, 1, 1, 3])
    assert html.count("display:inline-flex") == 5  # [CLS], cat+##s, <b>, [UNK], [SEP]
    assert "&lt;b&gt;" in html and "<b>" not in html
    assert "#f4cccc" in html  # [UNK] in red
    assert ">13<" in html  # the ids are shown


def test_tokens_html_needs_one_id_per_token():
    with pytest.raises(ValueError, match="one id per token"):
        viz.tokens_html(["a", "b"], [1])


def test_html_selector_links_the_control_in_the_browser():
    box = viz.html_selector([("one", "<p>1</p>"), ("two", "<p>2</p>")], widget="slider")
    header, stack = box.children
    control = header.children[1]
    assert [w.value for w in stack.children] == ["<p>1</p>", "<p>2</p>"]
    assert control.description == ""  # labels are HTML widgets: no MathJax 2 typesetting
    with pytest.raises(ValueError, match="slider' or 'dropdown"):
        viz.html_selector([("one", "x")], widget="wheel")


def test_tokenizer_explorer_prerenders_every_text_and_vocabulary(tokenizer):
    texts = ["The cat sat.", "Dogs sat."]
    box = viz.tokenizer_explorer({"toy": tokenizer, "same": tokenizer}, texts)
    outer = box.children[2]
    assert len(outer.children) == 2 and all(len(s.children) == 2 for s in outer.children)
    assert "##s" in outer.children[0].children[1].value  # "dogs" -> dog ##s
    assert "[UNK]" not in outer.children[0].children[0].value


def test_live_tokenizer_updates_when_the_text_changes(tokenizer):
    box = viz.live_tokenizer({"toy": tokenizer}, value="the cat")
    text, out = box.children[1].children[1], box.children[3]
    text.value = "the dogs"
    assert "##s" in out.value


def test_draw_input_representation_checks_lengths():
    fig = viz.draw_input_representation(
        ["[CLS]", "a", "[SEP]", "[PAD]"], [0, 0, 0, 0], [1, 1, 1, 0]
    )
    assert fig.axes[0].get_title().startswith("BERT's input")
    with pytest.raises(ValueError, match="same length"):
        viz.draw_input_representation(["[CLS]", "a"], [0])


def test_model_view_width_fits_a_book_page(pair):
    pytest.importorskip("bertviz")
    html = viz.bertviz_html(pair, kind="model", width=660).data
    assert "const DIV_WIDTH = 660;" in html and "const DIV_WIDTH = 970;" not in html
    with pytest.raises(ValueError, match="only the model view takes a width"):
        viz.bertviz_html(pair, kind="head", width=660)


# ---- what the heads do, measured (chapter 7) ----------------------------------------------------

CLS, SEP, A_, B_ = 1, 2, 7, 8


@pytest.fixture()
def toy_batch():
    """Two sequences, [CLS] a b a [SEP] and [CLS] b [SEP] [PAD] [PAD], and four heads of one
    layer: previous token, [CLS], uniform over the real tokens, the same word elsewhere."""
    ids = torch.tensor([[CLS, A_, B_, A_, SEP], [CLS, B_, SEP, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    att = torch.zeros(2, 1, 4, 5, 5)  # (N, L, A, T, T)
    for n in range(2):
        real = int(mask[n].sum())
        for i in range(5):
            att[n, 0, 0, i, max(i - 1, 0)] = 1.0
            att[n, 0, 1, i, 0] = 1.0
            att[n, 0, 2, i, :real] = 1.0 / real
            others = [j for j in range(real) if j != i and ids[n, j] == ids[n, i]]
            att[n, 0, 3, i, others[0] if others else i] = 1.0
    return att, ids, mask


def test_head_habits_scores_hand_made_heads(toy_batch):
    att, ids, mask = toy_batch
    scores, uniform = viz.head_habits(att.unbind(1), ids, mask, CLS, SEP)
    assert list(scores) == [
        "[CLS]", "[SEP]", "previous token", "next token", "itself", "same word elsewhere"
    ]  # fmt: skip
    assert all(s.shape == (1, 4) for s in scores.values())
    # the queries: a, b, a in the first sequence and b in the second (never [CLS], [SEP], [PAD])
    cls_share = (3 * (1 / 5) + 1 * (1 / 3)) / 4
    assert uniform["[CLS]"] == pytest.approx(cls_share)
    assert uniform["previous token"] == pytest.approx(cls_share)
    assert uniform["same word elsewhere"] == pytest.approx(1 / 5)  # only the two a's count
    # two of the four queries stand right after [CLS]: there the two habits coincide
    torch.testing.assert_close(scores["previous token"][0], torch.tensor([1.0, 0.5, cls_share, 0]))
    torch.testing.assert_close(scores["[CLS]"][0], torch.tensor([0.5, 1.0, cls_share, 0]))
    assert scores["[SEP]"][0, 2] == pytest.approx(uniform["[SEP]"])  # the uniform head
    assert scores["same word elsewhere"][0].tolist() == [0.0, 0.0, pytest.approx(0.2), 1.0]
    assert scores["itself"][0, 3] == pytest.approx(2 / 4)  # the two b's have no other b
    stacked, _ = viz.head_habits(att, ids, mask, CLS, SEP)  # one (N, L, A, T, T) tensor
    torch.testing.assert_close(stacked["[CLS]"], scores["[CLS]"])
    top = viz.top_heads(scores, k=2)
    assert top["previous token"] == [(0, 0), (0, 1)] and top["[CLS]"][0] == (0, 1)


def test_layer_similarity_on_hand_made_hidden_states(toy_batch):
    _, ids, mask = toy_batch
    by_position = torch.eye(5).expand(2, 5, 5)  # (N, T, H): every position its own direction
    by_word = torch.nn.functional.one_hot(ids, 10).float()  # the same vector for the same word
    same = viz.position_similarity(by_position, by_position, ids, mask)
    assert same == {
        "same position": 1.0,
        "same word, other position": 0.0,
        "other words": 0.0,
        "most similar is itself": 1.0,
    }
    words = viz.position_similarity(by_word, by_word, ids, mask)
    assert words["same word, other position"] == pytest.approx(1.0)
    assert words["other words"] == pytest.approx(0.0)
    # the second "a" finds the first one first (a tie): 7 of the 8 real positions find themselves
    assert words["most similar is itself"] == pytest.approx(7 / 8)
    shifted = by_position.roll(1, dims=1)  # upper position i holds lower position i - 1
    cross = viz.cross_cosine(by_position, shifted)  # (N, T, T): upper i vs lower j
    assert cross.shape == (2, 5, 5) and cross[0].argmax(-1).tolist() == [4, 0, 1, 2, 3]
    table = viz.layer_similarity((by_position, by_position, by_position), ids, mask)
    assert list(table) == ["layer 0 -> 1", "layer 1 -> 2", "embeddings -> layer 2"]
    assert table["embeddings -> layer 2"] == same


# ---- position tables (chapter 8) ----------------------------------------------------------------


def test_position_table_measures_on_tables_with_known_answers():
    torch.manual_seed(0)
    table = torch.randn(50, 8, dtype=torch.float64)
    rotation, _ = torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64))
    assert viz.best_fit_r2(table, 3.0 * table @ rotation + 1.0) == pytest.approx(1.0)
    noise = torch.randn(50, 8, dtype=torch.float64)
    assert viz.best_fit_r2(noise, table) < 0.4  # a random table explains little
    assert viz.table_correlation(table, 2 * table + 5) == pytest.approx(1.0)
    assert viz.table_correlation(table, -table) == pytest.approx(-1.0)
    rank_two = torch.randn(50, 2, dtype=torch.float64) @ torch.randn(2, 8, dtype=torch.float64)
    assert viz.components_for(rank_two, share=0.999) <= 2 and viz.components_for(table) > 2
    cos = viz.cosine_matrix(table)
    assert cos.shape == (50, 50)
    torch.testing.assert_close(cos.diagonal(), torch.ones(50, dtype=torch.float64))
