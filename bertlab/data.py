"""Datasets: find them, verify them, read them.

Every file the book uses is listed in ``MANIFEST.tsv`` (shipped inside this package) with its
size, sha256 and a public URL that serves identical bytes. :func:`fetch` hands out the folder of
one dataset and guarantees that every file in it has the listed hash. It looks in three places, in
order:

1. ``$BERTLAB_DATA`` -- a mirror laid out like ``../shared/data`` (the Makefile points it there);
2. the cache, ``$BERTLAB_CACHE`` (default ``~/.cache/bertlab``);
3. the network: the file's ``raw_url`` is downloaded into the cache with a progress bar, written to
   a temporary file, fsync'ed, verified and only then renamed into place (so a crash never leaves
   a half-written file under the real name).

A file whose hash is wrong raises :class:`ChecksumError`; it is never silently replaced or used.
Hashing 45 MB takes a moment, so verified files are remembered by (size, mtime) in
``<cache>/verified.json`` and a second call is instant.

The rest of the module reads each format into plain Python objects: WikiText-2 as lines, documents
or sentences; the GLUE tasks SST-2, RTE and MRPC; CoNLL-U (UD English EWT) with UPOS tags; SQuAD
v1.1; word-similarity and analogy lists.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import hashlib
import json
import os
import re
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from filelock import FileLock
from tqdm.auto import tqdm

from bertlab.checkpoint import atomic_path, cache_dir

MANIFEST_PATH = Path(__file__).with_name("MANIFEST.tsv")


class ChecksumError(ValueError):
    """A data file does not have the sha256 that MANIFEST.tsv lists for it."""


class DataUnavailableError(RuntimeError):
    """A data file is in no mirror, not in the cache, and could not be downloaded."""


# --------------------------------------------------------------------------------------------------
# The manifest and fetch()
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileEntry:
    """One row of MANIFEST.tsv."""

    dataset: str  # e.g. "mrpc"
    file: str  # path relative to the data root, e.g. "mrpc/dev.tsv"
    size: int
    sha256: str
    raw_url: str


@cache
def manifest() -> dict[str, tuple[FileEntry, ...]]:
    """Dataset name -> its files, read from the MANIFEST.tsv shipped with the package."""
    datasets: dict[str, list[FileEntry]] = {}
    with open(MANIFEST_PATH, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            entry = FileEntry(
                row["dataset"], row["file"], int(row["bytes"]), row["sha256"], row["raw_url"]
            )
            datasets.setdefault(entry.dataset, []).append(entry)
    return {name: tuple(files) for name, files in datasets.items()}


def names() -> list[str]:
    """The names :func:`fetch` knows."""
    return sorted(manifest())


def mirror_dir() -> Path | None:
    """The local mirror named by ``$BERTLAB_DATA``, or None when it is not set."""
    value = os.environ.get("BERTLAB_DATA")
    return Path(value).expanduser() if value else None


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class _VerifiedRecord:
    """Remembers files already verified, keyed by path, so a second fetch() does not re-hash them.

    A file counts as verified only while its size and mtime are what they were when it was hashed;
    editing a file (or flipping one byte in it) changes its mtime and forces a new hash.
    """

    def __init__(self, path: Path):
        self.path = path

    def _load(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def is_verified(self, file: Path, sha256: str) -> bool:
        st = file.stat()
        rec = self._load().get(str(file.resolve()))
        return rec == {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}

    def mark(self, file: Path, sha256: str) -> None:
        st = file.stat()
        key = str(file.resolve())
        with contextlib.suppress(OSError):  # a read-only cache only costs speed
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.path) + ".lock"):
                data = self._load()
                data[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
                _atomic_write_text(self.path, json.dumps(data, indent=0, sort_keys=True))


def _atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def verify(path: Path, entry: FileEntry, record: _VerifiedRecord | None = None) -> Path:
    """Return ``path`` if its sha256 is the manifest's, else raise :class:`ChecksumError`."""
    record = record or _VerifiedRecord(cache_dir() / "verified.json")
    if record.is_verified(path, entry.sha256):
        return path
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise ChecksumError(
            f"{path} is corrupt: its sha256 is {actual}, but MANIFEST.tsv expects {entry.sha256} "
            f"({entry.size:,} bytes; this file has {path.stat().st_size:,}). Replace it with a "
            f"good copy (it is served at {entry.raw_url}) or delete it so that it is downloaded "
            f"again."
        )
    record.mark(path, entry.sha256)
    return path


