"""bertlab.data: fetch() finds, verifies and downloads; the readers give the documented counts.

The counts are the ones in shared/data/README.md.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
from collections import Counter
from pathlib import Path

import pytest

from bertlab import data
from bertlab.data import ChecksumError, DataUnavailableError, FileEntry


def test_manifest_is_the_shared_one(data_mirror):
    shipped = Path(data.MANIFEST_PATH).read_bytes()
    assert shipped == (data_mirror / "MANIFEST.tsv").read_bytes()
    assert data.names() == [
        "mrpc", "rte", "squad_v1.1", "sst2", "ud_english_ewt", "wikitext-2", "word_analogy",
        "word_similarity",
    ]  # fmt: skip


@pytest.mark.parametrize("name", data.names())
def test_fetch_every_dataset_is_verified(name, data_mirror, private_cache):
    folder = data.fetch(name)
    assert folder == data_mirror / name
    for entry in data.manifest()[name]:
        path = data_mirror / entry.file
        assert path.stat().st_size == entry.size
    # The second call trusts the record (size + mtime) instead of hashing again.
    assert (private_cache / "verified.json").is_file()
    assert data.fetch(name) == folder


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown dataset 'sst-2'.*'sst2'.*wikitext-2"):
        data.fetch("sst-2")
    with pytest.raises(ValueError, match="Known datasets: mrpc, rte"):
        data.fetch("nope")


@pytest.fixture
def fake_mirror(tmp_path, data_mirror, monkeypatch):
    """A writable copy of the small word_analogy dataset in a mirror of its own."""
    mirror = tmp_path / "mirror"
    (mirror / "word_analogy").mkdir(parents=True)
    shutil.copy(data_mirror / "word_analogy/questions-words.txt", mirror / "word_analogy")
    monkeypatch.setenv("BERTLAB_DATA", str(mirror))
    monkeypatch.setenv("BERTLAB_CACHE", str(tmp_path / "cache"))
    return mirror


def test_flipped_byte_raises_checksum_error(fake_mirror):
    path = fake_mirror / "word_analogy/questions-words.txt"
    assert data.fetch("word_analogy") == fake_mirror / "word_analogy"  # fine, and recorded
    raw = bytearray(path.read_bytes())
    raw[1000] ^= 0x01
    path.write_bytes(bytes(raw))
    expected = data.manifest()["word_analogy"][0].sha256
    actual = hashlib.sha256(raw).hexdigest()
    with pytest.raises(ChecksumError) as err:
        data.fetch("word_analogy")
    msg = str(err.value)
    assert str(path) in msg and expected in msg and actual in msg
    assert isinstance(err.value, ValueError)
    # never silently replaced
    assert path.read_bytes() == bytes(raw)


def test_corrupt_file_is_caught_even_when_mtime_is_kept(fake_mirror):
    """The record is keyed by size and mtime; a same-size rewrite changes mtime: re-hashed."""
    path = fake_mirror / "word_analogy/questions-words.txt"
    data.fetch("word_analogy")
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"Athens", b"Athenz", 1))
    with pytest.raises(ChecksumError):
        data.fetch("word_analogy")


@pytest.fixture
def http_mirror(data_mirror, monkeypatch):
    """Serve shared/data on a loopback port and point the manifest's URLs at it."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(data_mirror))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    original = data.manifest()

    def local_manifest():
        return {
            name: tuple(
                FileEntry(e.dataset, e.file, e.size, e.sha256, f"{base}/{e.file}") for e in files
            )
            for name, files in original.items()
        }

    monkeypatch.setattr(data, "manifest", local_manifest)
    monkeypatch.delenv("BERTLAB_DATA", raising=False)
    yield base
    server.shutdown()


def test_download_when_no_mirror(http_mirror, private_cache):
    folder = data.fetch("word_similarity", progress=False)
    assert folder == private_cache / "word_similarity"
    assert len(list(folder.glob("*.txt"))) == 13
    assert not list(folder.glob(".*.part"))  # no temp files left behind
    assert len(data.read_similarity("ws353")) == 353


