"""The model card (README.md) written into every model folder and every Hugging Face export.

The card opens with the Hugging Face YAML metadata header (library_name, tags, base_model, datasets,
metrics and a model-index with the test-split figures), so the hub and `huggingface_hub.ModelCard`
read it; `card_metadata` builds that header from config.json, the same for folders and exports.
"""

from __future__ import annotations

from typing import Any

def _base_model(backbone: str) -> str | None:
    """The Hugging Face Hub id of a backbone's original weights (the card's base_model), as its registry entry
    declares it; None for other backbones and user modules."""
    from ..models import list_backbones
    from ..models.registry import backbone_entry

    return backbone_entry(backbone).base_model if backbone in list_backbones() else None


def _task_line(task: dict[str, Any] | None) -> str:
    if not task:
        return "n/a"
    if task.get("kind") == "rl":  # an environment, not a dataset (transferlab.rl)
        opts = ", ".join(f"{k}={v}" for k, v in sorted((task["env"].get("options") or {}).items()))
        return (f"environment `{task['env']['id']}`" + (f" with {opts}" if opts else "")
                + f" ({task.get('steps', '?')} steps of {task.get('algorithm', '?')}, seed {task.get('seed', '?')})")
    classes = ", ".join(task.get("label_names") or [])
    examples = task.get("n_train")
    parts = [f"{examples} training examples" if isinstance(examples, int) else None,
             f"classes: {classes}" if classes else ("numeric target" if task.get("target") == "numeric" else None)]
    detail = "; ".join(p for p in parts if p)
    return f"`{task.get('data')}`" + (f" ({detail})" if detail else "")


def _input_line(config: dict[str, Any]) -> str:
    spec = config["input_spec"]
    arch = config["architecture"]["backbone"] or {}
    if spec["kind"] == "text":
        limit = (arch.get("config") or {}).get("max_length")
        return "text (strings, tokenized by the encoder's own tokenizer" + (f", at most {limit} tokens)" if limit else ")")
    if spec["kind"] == "image":
        return f"images of shape {'×'.join(str(d) for d in spec['shape'])} (channels × height × width)"
    return f"vectors of {spec['shape'][0]} features"


def _pipeline_tag(config: dict[str, Any]) -> str:
    text = config["input_spec"]["kind"] == "text"
    if config["kind"] == "pretrained":
        return "feature-extraction" if text else "image-feature-extraction" if config["input_spec"]["kind"] == "image" \
            else "tabular-classification"
    if config.get("target") == "numeric":
        return "text-classification" if text else "tabular-regression"
    return {"text": "text-classification", "image": "image-classification"}.get(config["input_spec"]["kind"],
                                                                              "tabular-classification")


def card_metadata(config: dict[str, Any], *, library_name: str = "transferlab", extra_tags: tuple[str, ...] = ()) -> dict[str, Any]:
    """The YAML header of a model card: what the hub and `huggingface_hub.ModelCardData` read.

    `metrics` names the metrics; `model-index` holds their test-split values for the task the model
    was trained on (a fine-tuned model: its target task; a pretrained one: its source task).
    """
    arch = config["architecture"]["backbone"] or {}
    finetuned = config["kind"] == "finetuned"
    task = (config.get("target_task") if finetuned else config.get("source_task")) or {}
    training = config.get("training") or {}
    pipeline = _pipeline_tag(config)
    tags = ["transferlab", "transfer-learning", config["kind"], config["input_spec"]["kind"], *extra_tags]
    if finetuned and training.get("strategy"):
        tags.append(f"strategy-{training['strategy']}")
    meta: dict[str, Any] = {"library_name": library_name, "pipeline_tag": pipeline, "tags": tags}
    base = _base_model(arch.get("name", ""))
    if base:
        meta["base_model"] = base
    data = task.get("data")
    if data:
        meta["datasets"] = [str(data)]
    metrics = config.get("metrics") or {}
    prefix = "test_" if finetuned else "source_test_"
    names = {"accuracy": ("accuracy", "test accuracy"), "macro_f1": ("f1", "test macro-F1"),
             "mse": ("mse", "test MSE"), "mae": ("mae", "test MAE"), "r2": ("r2", "test R²")}
    found = [(key, metrics[prefix + key]) for key in names if isinstance(metrics.get(prefix + key), (int, float))]
    if found:
        meta["metrics"] = [names[k][0] for k, _ in found]
        if data:
            meta["model-index"] = [{
                "name": str(config.get("name") or "transferlab-model"),
                "results": [{
                    "task": {"type": pipeline},
                    "dataset": {"name": str(data), "type": str(data), "split": "test"},
                    "metrics": [{"type": names[k][0], "value": float(v), "name": names[k][1],
                                 **({"args": {"average": "macro"}} if k == "macro_f1" else {})} for k, v in found],
                }],
            }]
    return meta