def download(entry: FileEntry, dest: Path, timeout: float = 30.0, progress: bool = True) -> Path:
    """Download one manifest file to ``dest`` atomically: temp file, fsync, verify, rename."""
    h = hashlib.sha256()
    try:
        with (
            atomic_path(dest) as tmp,
            open(tmp, "wb") as out,
            urllib.request.urlopen(entry.raw_url, timeout=timeout) as response,
            tqdm(
                total=entry.size,
                unit="B",
                unit_scale=True,
                desc=f"download {entry.file}",
                disable=not progress,
            ) as bar,
        ):
            while block := response.read(1 << 16):
                out.write(block)
                h.update(block)
                bar.update(len(block))
            if h.hexdigest() != entry.sha256:
                raise ChecksumError(
                    f"the download of {entry.file} from {entry.raw_url} is corrupt: sha256 "
                    f"{h.hexdigest()}, expected {entry.sha256}. Nothing was written; try again "
                    f"later or set BERTLAB_DATA to a folder holding a good copy."
                )
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise DataUnavailableError(
            f"{entry.file} is not in a local mirror or in the cache ({cache_dir()}), and "
            f"downloading it from {entry.raw_url} failed ({e}). Either set BERTLAB_DATA to a "
            f"folder with a copy of the data (laid out like shared/data, e.g. "
            f"BERTLAB_DATA=../shared/data) or connect to the internet and try again."
        ) from e
    return dest


def fetch(name: str, *, progress: bool = True) -> Path:
    """Return the folder of dataset ``name``, with every file in it present and sha256-verified.

    >>> fetch("sst2") / "dev.tsv"   # doctest: +SKIP
    PosixPath('.../sst2/dev.tsv')

    Raises ValueError for an unknown name, :class:`ChecksumError` for a file whose bytes are wrong,
    and :class:`DataUnavailableError` when a file is missing and cannot be downloaded.
    """
    datasets = manifest()
    if name not in datasets:
        close = difflib.get_close_matches(name, datasets, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown dataset {name!r}.{hint} Known datasets: {', '.join(sorted(datasets))}."
        )
    record = _VerifiedRecord(cache_dir() / "verified.json")
    mirror, cache_root = mirror_dir(), cache_dir()
    in_mirror = [mirror is not None and (mirror / e.file).is_file() for e in datasets[name]]
    if all(in_mirror):
        for entry in datasets[name]:
            verify(mirror / entry.file, entry, record)
        return mirror / name
    # At least one file must come from the cache (or the network): gather the whole dataset there.
    for entry, mirrored in zip(datasets[name], in_mirror):
        dest = cache_root / entry.file
        with FileLock(str(dest) + ".lock") if _mkparent(dest) else contextlib.nullcontext():
            if dest.is_file():
                verify(dest, entry, record)
            elif mirrored:
                src = verify(mirror / entry.file, entry, record)
                _atomic_copy(src, dest)
                record.mark(dest, entry.sha256)
            else:
                download(entry, dest, progress=progress)
                record.mark(dest, entry.sha256)
    return cache_root / name


def _mkparent(path: Path) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    return True


def _atomic_copy(src: Path, dest: Path) -> None:
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


def _split_name(split: str, allowed: tuple[str, ...], dataset: str) -> str:
    if split not in allowed:
        raise ValueError(f"{dataset} has no split {split!r}; choose one of {', '.join(allowed)}.")
    return split


# --------------------------------------------------------------------------------------------------
# WikiText-2: lines, documents, sentences
# --------------------------------------------------------------------------------------------------

_TITLE = re.compile(r"^ = [^=].* = $")  # " = Valkyria Chronicles III = " (one "=" on each side)
_HEADING = re.compile(r"^ (= )+.* (= )*=\s*$")  # any heading, " = = Gameplay = = " included
_SENTENCE_END = {".", "?", "!"}


def wikitext2_lines(split: str = "train", keep_empty: bool = False) -> list[str]:
    """The lines of WikiText-2 (tokenized v1), stripped. Headings (`` = Title = ``) are lines too.

    With ``keep_empty=True`` the blank lines stay, so ``len(...)`` is the file's line count.
    """
    _split_name(split, ("train", "valid", "test"), "wikitext-2")
    text = (fetch("wikitext-2") / f"{split}.txt").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.split("\n")[:-1]]  # the file ends with "\n"
    return lines if keep_empty else [line for line in lines if line]


@dataclass
class WikiDocument:
    """One Wikipedia article: its title and its paragraphs (section headings left out)."""

    title: str
    paragraphs: list[str]


def wikitext2_documents(split: str = "train") -> list[WikiDocument]:
    """WikiText-2 split into articles at its top-level `` = Title = `` headings.

    Train has 600 articles, valid and test 60 each."""
    _split_name(split, ("train", "valid", "test"), "wikitext-2")
    text = (fetch("wikitext-2") / f"{split}.txt").read_text(encoding="utf-8")
    lines = text.split("\n")
    docs: list[WikiDocument] = []
    for i, raw in enumerate(lines):
        # An article title is a " = Title = " line with a blank line on each side; table rows such
        # as " = Goals ; A = " also match the pattern but sit between text lines.
        blank_around = not lines[i - 1].strip() and i + 1 < len(lines) and not lines[i + 1].strip()
        if _TITLE.match(raw) and (i == 0 or blank_around):
            docs.append(WikiDocument(title=raw.strip(" ="), paragraphs=[]))
        elif raw.strip() and not _HEADING.match(raw):
            if not docs:  # text before the first title (does not happen in v1, but be safe)
                docs.append(WikiDocument(title="", paragraphs=[]))
            docs[-1].paragraphs.append(raw.strip())
    return docs