def test_download_of_corrupt_bytes_is_rejected(http_mirror, private_cache, monkeypatch):
    good = data.manifest

    def wrong_hash():
        m = good()
        e = m["word_analogy"][0]
        m["word_analogy"] = (FileEntry(e.dataset, e.file, e.size, "0" * 64, e.raw_url),)
        return m

    monkeypatch.setattr(data, "manifest", wrong_hash)
    with pytest.raises(ChecksumError, match="download of word_analogy/questions-words.txt"):
        data.fetch("word_analogy", progress=False)
    assert not (private_cache / "word_analogy/questions-words.txt").exists()
    assert not list((private_cache / "word_analogy").glob(".*"))


def test_no_mirror_and_no_network_says_what_to_do(private_cache, monkeypatch):
    original = data.manifest()

    def unreachable():
        return {
            n: tuple(FileEntry(e.dataset, e.file, e.size, e.sha256, f"http://127.0.0.1:9/{e.file}")
                     for e in files)
            for n, files in original.items()
        }  # fmt: skip

    monkeypatch.setattr(data, "manifest", unreachable)
    monkeypatch.delenv("BERTLAB_DATA", raising=False)
    with pytest.raises(DataUnavailableError, match="set BERTLAB_DATA.*connect to the internet"):
        data.fetch("rte", progress=False)


def test_partial_mirror_is_completed_in_the_cache(http_mirror, tmp_path, data_mirror, monkeypatch):
    mirror = tmp_path / "partial"
    (mirror / "rte").mkdir(parents=True)
    shutil.copy(data_mirror / "rte/dev.tsv", mirror / "rte")
    monkeypatch.setenv("BERTLAB_DATA", str(mirror))
    monkeypatch.setenv("BERTLAB_CACHE", str(tmp_path / "cache"))
    folder = data.fetch("rte", progress=False)
    assert folder == tmp_path / "cache/rte"
    assert sorted(p.name for p in folder.glob("*.tsv")) == ["dev.tsv", "test.tsv", "train.tsv"]


# -- readers: the counts in shared/data/README.md -------------------------------------------------


def test_wikitext2_counts(data_mirror):
    for split, lines, tokens in [
        ("train", 36_718, 2_088_628), ("valid", 3_760, 217_646), ("test", 4_358, 245_569),
    ]:  # fmt: skip
        raw = data.wikitext2_lines(split, keep_empty=True)
        assert len(raw) == lines
        assert sum(len(line.split()) + 1 for line in raw) == tokens  # + one <eos> per line
    vocab = {t for line in data.wikitext2_lines("train") for t in line.split()} | {"<eos>"}
    assert len(vocab) == 33_278


def test_wikitext2_documents_and_sentences(data_mirror):
    docs = data.wikitext2_documents("train")
    assert len(docs) == 600  # WikiText-2 has 600 train articles, 60 valid, 60 test
    assert len(data.wikitext2_documents("valid")) == 60
    assert docs[0].title == "Valkyria Chronicles III"
    assert all(doc.paragraphs for doc in docs)
    assert not any(p.startswith("=") for doc in docs for p in doc.paragraphs)
    sentences = data.wikitext2_sentences("valid")
    ends = Counter(s[-1] for s in sentences)
    assert ends["."] > 0.9 * len(sentences)
    assert data.split_sentences("It cost 3 @.@ 5 dollars . Why ? OK".split()) == [
        ["It", "cost", "3", "@.@", "5", "dollars", "."], ["Why", "?"], ["OK"],
    ]  # fmt: skip


@pytest.mark.parametrize(
    "task,split,n,counts",
    [
        ("sst2", "train", 67_349, {0: 29_780, 1: 37_569}),
        ("sst2", "dev", 872, {0: 428, 1: 444}),
        ("rte", "train", 2_490, {0: 1_249, 1: 1_241}),
        ("rte", "dev", 277, {0: 146, 1: 131}),
        ("rte", "test", 3_000, {None: 3_000}),
        ("mrpc", "train", 3_668, {1: 2_474, 0: 1_194}),
        ("mrpc", "dev", 408, {1: 279, 0: 129}),
        ("mrpc", "test", 1_725, {1: 1_147, 0: 578}),
    ],
)
def test_glue_counts(task, split, n, counts, data_mirror):
    examples = data.read_glue(task, split)
    assert len(examples) == n
    assert Counter(e.label for e in examples) == counts
    assert all(e.text_a for e in examples)
    assert all((e.text_b is None) == (task == "sst2") for e in examples)