def yaml_header(meta: dict[str, Any]) -> str:
    """`---` YAML `---`, as Hugging Face model cards begin."""
    import yaml

    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def model_card(config: dict[str, Any]) -> str:
    """Render a short, honest model card from config.json: the YAML metadata header, then the text."""
    return yaml_header(card_metadata(config)) + "\n" + card_body(config)


def _kept_line(training: dict[str, Any]) -> list[str]:
    """The card's line for entries training held at their pretrained values (models/pinning.py), if any."""
    if not training.get("kept_switched_off"):
        return []
    kept = "; ".join(f"`{name}` {entries}" for name, entries in training["kept_switched_off"].items())
    return [f"- Kept switched off while the encoder trained (held at their pretrained ~0): {kept} — the pretrained "
            "encoder never uses these output coordinates, and keeping them off lets `export --format hf` write a "
            "plain BertForSequenceClassification"]


def card_body(config: dict[str, Any]) -> str:
    """The card's text below its metadata header."""
    kind = config["kind"]
    arch = config["architecture"]["backbone"]
    arch_txt = f"`{arch['name']}` {arch['config']}" if arch else "a wrapped user module (code not stored)"
    metrics = config.get("metrics", {})
    metric_lines = "\n".join(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items())
    what = (
        "a **pretrained backbone**: input and hidden layers, no output layer (tensors `backbone.*`)"
        if kind == "pretrained"
        else "a **fine-tuned model**: backbone and task head (tensors `backbone.*`, `head.*`)"
    )
    lines = [
        f"# transferlab model: {config.get('name', '')}".rstrip(),
        "",
        f"This folder holds {what}.",
        "",
        f"- Backbone: {arch_txt}; feature size {config['architecture']['feature_dim']}",
        f"- Input: {_input_line(config)}; preprocessing {config.get('preprocessing', {})}",
        f"- Source task: {_task_line(config.get('source_task'))}",
    ]
    if config.get("origin"):
        lines.append(f"- Origin: {config['origin']} — weights copied unchanged; loaded by path, offline")
    if kind == "finetuned":
        training = config.get("training", {})
        lines.append(f"- Target task: {_task_line(config.get('target_task'))}")
        lines.append(f"- Strategy: `{training.get('strategy')}` {training.get('strategy_options', {})}")
    lines += _kept_line(config.get("training") or {})
    lines += [
        f"- Blocks (input side first): {', '.join(b['name'] for b in config['blocks'])}",
        f"- Weights: `model.safetensors`, sha256 `{config['weights']['sha256']}`",
        *([f"- Source head (the pretraining output layer, kept for LEEP and forgetting; not part of the backbone): "
           f"`{config['source_head']['file']}`, sha256 `{config['source_head']['sha256']}`"]
          if config.get("source_head") else []),
        f"- Made with transferlab {config['versions']['transferlab']}, torch {config['versions']['torch']}",
        "",
        "## Metrics",
        "",
        "| metric | value |",
        "|---|---|",
        metric_lines or "| (none) | |",
        "",
        "## How to load",
        "",
        "```python",
        "import transferlab",
        "model = transferlab.load(\"path/to/this/folder\")  # verifies the sha256 first; no pickles",
        "```",
        "",
        ("or fine-tune the agent: `transferlab finetune path/to/this/folder --env ENV --strategy partial --out OUT`."
         if config.get("task_kind") == "rl" else
         "or fine-tune it: `transferlab finetune path/to/this/folder --data DATA --strategy partial --out OUT`.")
        if kind == "pretrained"
        else "or evaluate it: `transferlab evaluate path/to/this/folder --data DATA`."
        if config.get("task_kind") != "rl"
        else "or adapt it further: `transferlab finetune path/to/this/folder --env ENV --out OUT`.",
        "",
    ]
    return "\n".join(lines)
