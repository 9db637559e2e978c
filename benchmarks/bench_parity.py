"""Item 4 of the issue: batching that keeps accuracy.

The default training batching is chosen by accuracy first. On two workloads, each trained
for the epochs a cell of that kind trains, random order and every candidate grouping train
from the same weights with seeds 0, 1 and 2; a candidate keeps accuracy on a workload when
its mean held-out accuracy is no lower than random order's mean minus random order's
standard deviation over the seeds. Among the candidates that keep accuracy on both
workloads the fastest (real tokens per second over random order's, in the same runs) is the
pick; random order itself always qualifies, so the rule always picks something.

* Workload A is the suite's workload (benchmarks/workload.py): a text's domain, which its
  length goes with (Usenet posts are long, tweets short).
* Workload B is review sentiment (vader_movie + vader_amazon snippets): a text's length says
  next to nothing about its label.

Both use the same tiny BERT construction (a WordPiece vocabulary trained on the workload's
training texts, random weights), so that every run trains on a CPU in seconds.
"""
from __future__ import annotations

import copy
import math
import statistics
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from benchmarks import runners
from benchmarks.common import Section, Settings, interleave
from benchmarks.workload import Workload, build, with_max_length


@dataclass(frozen=True)
class Candidate:
    mode: str
    factor: int | None = None     # the mega-batch factor of length_grouped

    @property
    def key(self) -> str:
        return self.mode if self.factor is None else f"{self.mode}_{self.factor}"

    @property
    def label(self) -> str:
        if self.mode == "random":
            return "random order"
        return f"length_grouped, mega-batch factor {self.factor}"

    @property
    def overrides(self) -> str:
        if self.factor is None:
            return f"data.batching={self.mode}"
        return f"data.batching={self.mode} data.mega_batch_factor={self.factor}"


RANDOM = Candidate("random")
CANDIDATES = [RANDOM] + [Candidate("length_grouped", f) for f in (50, 8, 4, 2)]


@dataclass(frozen=True)
class Spec:
    """One workload of the benchmark."""

    name: str           # "A" or "B"
    kind: str           # benchmarks.workload.build's kind
    epochs: int
    max_length: int
    why: str            # why these epochs


def _plan(settings: Settings) -> dict[str, Any]:
    specs = [
        Spec("A", "domains", 1, 64,
             "1 epoch: what an intermediate task (stage 1) trains in `experiment=mini`; a domain label is an "
             "intermediate-task kind of label"),
        Spec("B", "sentiment", 2, 64,
             "2 epochs: what a target task (stage 2) trains in `experiment=mini`; vader_amazon is mini's "
             "default target"),
    ]
    if settings.quick:
        return {"specs": specs, "seeds": [0, 1],
                "candidates": [RANDOM, Candidate("length_grouped", 50), Candidate("length_grouped", 2)]}
    return {"specs": specs, "seeds": [0, 1, 2], "candidates": CANDIDATES}


def _with(wl: Workload, cand: Candidate) -> Workload:
    """``wl`` with the candidate's batching (and the progress bar off: the logs stay readable)."""
    out = copy.copy(wl)
    out.cfg = copy.deepcopy(wl.cfg)
    out.cfg["data"]["batching"] = cand.mode
    if cand.factor is not None:
        out.cfg["data"]["mega_batch_factor"] = int(cand.factor)
    out.cfg["trainer"]["enable_progress_bar"] = False
    return out


def _sampler_batches(lengths: np.ndarray, batch_size: int, cand: Candidate, seed: int = 0) -> list[np.ndarray]:
    from itt.data.batching import LengthGroupedBatchSampler

    sampler = LengthGroupedBatchSampler(lengths, batch_size, cand.mode, cand.factor or 1, seed)
    return [np.asarray(b) for b in sampler]