def test_mrpc_dev_equals_the_glue_file(data_mirror):
    """The dev split rebuilt from dev_ids.tsv equals GLUE's own dev.tsv, row for row."""
    ours = {(e.text_a, e.text_b, e.label) for e in data.read_glue("mrpc", "dev")}
    glue = {
        (r["#1 String"], r["#2 String"], int(r["Quality"]))
        for r in data._read_tsv(data_mirror / "mrpc/dev.tsv")
    }
    assert ours == glue
    train = {(e.text_a, e.text_b) for e in data.read_glue("mrpc", "train")}
    assert not train & {(a, b) for a, b, _ in ours}


def test_glue_bad_names():
    with pytest.raises(ValueError, match="unknown GLUE task 'cola'"):
        data.read_glue("cola")
    with pytest.raises(ValueError, match="sst2 has no split 'test'"):
        data.read_glue("sst2", "test")


def test_conllu_counts(data_mirror):
    for split, n_sent, n_words in [
        ("train", 12_544, 204_577), ("dev", 2_001, 25_147), ("test", 2_077, 25_094),
    ]:  # fmt: skip
        sents = data.read_conllu(split)
        assert len(sents) == n_sent
        assert sum(len(s.words) for s in sents) == n_words
        assert all(len(s.words) == len(s.upos) for s in sents)
    tags = Counter(t for s in data.read_conllu("train") for t in s.upos)
    assert set(tags) == set(data.UPOS_TAGS)
    assert [t for t, _ in tags.most_common(3)] == ["NOUN", "PUNCT", "VERB"]


def test_conllu_skips_ranges_and_empty_nodes():
    text = (
        "# sent_id = x\n# text = don't go\n"
        "1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
        "1\tdo\tdo\tAUX\t_\t_\t0\troot\t_\t_\n"
        "2\tn't\tnot\tPART\t_\t_\t1\tadvmod\t_\t_\n"
        "2.1\tgo\tgo\tVERB\t_\t_\t_\t_\t_\t_\n"
        "3\tgo\tgo\tVERB\t_\t_\t1\txcomp\t_\t_\n\n"
    )
    (s,) = data.parse_conllu(text)
    assert (s.sent_id, s.text, s.words, s.upos) == (
        "x", "don't go", ["do", "n't", "go"], ["AUX", "PART", "VERB"],
    )  # fmt: skip
    with pytest.raises(ValueError, match="expected 10 columns"):
        data.parse_conllu("1\tbad line\n")


def test_squad_counts(data_mirror):
    qs = data.read_squad()
    assert len(qs) == 10_570
    assert len({q.title for q in qs}) == 48
    assert len({q.context for q in qs}) == 2_067
    assert sum(len(q.answers) for q in qs) == 34_726
    assert all(1 <= len(q.answers) <= 6 for q in qs)
    for q in qs[:500]:
        for text, start in zip(q.answers, q.answer_starts):
            assert q.context[start : start + len(text)] == text


def test_similarity_and_analogy_counts(data_mirror):
    sizes = {"ws353": 353, "ws353-sim": 203, "ws353-rel": 252, "simlex999": 999, "men": 3_000,
             "rw": 2_034, "rg65": 65, "mc30": 30, "simverb3500": 3_500, "mturk287": 287,
             "mturk771": 771, "verb143": 144, "yp130": 130}  # fmt: skip
    for name, n in sizes.items():
        pairs = data.read_similarity(name)
        assert len(pairs) == n, name
        assert all(isinstance(s, float) for _, _, s in pairs)
    assert data.read_similarity("EN-WS-353-ALL") == data.read_similarity("ws353")
    with pytest.raises(ValueError, match="unknown similarity set"):
        data.read_similarity("ws-353")
    sections = data.read_analogy()
    assert len(sections) == 14
    assert sum(map(len, sections.values())) == 19_544
    assert sum(len(sections[s]) for s in data.SEMANTIC_ANALOGY_SECTIONS) == 8_869
    assert sections["capital-common-countries"][0] == ("Athens", "Greece", "Baghdad", "Iraq")
