"""The model card (README.md) written into every model folder."""

from __future__ import annotations

from typing import Any


def _task_line(task: dict[str, Any] | None) -> str:
    if not task:
        return "n/a"
    if task.get("kind") == "rl":  # an environment, not a dataset (transferlab.rl)
        opts = ", ".join(f"{k}={v}" for k, v in sorted((task["env"].get("options") or {}).items()))
        return (f"environment `{task['env']['id']}`" + (f" with {opts}" if opts else "")
                + f" ({task.get('steps', '?')} steps of {task.get('algorithm', '?')}, seed {task.get('seed', '?')})")
    classes = ", ".join(task.get("label_names", []))
    return f"`{task.get('data')}` ({task.get('n_train', '?')} training examples; classes: {classes})"


def model_card(config: dict[str, Any]) -> str:
    """Render a short, honest model card from config.json."""
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
        f"- Input: {config['input_spec']['kind']} of shape {config['input_spec']['shape']}; "
        f"preprocessing {config.get('preprocessing', {})}",
        f"- Source task: {_task_line(config.get('source_task'))}",
    ]
    if config.get("origin"):
        lines.append(f"- Origin: {config['origin']} — weights copied unchanged; loaded by path, offline")
    if kind == "finetuned":
        training = config.get("training", {})
        lines.append(f"- Target task: {_task_line(config.get('target_task'))}")
        lines.append(f"- Strategy: `{training.get('strategy')}` {training.get('strategy_options', {})}")
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
