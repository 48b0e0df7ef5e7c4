"""Benchmark: bertlab.glove on WikiText-2 train, with gensim's word2vec on the same corpus as the
reference point (there is no GloVe in gensim; word2vec is what the chapter compares GloVe with).

GloVe uses the chapter's "cpu" preset (min_count 5, 100 dimensions, window 10 with 1/d weighting,
x_max 100, AdaGrad at 0.05, 20 epochs); word2vec the same corpus, min_count 5, 100 dimensions,
window 10, 5 negative samples, 5 epochs, 2 worker threads, as skip-gram and as CBOW. Run:

    BERTLAB_DATA=../shared/data python benchmarks/glove.py [--device cuda] [--epochs N]

It prints the co-occurrence and training times, one comparison line per word2vec variant,
``glove: bertlab X s, gensim <variant> Y s, ratio R`` (R = gensim / bertlab, both end to end
from tokenized sentences to vectors), and the quality of each (WS-353 Spearman, analogy).
The machine's load average is printed too: on two cores, other work changes the numbers a lot.
"""

from __future__ import annotations

import argparse
import os
import time

from bertlab import glove
from bertlab.data import wikitext2_sentences
from bertlab.embeddings import Embeddings, evaluate_analogy, evaluate_similarity


def quality(emb: Embeddings) -> str:
    ws = evaluate_similarity(emb, "ws353")
    an = evaluate_analogy(emb)
    return f"WS-353 rho {ws.rho:.3f} ({ws.n_covered}/{ws.n_pairs}), analogy {an.accuracy:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=None, help="GloVe epochs (default: preset)")
    parser.add_argument("--skip-gensim", action="store_true")
    args = parser.parse_args()

    sentences = wikitext2_sentences("train")
    preset = "cpu" if args.device == "cpu" else "gpu"
    overrides = {} if args.epochs is None else {"epochs": args.epochs}
    config = glove.GloVeConfig.preset(preset, **overrides)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    start = time.perf_counter()
    run = glove.train_glove(sentences, config, device=args.device, progress=False)
    t_glove = time.perf_counter() - start
    n_tokens = sum(map(len, sentences))
    print(
        f"glove cooccurrence: bertlab {run.seconds['cooccurrence']:.1f} s "
        f"(vocabulary + window-{config.window} counts of {n_tokens:,} tokens: "
        f"V = {len(run.vocab):,}, {run.X.nnz:,} nonzero entries)"
    )
    print(
        f"glove training: bertlab {run.seconds['training']:.1f} s ({config.epochs} epochs, "
        f"{run.seconds['training'] / config.epochs:.2f} s/epoch on {args.device}; "
        f"final loss {run.history.loss[-1]:.4f})"
    )
    print(f"glove quality: {quality(run.embeddings)}")
    if args.skip_gensim:
        return

    from gensim.models import Word2Vec

    for name, sg in (("skip-gram", 1), ("CBOW", 0)):
        start = time.perf_counter()
        model = Word2Vec(
            sentences,
            vector_size=100,
            window=config.window,
            negative=5,
            min_count=5,
            epochs=5,
            workers=2,
            sg=sg,
            seed=0,
        )
        t_ref = time.perf_counter() - start
        ratio = t_ref / t_glove
        print(f"glove: bertlab {t_glove:.1f} s, gensim {name} {t_ref:.1f} s, ratio {ratio:.2f}")
        print(f"gensim {name} quality: {quality(Embeddings.from_gensim(model.wv))}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
