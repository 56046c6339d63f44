"""Benchmark: the seed's own tf.keras code vs transferlab, on the same MNIST-5k split, in one process.

The Keras side is the seed article's example (§4.2–4.3) verbatim: the same Sequential model,
`compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])` and
`fit(train_images, train_labels, epochs=5)` — only `verbose=0` is added so progress printing does not
count against Keras. transferlab trains the same network (mlp 784-128 relu, dropout 0.2; Adam 1e-3;
batch 32; 5 epochs) with its defaults (1 thread). Both run alternately for several rounds; each
side's time is its whole fit call. Needs tensorflow-cpu: `make bench-keras` installs it into a
separate venv (.venv-keras) and runs this; without tensorflow it prints a skip line and exits 0.

    python benchmarks/keras_seed.py [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def keras_seed(tf, train_images, train_labels, test_images, test_labels) -> tuple[float, float]:
    """The seed's code; returns (samples/s of fit, test accuracy)."""
    model = tf.keras.Sequential([
        tf.keras.layers.Flatten(input_shape=(28, 28)),
        tf.keras.layers.Dense(128, activation='relu'),
        tf.keras.layers.Dropout(0.2),
        tf.keras.layers.Dense(10, activation='softmax')
    ])
    model.compile(optimizer='adam',
                  loss='sparse_categorical_crossentropy',
                  metrics=['accuracy'])
    start = time.perf_counter()
    model.fit(train_images, train_labels, epochs=5, verbose=0)
    seconds = time.perf_counter() - start
    _, acc = model.evaluate(test_images, test_labels, verbose=0)
    return 5 * len(train_images) / seconds, float(acc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        import tensorflow as tf
    except ImportError:
        print("skipped: tensorflow is not installed here (`make bench-keras` installs it into .venv-keras)")
        return
    from transferlab.api import train_run
    from transferlab.data import load_task, split_task
    from transferlab.engine import TrainConfig
    from transferlab.models import create_backbone
    from transferlab.strategies import create_strategy

    split = split_task(load_task("mnist5k"), shots=None, seed=0)
    train_images, train_labels = split.x_train[:, 0], split.y_train  # (N, 28, 28) in [0, 1], as the seed's /255.0
    test_images, test_labels = split.x_test[:, 0], split.y_test
    ours, theirs = [], []
    for r in range(args.rounds):
        theirs.append(keras_seed(tf, train_images, train_labels, test_images, test_labels))
        backbone = create_backbone("mlp", split.task.input_spec, hidden=[128], activation="relu", dropout=0.2)
        _, run, metrics = train_run(backbone, split, create_strategy("scratch"), TrainConfig(epochs=5, batch_size=32, seed=r))
        ours.append((run.samples_seen / run.train_seconds, metrics["accuracy"]))
    figures = {
        "transferlab_samples_per_s": statistics.median(s for s, _ in ours),
        "keras_samples_per_s": statistics.median(s for s, _ in theirs),
        "transferlab_accuracy": statistics.fmean(a for _, a in ours),
        "keras_accuracy": statistics.fmean(a for _, a in theirs),
        "tensorflow": tf.__version__, "rounds": args.rounds,
    }
    figures["ratio"] = figures["transferlab_samples_per_s"] / figures["keras_samples_per_s"]
    if args.json:
        print(json.dumps(figures))
        return
    print(f"the seed's Keras MLP vs transferlab, MNIST-5k ({len(train_labels)} train), 5 epochs, batch 32, "
          f"{args.rounds} alternating rounds (TensorFlow {tf.__version__}, its default threads; transferlab 1 thread)\n")
    print("| trainer | samples/s (median) | test accuracy (mean) |")
    print("|---|---:|---:|")
    print(f"| transferlab | {figures['transferlab_samples_per_s']:,.0f} | {figures['transferlab_accuracy']:.4f} |")
    print(f"| seed's tf.keras code | {figures['keras_samples_per_s']:,.0f} | {figures['keras_accuracy']:.4f} |")
    print(f"\nratio transferlab / Keras: {figures['ratio']:.2f} (goal ≥ 3.5)")


if __name__ == "__main__":
    main()
