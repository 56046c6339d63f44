"""Benchmark: transferlab's text inference against `SentenceTransformer.encode`, same texts, same process.

Each round runs, in alternating order, on the same texts with the same torch thread count:
- `st.encode`: sentence-transformers' own encode (batch 32, length-sorted) — the baseline;
- `evaluate`: `predict_logits` of a fine-tuned model (encoder + linear head) on the tokenized texts,
  exactly what `transferlab evaluate` runs (tokenizing included);
- `predict`: `predict_rows`, what `transferlab predict` runs (batches of 256, rows back in order);
- `feature cache`: `prefix_features` of the frozen encoder, what a linear probe / SetFit head trains on;
- `onnxruntime`: the frozen encoder exported with `transferlab export` and run by onnxruntime on the
  same length-sorted batches (export time reported separately) — measured to decide whether it should be
  the default for frozen encoders.
Throughput ratios are texts/s of each path ÷ texts/s of `st.encode` in the same round (≥ 1.0: at least
as fast); the median over rounds is reported, with a markdown table, both for wall time and for the
process's CPU time (with one thread, CPU time is what a path costs, and barely moves when other
programs load a shared machine, while wall time does).

    nice -n 10 python benchmarks/text_inference.py [--n 1114] [--rounds 3] [--threads 1] [--data PATH] [--json]

Needs the text extra (and the export extra for the onnxruntime row); texts default to the SMS spam test
split size (1,114) drawn from ../shared/data/sms_spam/all.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SMS = ROOT.parent / "shared" / "data" / "sms_spam" / "all.csv"


def _texts(path: Path, n: int) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r["text"] for r in csv.DictReader(f)]
    rng = np.random.default_rng(0)
    return [rows[i] for i in rng.choice(len(rows), size=min(n, len(rows)), replace=False)]


def _ort_session(loaded, folder: Path):
    import onnxruntime as ort

    from transferlab.export import export

    start = time.perf_counter()
    export("minilm", folder / "minilm.onnx", check=False, progress=False)
    seconds = time.perf_counter() - start
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(str(folder / "minilm.onnx"), options, providers=["CPUExecutionProvider"]), seconds


def _ort_encode(session, backbone, texts: np.ndarray, batch: int = 64) -> np.ndarray:
    x = backbone.prepare_inputs(texts)
    order = torch.argsort(backbone.input_lengths(x), stable=True)
    xs = x[order]
    outs = []
    for i in range(0, len(xs), batch):
        b = xs[i : i + batch]
        b = b[..., : int(b[:, 1].sum(1).max())]
        outs.append(session.run(None, {"x": b.numpy()})[0])
    out = np.concatenate(outs)
    return out[torch.argsort(order).numpy()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1114)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default=str(SMS))
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not Path(args.data).is_file():
        print(f"skipped: {args.data} not found")
        return
    torch.set_num_threads(args.threads)
    from transferlab.api import load
    from transferlab.artifacts import LoadedModel
    from transferlab.engine import prefix_features
    from transferlab.engine.evaluate import predict_logits
    from transferlab.models.head import HeadSpec, TransferModel
    from transferlab.prediction import predict_rows

    texts = _texts(Path(args.data), args.n)
    arr = np.array(texts, dtype=object)
    loaded = load("minilm")
    backbone = loaded.backbone.eval()
    st = backbone._sentence_transformer
    st.max_seq_length = backbone.max_length  # both cut texts at the same token count
    model = TransferModel(backbone, HeadSpec(num_outputs=2)).eval()
    finetuned = LoadedModel(path=loaded.path, config=loaded.config | {"kind": "finetuned", "label_names": ["ham", "spam"]},
                            backbone=backbone, model=model)
    names = [str(i) for i in range(len(texts))]
    paths = {
        "st.encode": lambda: st.encode(texts, batch_size=32),
        "evaluate": lambda: predict_logits(model, backbone.prepare_inputs(arr)),
        "predict": lambda: predict_rows(finetuned, arr, names, what="texts"),
        "feature cache": lambda: prefix_features(backbone, len(backbone.block_names), arr),
    }
    export_seconds = None
    if not args.no_onnx:
        tmp = Path(tempfile.mkdtemp(prefix="tl-ort-"))
        session, export_seconds = _ort_session(loaded, tmp)
        paths["onnxruntime"] = lambda: _ort_encode(session, backbone, arr)
    # equal outputs first (embeddings to 1e-5)
    reference = st.encode(texts[:50], batch_size=32)
    cache = prefix_features(backbone, len(backbone.block_names), arr[:50]).numpy()
    diffs = {"feature cache": float(np.abs(cache - reference).max())}
    if "onnxruntime" in paths:
        diffs["onnxruntime"] = float(np.abs(_ort_encode(session, backbone, arr[:50]) - reference).max())
    print(f"{len(texts)} texts, {args.threads} thread(s); max |embedding − st.encode| on 50 texts: {diffs}", flush=True)
    seconds: dict[str, list[float]] = {k: [] for k in paths}
    cpu: dict[str, list[float]] = {k: [] for k in paths}
    ratios: dict[str, list[float]] = {k: [] for k in paths if k != "st.encode"}
    cpu_ratios: dict[str, list[float]] = {k: [] for k in ratios}
    for r in range(args.rounds):
        order = list(paths) if r % 2 == 0 else list(reversed(paths))
        for name in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            paths[name]()
            seconds[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
        for name in ratios:
            ratios[name].append(seconds["st.encode"][-1] / seconds[name][-1])
            cpu_ratios[name].append(cpu["st.encode"][-1] / cpu[name][-1])
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}s ({cpu[k][-1]:.1f}s cpu)" for k, v in seconds.items()),
              flush=True)
    table = ["| path | texts/s, wall (median) | vs st.encode, wall | texts/s, CPU (median) | vs st.encode, CPU |",
             "|---|---|---|---|---|"]
    for name, secs in seconds.items():
        base = name == "st.encode"
        table.append(f"| {name} | {len(texts) / statistics.median(secs):.1f} | "
                     f"{'1.00× (baseline)' if base else f'{statistics.median(ratios[name]):.2f}×'} | "
                     f"{len(texts) / statistics.median(cpu[name]):.1f} | "
                     f"{'1.00× (baseline)' if base else f'{statistics.median(cpu_ratios[name]):.2f}×'} |")
    print("\n".join(table))
    if export_seconds is not None:
        print(f"onnxruntime: exporting the encoder took {export_seconds:.1f}s (paid once per model)")
    if args.json:
        print(json.dumps({"n": len(texts), "threads": args.threads, "seconds": seconds, "cpu_seconds": cpu,
                          "ratios": {k: statistics.median(v) for k, v in ratios.items()},
                          "cpu_ratios": {k: statistics.median(v) for k, v in cpu_ratios.items()}, "diffs": diffs,
                          "onnx_export_seconds": export_seconds}))


if __name__ == "__main__":
    main()