# ----------------------------------------------------------------------------- other schemes (not trained)
def bucketed_batches(lengths: np.ndarray, batch_size: int, ratio: float, seed: int = 0,
                     smallest: int = 8) -> list[np.ndarray]:
    """Bucketed sampling with shuffled buckets: buckets of lengths growing by ``ratio``
    (a batch's longest text at most about ``ratio`` times its shortest), each bucket
    shuffled and cut into batches, all batches shuffled."""
    rng = np.random.default_rng(seed)
    bucket = np.floor(np.log(np.maximum(lengths, 1) / smallest) / math.log(ratio)).clip(0)
    batches: list[np.ndarray] = []
    for k in np.unique(bucket):
        idx = rng.permutation(np.flatnonzero(bucket == k))
        batches += [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def noisy_sort_batches(lengths: np.ndarray, batch_size: int, sigma: float, mega: int, seed: int = 0
                       ) -> list[np.ndarray]:
    """Mega-batches sorted by length times log-normal noise (sd ``sigma`` of the log)."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(lengths))
    batches: list[np.ndarray] = []
    for s in range(0, len(perm), mega):
        chunk = perm[s:s + mega]
        key = np.log(np.maximum(lengths[chunk], 1)) + rng.normal(0.0, sigma, len(chunk))
        chunk = chunk[np.argsort(-key, kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def mix_stats(lengths: np.ndarray, labels: np.ndarray, batches: list[np.ndarray]) -> tuple[float, float]:
    """(real / computed tokens over the epoch, mean distinct labels per batch)."""
    computed = sum(len(b) * int(lengths[b].max()) for b in batches)
    return float(lengths.sum() / computed), float(np.mean([len(np.unique(labels[b])) for b in batches]))


def length_predicts_label(wl: Workload, bins: int = 10) -> tuple[float, float]:
    """(accuracy of the majority label per length decile of the training split, scored on the
    test split; accuracy of the majority label): how much a text's length says of its label."""
    tr, te = wl.tok["train"], wl.tok["test"]["en"]
    y_tr, y_te = np.asarray(tr.labels), np.asarray(te.labels)
    edges = np.unique(np.percentile(tr.lengths, np.linspace(0, 100, bins + 1)[1:-1]))
    b_tr, b_te = np.searchsorted(edges, tr.lengths, "right"), np.searchsorted(edges, te.lengths, "right")
    majority = int(np.bincount(y_tr).argmax())
    per_bin = {int(k): int(np.bincount(y_tr[b_tr == k]).argmax()) for k in np.unique(b_tr)}
    pred = np.array([per_bin.get(int(k), majority) for k in b_te])
    return float((pred == y_te).mean()), float((y_te == majority).mean())


# ----------------------------------------------------------------------------- the benchmark
def _mean_sd(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def run_workload(settings: Settings, wl: Workload, spec: Spec, seeds: list[int], candidates: list[Candidate]
                 ) -> dict[str, Any]:
    """Every candidate trained ``spec.epochs`` epochs per seed; per seed the candidates run
    one after another (alternating order), so that each speed ratio compares runs minutes apart."""
    variants = {c.key: _with(wl, c) for c in candidates}

    def run(cand: Candidate, seed: int) -> Callable[[int], dict[str, Any]]:
        def go(r: int) -> dict[str, Any]:
            w = variants[cand.key]
            loader, rec = runners.train_loader(w, cand.mode, seed=seed)
            return runners.run_itt(w, loader, rec, epochs=spec.epochs, seed=seed, score=True,
                                   work_dir=settings.work_dir)
        return go

    res: dict[str, list[dict[str, Any]]] = {c.key: [] for c in candidates}
    for i, seed in enumerate(seeds):
        order = candidates if i % 2 == 0 else candidates[::-1]
        settings.log(f"  workload {spec.name}, seed {seed}")
        out = interleave({c.key: run(c, seed) for c in order}, 1, settings.log)
        for key in res:
            res[key] += out[key]
    lengths, labels = wl.tok["train"].lengths, np.asarray(wl.tok["train"].labels)
    rows: dict[str, dict[str, Any]] = {}
    rnd_acc = [r["accuracy"] for r in res[RANDOM.key]]
    rnd_mean, rnd_sd = _mean_sd(rnd_acc)
    for c in candidates:
        acc = [r["accuracy"] for r in res[c.key]]
        mean, sd = _mean_sd(acc)
        tps = [r["tok_per_s"] for r in res[c.key]]
        speed = [a["tok_per_s"] / b["tok_per_s"] for a, b in zip(res[c.key], res[RANDOM.key])]
        eff, lpb = mix_stats(lengths, labels, _sampler_batches(lengths, wl.sizes.batch_size, c))
        rows[c.key] = {"label": c.label, "overrides": c.overrides, "accuracy": acc, "mean": mean, "sd": sd,
                       "diff": mean - rnd_mean, "keeps": mean >= rnd_mean - rnd_sd, "tok_per_s": tps,
                       "speed": speed, "speed_median": statistics.median(speed), "efficiency": eff,
                       "labels_per_batch": lpb,
                       "train_seconds": statistics.median(r["train_seconds"] for r in res[c.key])}
    return {"rows": rows, "random_mean": rnd_mean, "random_sd": rnd_sd}


def choose(results: dict[str, dict[str, Any]], candidates: list[Candidate]) -> tuple[Candidate, list[Candidate]]:
    """The rule: among the candidates that keep accuracy on every workload, the fastest
    (geometric mean over the workloads of the median speed over random order)."""
    keep = [c for c in candidates if all(r["rows"][c.key]["keeps"] for r in results.values())]

    def speed(c: Candidate) -> float:
        return float(np.exp(np.mean([math.log(r["rows"][c.key]["speed_median"]) for r in results.values()])))

    best = max(keep, key=speed) if keep else RANDOM
    return best, keep


def parity(settings: Settings, wl: Workload) -> Section:
    plan = _plan(settings)
    seeds, candidates = plan["seeds"], plan["candidates"]
    sec = Section("parity", "3b. Batching that keeps accuracy: the default chosen by accuracy over seeds",
                  settings.command("parity"))
    default = (wl.cfg["data"]["batching"], int(wl.cfg["data"]["mega_batch_factor"]))
    default_key = Candidate(default[0], default[1] if default[0] == "length_grouped" else None).key
    results: dict[str, dict[str, Any]] = {}
    workloads: dict[str, Workload] = {}
    for spec in plan["specs"]:
        base = wl if spec.kind == "domains" else build(settings, kind=spec.kind)
        w = base if base.sizes.max_length <= spec.max_length else with_max_length(base, spec.max_length)
        workloads[spec.name] = w
        results[spec.name] = run_workload(settings, w, spec, seeds, candidates)
    pick, keep = choose(results, candidates)

    sec.add(f"Random order and each candidate train `stages.fit` as a cell runs it (per-epoch validation, the "
            f"best validation epoch's weights kept, scored on the held-out test split by itt's `predict`), seeds "
            f"{', '.join(map(str, seeds))}, from the same encoder weights (the seed draws the head, the batch order "
            f"and dropout), batch {wl.sizes.batch_size}, lr {wl.stage['lr']}, the trainer settings of conf/ with "
            f"the progress bar off. Per seed the candidates run back to back, in alternating order; speed over "
            f"random order is the median over seeds of (candidate's real tokens/s) / (random order's in the same "
            f"seed), over whole epochs.", "")
    sec.add("**Rule.** A candidate keeps accuracy on a workload when its mean accuracy over the seeds is at least "
            "random order's mean minus random order's standard deviation over the same seeds (sample sd, n − 1; "
            f"{len(seeds)} seeds). A candidate above random order passes too. The default is the fastest candidate "
            "that keeps accuracy on both workloads (geometric mean of its two speeds over random order); random "
            "order always qualifies.", "")
    for spec in plan["specs"]:
        w, r = workloads[spec.name], results[spec.name]
        s = w.length_summary()
        by_len, majority = length_predicts_label(w)
        sec.add(f"**Workload {spec.name}** ({w.card.description}): {w.source}; train {len(w.tok['train'])}, "
                f"validation {len(w.tok['validation'])}, test {len(w.tok['test']['en'])}; texts cut at "
                f"{w.sizes.max_length} tokens (training lengths: median {s['median']:.0f}, mean {s['mean']:.1f}, "
                f"p90 {s['p90']:.0f}, {s['truncated']} cut); {spec.why}. Length alone (the majority label of each "
                f"training length decile) scores {by_len:.3f} on the test split, the majority label {majority:.3f}. "
                f"Random order: {r['random_mean']:.3f} ± {r['random_sd']:.3f}, so the bar is "
                f"{r['random_mean'] - r['random_sd']:.3f}.", "")
        rows = []
        for c in candidates:
            row = r["rows"][c.key]
            rows.append([
                row["label"] + (" (itt's default when this ran)" if c.key == default_key else ""),
                f"{row['mean']:.3f} ± {row['sd']:.3f}", ", ".join(f"{a:.3f}" for a in row["accuracy"]),
                "—" if c == RANDOM else f"{row['diff']:+.3f}",
                "yes" if row["keeps"] else "no", f"{100 * row['efficiency']:.1f}%", f"{row['labels_per_batch']:.2f}",
                f"{statistics.median(row['tok_per_s']):,.0f}",
                "1" if c == RANDOM else (f"{row['speed_median']:.2f} (range {min(row['speed']):.2f}–"
                                         f"{max(row['speed']):.2f})")])
        sec.table(["batching", "held-out accuracy (mean ± sd)", "per seed", "− random order", "keeps accuracy",
                   "real / computed tokens", f"labels per batch (of {w.card.num_labels})", "real tokens/s (median)",
                   "speed over random order"], rows)
    names = [c.label for c in keep if c != RANDOM]
    sec.add(f"Keeping accuracy on both workloads: {', '.join(names) if names else 'none of the groupings'}"
            f"{'' if names else ' (random order only)'}. **Pick: {pick.label}** (`{pick.overrides}`).", "")

    # Schemes that mix lengths less aggressively, weighed without training: what they cost
    # in padding against how many labels a batch keeps (workload A's failure mode).
    other: list[list[str]] = []
    for spec in plan["specs"]:
        w = workloads[spec.name]
        lengths, labels = w.tok["train"].lengths, np.asarray(w.tok["train"].labels)
        bs = w.sizes.batch_size
        schemes = [(c.label, _sampler_batches(lengths, bs, c)) for c in candidates]
        schemes += [(f"bucketed, shuffled buckets, length ratio {q}", bucketed_batches(lengths, bs, q))
                    for q in (1.5, 2, 4)]
        schemes += [(f"mega-batch factor 50 sorted by length × noise (log sd {g})",
                     noisy_sort_batches(lengths, bs, g, 50 * bs)) for g in (0.3, 0.6)]
        for name, batches in schemes:
            eff, lpb = mix_stats(lengths, labels, batches)
            other.append([spec.name, name, f"{100 * eff:.1f}%", f"{lpb:.2f}"])
    sec.add("Other schemes, weighed without training: real / computed tokens over an epoch and distinct labels "
            "per batch (seed 0). A grouping costs accuracy on workload A by leaving fewer labels in a batch; a "
            "scheme is worth training only if it keeps more labels per batch than a mega-batch factor with the "
            "same padding.", "")
    sec.table(["workload", "scheme", "real / computed tokens", "labels per batch"], other)
    sec.data.update(results=results, pick=pick.key, keep=[c.key for c in keep],
                    default_when_run=default_key,
                    epochs={s.name: s.epochs for s in plan["specs"]}, seeds=seeds)
    return sec