def split_sentences(tokens: list[str]) -> list[list[str]]:
    """Split a tokenized paragraph after each ``.``, ``?`` or ``!`` token.

    WikiText's decimal point is the separate token ``@.@``, so numbers are not split."""
    sentences, current = [], []
    for tok in tokens:
        current.append(tok)
        if tok in _SENTENCE_END:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences


def wikitext2_sentences(split: str = "train") -> list[list[str]]:
    """Every sentence of every paragraph of WikiText-2, as a list of tokens (headings left out)."""
    return [
        sentence
        for doc in wikitext2_documents(split)
        for paragraph in doc.paragraphs
        for sentence in split_sentences(paragraph.split())
    ]


# --------------------------------------------------------------------------------------------------
# GLUE: SST-2, RTE, MRPC
# --------------------------------------------------------------------------------------------------

GLUE_LABELS = {
    "sst2": ("negative", "positive"),
    "rte": ("entailment", "not_entailment"),  # GLUE's order: entailment = 0
    "mrpc": ("not_paraphrase", "paraphrase"),
}


@dataclass
class GlueExample:
    """One GLUE example: a sentence (or a pair) and its label id (None when unlabelled)."""

    text_a: str
    text_b: str | None
    label: int | None


def read_glue(task: str, split: str = "train") -> list[GlueExample]:
    """Read a GLUE task (``"sst2"``, ``"rte"`` or ``"mrpc"``) split into :class:`GlueExample` s.

    Labels are ids into ``GLUE_LABELS[task]``. RTE's test split has no labels (label None). MRPC's
    GLUE train split is not shipped as a file; it is rebuilt, as GLUE does, from
    ``msr_paraphrase_train.txt`` minus the pairs listed in ``dev_ids.tsv`` (3,668 pairs); its test
    split is read from ``msr_paraphrase_test.txt`` so it has labels.
    """
    if task not in GLUE_LABELS:
        raise ValueError(f"unknown GLUE task {task!r}; choose one of {', '.join(GLUE_LABELS)}.")
    if task == "sst2":
        _split_name(split, ("train", "dev"), task)
        rows = _read_tsv(fetch("sst2") / f"{split}.tsv")
        return [GlueExample(r["sentence"].strip(), None, int(r["label"])) for r in rows]
    if task == "rte":
        _split_name(split, ("train", "dev", "test"), task)
        rows = _read_tsv(fetch("rte") / f"{split}.tsv")
        labels = GLUE_LABELS["rte"]
        return [
            GlueExample(
                r["sentence1"], r["sentence2"], labels.index(r["label"]) if "label" in r else None
            )
            for r in rows
        ]
    _split_name(split, ("train", "dev", "test"), task)
    folder = fetch("mrpc")
    if split == "test":
        rows = _read_tsv(folder / "msr_paraphrase_test.txt")
    else:
        with open(folder / "dev_ids.tsv", encoding="utf-8") as f:
            dev_ids = {(r[0], r[1]) for r in csv.reader(f, delimiter="\t")}
        rows = [
            r
            for r in _read_tsv(folder / "msr_paraphrase_train.txt")
            if ((r["#1 ID"], r["#2 ID"]) in dev_ids) == (split == "dev")
        ]
    return [GlueExample(r["#1 String"], r["#2 String"], int(r["Quality"])) for r in rows]


def _read_tsv(path: Path) -> list[dict[str, str]]:
    # QUOTE_NONE: RTE has unescaped quotes; utf-8-sig: the MRPC files start with a BOM.
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


# --------------------------------------------------------------------------------------------------
# Universal Dependencies (CoNLL-U): words and UPOS tags
# --------------------------------------------------------------------------------------------------

UPOS_TAGS = "ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X".split()


@dataclass
class TaggedSentence:
    """One CoNLL-U sentence: its id, raw text, words and their universal POS tags."""

    sent_id: str
    text: str
    words: list[str]
    upos: list[str]


def read_conllu(split: str = "train") -> list[TaggedSentence]:
    """UD English EWT sentences, each with its words and their UPOS tags.

    Multiword-token ranges (``1-2``) and empty nodes (``8.1``) are skipped, so ``words`` are the
    syntactic words, one UPOS tag each."""
    _split_name(split, ("train", "dev", "test"), "ud_english_ewt")
    return parse_conllu((fetch("ud_english_ewt") / f"en_ewt-ud-{split}.conllu").read_text("utf-8"))


