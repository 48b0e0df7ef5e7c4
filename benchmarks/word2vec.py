"""Skip-gram with negative sampling on WikiText-2 train: bertlab vs gensim, in one run.

100 dimensions, window 5, 5 negatives, min_count 5, subsampling 1e-3, 5 epochs; gensim with
``workers=2``. Prints ``word2vec: bertlab X s (WS-353 r1), gensim Y s (WS-353 r2), ratio R``
(R = bertlab's time / gensim's), then each side's analogy accuracy; ``--profile`` adds where
bertlab's time goes.
"""

from __future__ import annotations

import argparse
import os
import time

from bertlab import data
from bertlab.embeddings import Embeddings, evaluate_analogy, evaluate_similarity
from bertlab.word2vec import train_word2vec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="bertlab's hogwild threads")
    parser.add_argument("--profile", action="store_true", help="torch profiler table for bertlab")
    args = parser.parse_args()
    from gensim.models import Word2Vec as GensimWord2Vec

    sentences = data.wikitext2_sentences("train")
    hp = dict(window=5, negative=5, min_count=5, sample=1e-3)
    print(f"load average before: {os.getloadavg()}", flush=True)

    t0 = time.perf_counter()
    g = GensimWord2Vec(sentences, vector_size=100, sg=1, hs=0, epochs=args.epochs, workers=2,
                       seed=0, **hp)  # fmt: skip
    gensim_s = time.perf_counter() - t0
    gensim_emb = Embeddings.from_gensim(g.wv)

    def run(epochs, workers):
        return train_word2vec(sentences, model="skipgram", objective="negative", dim=100,
                     epochs=epochs, progress=False, workers=workers, **hp)  # fmt: skip

    ours = run(args.epochs, args.workers)
    bertlab_s = ours.seconds

    r1 = evaluate_similarity(ours, "ws353").rho
    r2 = evaluate_similarity(gensim_emb, "ws353").rho
    print(
        f"word2vec: bertlab {bertlab_s:.1f} s (WS-353 {r1:.3f}), gensim {gensim_s:.1f} s "
        f"(WS-353 {r2:.3f}), ratio {bertlab_s / gensim_s:.2f}"
    )
    print(
        f"analogy accuracy: bertlab {evaluate_analogy(ours).accuracy:.3f}, "
        f"gensim {evaluate_analogy(gensim_emb).accuracy:.3f}"
    )
    print(f"load average after: {os.getloadavg()}")
    if args.profile:  # the profiler sees only its own thread: one epoch, one worker
        import torch

        with torch.profiler.profile() as prof:
            one = run(1, 1)
        ops = sum(e.self_cpu_time_total for e in prof.key_averages()) / 1e6
        print(f"profile of 1 epoch, 1 worker: {one.seconds:.1f} s, {ops:.1f} s of it in torch ops")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
