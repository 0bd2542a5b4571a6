"""The probe scripts' own helpers (scripts/ is not a package: each script is loaded from its file)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from dfkd.errors import DfkdError

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stsb_genres_merges_the_forum_spellings_and_scores_pearson_per_genre(tmp_path):
    probe = _script("probe_stsb_genres")
    (tmp_path / "dev.tsv").write_text(
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
        + "".join(f"{i}\t{g}\tf\t2012\t{i}\tnone\tnone\ta\tb\t1.0\n"
                  for i, g in enumerate(["main-news", "main-forums", "main-captions", "main-forum", "main-news",
                                         "main-captions"])), encoding="utf-8")
    dev, genres = probe.load_dev_with_genres(tmp_path)
    assert genres.tolist() == ["main-news", "main-forum", "main-captions", "main-forum", "main-news", "main-captions"]
    assert dev.column_names == ["text", "text_pair", "label"] and dev["label"] == [1.0] * 6
    (tmp_path / "dev.tsv").write_text("index\tsentence1\tsentence2\tscore\n0\ta\tb\t1.0\n", encoding="utf-8")
    with pytest.raises(DfkdError, match=r"missing column\(s\) \[.genre.\]"):
        probe.load_dev_with_genres(tmp_path)

    # three rows per genre; Pearson by hand: a: x = 1, 2, 3 vs y = 1, 2, 4 -> 0.9820; b: y = 3, 2, 1 -> -1
    scores = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    reference = np.array([1.0, 2.0, 4.0, 3.0, 2.0, 1.0])
    out = probe.by_genre(scores, reference, np.array(["a", "a", "a", "b", "b", "b"]))
    assert out["a"] == pytest.approx(0.982, abs=5e-4)
    assert out["b"] == -1.0
    assert out["all"] == pytest.approx(round(float(np.corrcoef(scores, reference)[0, 1]), 3))