def parse_conllu(text: str) -> list[TaggedSentence]:
    """Parse CoNLL-U text (see :func:`read_conllu`)."""
    sentences, meta, words, tags = [], {}, [], []
    for line in text.split("\n"):
        if not line.strip():
            if words:
                sentences.append(
                    TaggedSentence(meta.get("sent_id", ""), meta.get("text", ""), words, tags)
                )
            meta, words, tags = {}, [], []
        elif line.startswith("#"):
            key, _, value = line[1:].partition("=")
            meta[key.strip()] = value.strip()
        else:
            cols = line.split("\t")
            if len(cols) != 10:
                raise ValueError(f"not a CoNLL-U token line (expected 10 columns): {line!r}")
            if cols[0].isdigit():  # skip "1-2" ranges and "8.1" empty nodes
                words.append(cols[1])
                tags.append(cols[3])
    if words:
        sentences.append(TaggedSentence(meta.get("sent_id", ""), meta.get("text", ""), words, tags))
    return sentences


# --------------------------------------------------------------------------------------------------
# SQuAD v1.1
# --------------------------------------------------------------------------------------------------


@dataclass
class SquadExample:
    """One SQuAD question with its paragraph and gold answers (character offsets into context)."""

    id: str
    title: str
    context: str
    question: str
    answers: list[str]
    answer_starts: list[int]


def read_squad(split: str = "dev") -> list[SquadExample]:
    """SQuAD v1.1 questions. Only ``dev`` (10,570 questions, 48 articles) is shipped; split it by
    article for a train/test experiment (see ``bertlab.finetune``)."""
    _split_name(split, ("dev",), "squad_v1.1")
    data = json.loads((fetch("squad_v1.1") / "dev-v1.1.json").read_text(encoding="utf-8"))
    return [
        SquadExample(
            qa["id"],
            article["title"],
            paragraph["context"],
            qa["question"],
            [a["text"] for a in qa["answers"]],
            [a["answer_start"] for a in qa["answers"]],
        )
        for article in data["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]


# --------------------------------------------------------------------------------------------------
# Word similarity and analogy
# --------------------------------------------------------------------------------------------------

SIMILARITY_SETS = {
    "ws353": "EN-WS-353-ALL",
    "ws353-sim": "EN-WS-353-SIM",
    "ws353-rel": "EN-WS-353-REL",
    "simlex999": "EN-SIMLEX-999",
    "men": "EN-MEN-TR-3k",
    "rw": "EN-RW-STANFORD",
    "rg65": "EN-RG-65",
    "mc30": "EN-MC-30",
    "simverb3500": "EN-SimVerb-3500",
    "mturk287": "EN-MTurk-287",
    "mturk771": "EN-MTurk-771",
    "verb143": "EN-VERB-143",
    "yp130": "EN-YP-130",
}


def read_similarity(name: str) -> list[tuple[str, str, float]]:
    """A word-similarity list as ``(word1, word2, human score)`` triples.

    ``name`` is a short alias (``"ws353"``, ``"simlex999"``, ``"men"``, ``"rw"``, ...; see
    ``SIMILARITY_SETS``) or a file stem such as ``"EN-WS-353-ALL"``.
    """
    stem = SIMILARITY_SETS.get(name, name)
    if stem not in SIMILARITY_SETS.values():
        raise ValueError(
            f"unknown similarity set {name!r}; choose one of {', '.join(SIMILARITY_SETS)}."
        )
    text = (fetch("word_similarity") / f"{stem}.txt").read_text(encoding="utf-8")
    pairs = []
    for line in text.splitlines():  # splitlines also handles WS-353's CRLF endings
        if line.strip():
            w1, w2, score = line.split("\t")
            pairs.append((w1, w2, float(score)))
    return pairs


SEMANTIC_ANALOGY_SECTIONS = (
    "capital-common-countries",
    "capital-world",
    "currency",
    "city-in-state",
    "family",
)


def read_analogy() -> dict[str, list[tuple[str, str, str, str]]]:
    """The Google analogy questions, ``a b c d`` meaning a:b :: c:d, by section (14 sections).

    Words keep their original case; the sections in ``SEMANTIC_ANALOGY_SECTIONS`` are semantic,
    the others (``gram1-...`` to ``gram9-...``) syntactic."""
    sections: dict[str, list[tuple[str, str, str, str]]] = {}
    current = None
    for line in (fetch("word_analogy") / "questions-words.txt").read_text("utf-8").splitlines():
        if line.startswith(":"):
            current = line[1:].strip()
            sections[current] = []
        elif line.strip():
            a, b, c, d = line.split()
            sections[current].append((a, b, c, d))
    return sections
