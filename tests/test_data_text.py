"""Text datasets: CSV/JSONL readers, own test files, prediction inputs, and every error they can raise."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from transferlab.data import InputSpec, check_input_fits, load_inputs, load_task, split_task
from transferlab.errors import DataError, ShapeError

TREC = Path("/work/shared/data/trec")
ROWS = [(f"{word} example number {i}", word) for word in ("spam", "ham", "eggs") for i in range(10)]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def write_csv(path: Path, rows=ROWS, header="text,label") -> Path:
    body = "".join(f'"{t}",{y}\n' for t, y in rows)
    return write(path, f"{header}\n{body}")


def write_jsonl(path: Path, rows=ROWS) -> Path:
    return write(path, "".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))


def where(path: Path, line: int) -> str:
    """A regex for 'PATH: line N' at the start of a message."""
    return re.escape(f"{path}: line {line}")


# --- reading ------------------------------------------------------------------------------

@pytest.mark.parametrize("writer, suffix", [(write_csv, ".csv"), (write_jsonl, ".jsonl")])
def test_text_task_classes_counts_and_fixed_split(tmp_path, writer, suffix):
    path = writer(tmp_path / f"small{suffix}")
    task = load_task(str(path))
    assert task.input_spec == InputSpec("text", ()) and task.input_spec.describe() == "text"
    assert task.class_names == ["eggs", "ham", "spam"] and task.name == "small"
    assert task.x_pool.dtype == object and task.x_pool.ndim == 1
    assert all(type(x) is str for x in np.concatenate([task.x_pool, task.x_test]))
    assert len(task.x_pool) + len(task.x_test) == 30 and np.bincount(task.y_test).tolist() == [2, 2, 2]
    again = load_task(str(path))
    assert again.x_test.tolist() == task.x_test.tolist() and again.test_index.tolist() == task.test_index.tolist()
    assert task.preprocessing["text_column"] == "text" and task.preprocessing["label_column"] == "label"
    assert task.preprocessing["image_size"] is None and task.preprocessing["classes"] is None


def test_shots_per_class_come_from_the_pool_only(tmp_path):
    task = load_task(str(write_csv(tmp_path / "d.csv")))
    split = split_task(task, shots=3, seed=1)
    assert np.bincount(split.y_train).tolist() == [3, 3, 3]
    assert split.x_train.dtype == object
    assert not set(split.x_train) & set(task.x_test) and not set(split.x_train) & set(split.x_val)
    assert split_task(task, shots=3, seed=1).x_train.tolist() == split.x_train.tolist()


def test_class_selection_on_text(tmp_path):
    task = load_task(str(write_csv(tmp_path / "d.csv")), classes=["spam", "ham"])
    assert task.class_names == ["spam", "ham"] and task.preprocessing["classes"] == ["spam", "ham"]
    assert all(("spam" in t) == (y == 0) for t, y in zip(task.x_pool, task.y_pool))


def test_quoted_fields_with_commas_newlines_bom_and_extra_columns(tmp_path):
    rows = "".join(f'"hello, world {i}\nsecond line",a,x{i}\nplain {i},b,y{i}\n' for i in range(3))
    path = write(tmp_path / "q.csv", "text,label,source\n" + rows, encoding="utf-8-sig")
    task = load_task(str(path))
    texts = sorted(np.concatenate([task.x_pool, task.x_test]))
    assert texts[0] == "hello, world 0\nsecond line" and "plain 2" in texts
    assert task.class_names == ["a", "b"]
    # each i takes 3 lines (a quoted field spans two), so the bad row starts on line 11: errors name its first line
    bad = write(tmp_path / "qbad.csv", "text,label,source\n" + rows + '"multi\nline",,z\n')
    with pytest.raises(DataError, match=where(bad, 11) + r", column 'label' is empty"):
        load_task(str(bad))


def test_label_and_text_columns_can_be_renamed(tmp_path):
    path = write(tmp_path / "r.jsonl", "".join(json.dumps({"q": t, "y": y, "id": i}) + "\n" for i, (t, y) in enumerate(ROWS)))
    task = load_task(str(path), text_column="q", label_column="y")
    assert task.class_names == ["eggs", "ham", "spam"] and task.preprocessing["text_column"] == "q"


def test_test_data_is_the_own_test_split(tmp_path):
    train = write_csv(tmp_path / "train.csv")
    test = write_csv(tmp_path / "test.csv", rows=[("a new spam", "spam"), ("new ham", "ham"), ("more", "eggs")])
    task = load_task(str(train), test_data=str(test))
    assert task.class_names == ["eggs", "ham", "spam"]  # both files' labels, sorted
    assert task.x_test.tolist() == ["a new spam", "new ham", "more"] and task.y_test.tolist() == [2, 1, 0]
    bacon = write_csv(tmp_path / "bacon.csv", rows=[("more", "bacon")])  # a class no training row has
    with pytest.raises(DataError, match=r"class\(es\) 'bacon' \(1 test rows\) appear in the test data \(bacon.csv\) "
                                        r"but not in the training data"):
        load_task(str(train), test_data=str(bacon))
    assert len(task.x_pool) == 30 and task.x_pool.dtype == object and task.x_test.dtype == object
    jsonl_test = write_jsonl(tmp_path / "test.jsonl", rows=[("x", "ham")])
    assert load_task(str(train), test_data=str(jsonl_test)).x_test.tolist() == ["x"]


@pytest.mark.skipif(not (TREC / "train.csv").exists(), reason="shared TREC data not present")
def test_trec_reference_set():
    task = load_task(str(TREC / "train.csv"), test_data=str(TREC / "test.csv"))
    assert (len(task.x_pool), len(task.x_test)) == (5452, 500)
    assert task.class_names == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert task.x_test[0] == "How far is it from Denver to Aspen ?"


# --- errors -------------------------------------------------------------------------------

def test_empty_text_names_the_line(tmp_path):
    csv_path = write(tmp_path / "e.csv", "text,label\nfine,a\n  ,b\n")
    with pytest.raises(DataError, match=where(csv_path, 3) + r", column 'text' is empty; every example needs a text"):
        load_task(str(csv_path))
    jsonl = write(tmp_path / "e.jsonl", '{"text": "ok", "label": "a"}\n\n{"text": " ", "label": "b"}\n')
    with pytest.raises(DataError, match=where(jsonl, 3) + r", key 'text' is empty"):
        load_task(str(jsonl))


@pytest.mark.parametrize("line, message", [
    ('{"text": "t"}', r" has no key 'label'; keys present: text\. Give every line a label"),
    ('{"text": "t", "label": null}', r", key 'label' is null; every example needs a label"),
    ('{"text": "t", "label": " "}', r", key 'label' is empty; every example needs a label"),
    ('{"text": "t", "label": [1]}', r", key 'label' is a JSON array; a label must be"),
    ('{"label": "a"}', r" has no key 'text'; keys present: label\. Pass --text-column NAME"),
    ('{"text": 3, "label": "a"}', r", key 'text' is a JSON number, not a string"),
    ('{"text": "t", label: "a"}', r" is not valid JSON \(Expecting property name .* at column 15\); each line must be one JSON object"),
    ('["t", "a"]', r" is a JSON array, not an object; each line must be one JSON object"),
])
def test_jsonl_errors_name_the_line(tmp_path, line, message):
    path = write(tmp_path / "bad.jsonl", '{"text": "ok", "label": "a"}\n' + line + "\n")
    with pytest.raises(DataError, match=where(path, 2) + message):
        load_task(str(path))


def test_csv_missing_label_cell_and_columns(tmp_path):
    empty_label = write(tmp_path / "l.csv", "text,label\nfine,a\nno label here,\n")
    with pytest.raises(DataError, match=where(empty_label, 3) + r", column 'label' is empty; every example needs a label"):
        load_task(str(empty_label))
    no_label = write(tmp_path / "n.csv", "text,category\nhi,a\n")
    with pytest.raises(DataError, match=where(no_label, 1) + r" \(header\) has no label column 'label'; columns "
                       r"present: text, category\. Pass --label-column NAME"):
        load_task(str(no_label))
    fields = write(tmp_path / "f.csv", "text,label\nhello, world,a\n")
    with pytest.raises(DataError, match=where(fields, 2) + r" has 3 fields but the header \(line 1\) has 2 .* Quote text"):
        load_task(str(fields))


def test_test_data_without_the_text_column(tmp_path):
    train = write_csv(tmp_path / "train.csv")
    test = write(tmp_path / "test.csv", "sentence,label\nhi,ham\n")
    with pytest.raises(DataError, match=where(test, 1) + r" \(header\) has no text column 'text'; columns present: "
                       r"sentence, label\. Pass --text-column NAME"):
        load_task(str(train), test_data=str(test))
    with pytest.raises(DataError, match=r"missing.csv' \(test_data\): no such file"):
        load_task(str(train), test_data=str(tmp_path / "missing.csv"))


def test_not_utf8_names_byte_and_line(tmp_path):
    path = write(tmp_path / "latin.csv", "text,label\ncafé,a\n", encoding="latin-1")
    with pytest.raises(DataError, match=re.escape(f"{path}: not valid UTF-8 at byte 14 (line 2)") + r".*save the file as UTF-8"):
        load_task(str(path))
    utf16 = write(tmp_path / "u16.jsonl", '{"text": "t", "label": "a"}\n', encoding="utf-16")
    with pytest.raises(DataError, match=r"u16.jsonl: not valid UTF-8 at byte 0 \(line 1\).*looks like UTF-16"):
        load_task(str(utf16))


def test_no_rows(tmp_path):
    csv_path = write(tmp_path / "h.csv", "text,label\n\n")
    with pytest.raises(DataError, match=re.escape(f"{csv_path}: CSV has a header (line 1) but no rows")):
        load_task(str(csv_path))
    jsonl = write(tmp_path / "h.jsonl", "\n  \n")
    with pytest.raises(DataError, match=re.escape(f"{jsonl}: holds no JSON lines (empty dataset)")):
        load_task(str(jsonl))


@pytest.mark.parametrize("kwargs, message", [
    ({"image_size": 28}, r"holds text, not images; image_size/image_margin apply to images only"),
    ({"image_margin": 2}, r"holds text, not images"),
    ({"target": "numeric"}, r"text regression is not supported\)\. Drop --target numeric"),
])
def test_options_that_do_not_apply_to_text(tmp_path, kwargs, message):
    with pytest.raises(DataError, match=r"d.csv .*" + message):
        load_task(str(write_csv(tmp_path / "d.csv")), **kwargs)


def test_test_data_refused_for_non_text_sources(tmp_path):
    path = tmp_path / "v.npz"
    np.savez(path, x=np.zeros((6, 2)), y=np.repeat([0, 1], 3))
    with pytest.raises(DataError, match=r"v.npz: test_data \(--test-data\) is read for text datasets only"):
        load_task(str(path), test_data=str(write_csv(tmp_path / "t.csv")))


def test_feature_csv_with_a_text_cell_hints_text_column(tmp_path):
    path = write(tmp_path / "s.csv", "sentence,label\nhello,a\n")
    with pytest.raises(DataError, match=r"line 2, column 'sentence' is 'hello', not a number.*--text-column sentence"):
        load_task(str(path))


# --- prediction inputs and fit ------------------------------------------------------------

def test_load_inputs_text_files(tmp_path):
    x, names = load_inputs(write(tmp_path / "q.txt", "first question\n\n  second one  \n"))
    assert x.dtype == object and x.tolist() == ["first question", "second one"] and names == ["line 1", "line 3"]
    x, names = load_inputs(write_jsonl(tmp_path / "q.jsonl", rows=[("a", "x"), ("b", "y")]))
    assert x.tolist() == ["a", "b"] and names == ["line 1", "line 2"]
    x, names = load_inputs(write(tmp_path / "q.csv", 'id,text\n1,"one, two"\n2,three\n'))
    assert x.tolist() == ["one, two", "three"] and names == ["line 2", "line 3"]
    prep = {"text_column": "question", "image_size": None, "image_margin": None}
    x, _ = load_inputs(write(tmp_path / "p.csv", "question\nwhy?\n"), preprocessing=prep)
    assert x.tolist() == ["why?"]
    with pytest.raises(DataError, match=where(tmp_path / "q.csv", 1) + r" \(header\) has no text column 'question'"):
        load_inputs(tmp_path / "q.csv", preprocessing=prep)
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'e.txt'}: holds no text")):
        load_inputs(write(tmp_path / "e.txt", "\n \n"))


def test_check_input_fits_text_vs_image(tmp_path):
    task = load_task(str(write_csv(tmp_path / "d.csv")))
    check_input_fits(task, InputSpec("text", ()), model_name="models/minilm")
    with pytest.raises(ShapeError, match=r"d gives text inputs but the pretrained model 'models/cnn' expects "
                       r"1×28×28 images.*Use a text backbone such as minilm"):
        check_input_fits(task, InputSpec("image", (1, 28, 28)), model_name="models/cnn")
    with pytest.raises(ShapeError, match=r"gives 4-feature vector inputs but the pretrained model 'models/minilm' "
                       r"takes text; this model takes text"):
        check_input_fits(InputSpec("vector", (4,)), InputSpec("text", ()), model_name="models/minilm")


def test_text_input_spec_round_trips():
    spec = InputSpec("text", ())
    assert spec.to_dict() == {"kind": "text", "shape": []} and InputSpec.from_dict(spec.to_dict()) == spec
