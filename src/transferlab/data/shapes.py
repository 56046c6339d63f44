"""Does a task's input fit a backbone? A ShapeError that says how to make it fit."""

from __future__ import annotations

from transferlab.data.task import InputSpec, Task, TaskSplit
from transferlab.errors import ShapeError


def _dims(spec: InputSpec) -> str:
    return "×".join(str(s) for s in spec.shape)


def _phrase(spec: InputSpec) -> str:
    if spec.kind == "text":
        return "text"
    if spec.kind == "vector":
        return f"{spec.shape[0]}-feature vector"
    return f"{_dims(spec)} image"


def check_input_fits(
    task_or_spec: Task | TaskSplit | InputSpec, expected: InputSpec, *, model_name: str, data_name: str | None = None,
    model_role: str = "pretrained model",
) -> None:
    """Raise ShapeError when the data's inputs differ from the inputs a pretrained model expects.

    Example:
        >>> from transferlab.data import load_task
        >>> check_input_fits(load_task("digits"), InputSpec("image", (1, 28, 28)), model_name="models/src")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        ShapeError: digits gives 1×8×8 image inputs but the pretrained model 'models/src' expects ...
    """
    if isinstance(task_or_spec, TaskSplit):
        task_or_spec = task_or_spec.task
    if isinstance(task_or_spec, Task):
        spec, name = task_or_spec.input_spec, data_name or task_or_spec.name
    else:
        spec, name = task_or_spec, data_name or "the data"
    if spec == expected or spec.kind == expected.kind == "text":
        return
    if expected.any_size and spec.kind == "image" and spec.shape[0] in (1, 3):
        return  # the model crops, resizes and converts grayscale itself
    if "text" in (spec.kind, expected.kind):
        _raise_text_mismatch(spec, expected, name, model_name, model_role)
    said = f"{name} gives {_phrase(spec)} inputs but the {model_role} '{model_name}' expects {_phrase(expected)}s"
    if spec.kind != expected.kind:
        raise ShapeError(
            f"{said}; a model pretrained on {expected.kind}s cannot read {spec.kind}s. "
            f"Use a dataset of {expected.kind}s or a backbone made for {spec.kind} inputs"
        )
    if spec.kind == "vector":
        raise ShapeError(
            f"{said}; give data with exactly {expected.shape[0]} feature columns (same order as the source task) "
            f"or use a backbone made for {spec.shape[0]} features"
        )
    (c, h, w), (ec, eh, ew) = spec.shape, expected.shape
    if expected.any_size:
        raise ShapeError(f"{name} gives {_phrase(spec)} inputs but the pretrained model '{model_name}' takes images "
                         f"of any size with 1 or 3 channels (it runs at {_dims(expected)}); convert the images to "
                         "RGB or grayscale")
    fixes = []
    if c != ec:
        fixes.append("convert the images to grayscale" if ec == 1 else f"convert the images to {ec} channels (RGB)")
    if (h, w) != (eh, ew):
        if eh == ew:
            fix = f"pass --image-size {eh}"
            if eh == 28:
                fix += " (add --image-margin 4 to frame digits like MNIST)"
        else:
            fix = f"resize the images to {eh}×{ew} (height×width) before loading"
        fixes.append(fix)
    raise ShapeError(f"{said}; {' and '.join(fixes)}")


def _raise_text_mismatch(spec: InputSpec, expected: InputSpec, name: str, model_name: str, model_role: str) -> None:
    """Text on a model for images/vectors, or the other way round: no reshaping fixes that."""
    if spec.kind == "text":
        raise ShapeError(
            f"{name} gives text inputs but the {model_role} '{model_name}' expects {_phrase(expected)}s; "
            f"a model for {expected.kind}s cannot read text. Use a text backbone such as minilm"
        )
    raise ShapeError(
        f"{name} gives {_phrase(spec)} inputs but the {model_role} '{model_name}' takes text; this model "
        f"takes text, so give a text dataset (.csv with a text column, or .jsonl) or use a backbone made for "
        f"{spec.kind}s"
    )


def spec_of_inputs(x) -> InputSpec:
    """The InputSpec of loaded inputs: texts (N,) of str, vectors (N, D), images (N, C, H, W)."""
    if x.dtype.kind in "OUS":
        return InputSpec("text", ())
    if x.ndim == 2:
        return InputSpec("vector", (int(x.shape[1]),))
    if x.ndim == 3:
        return InputSpec("image", (1, int(x.shape[1]), int(x.shape[2])))
    return InputSpec("image", tuple(int(s) for s in x.shape[1:]))
