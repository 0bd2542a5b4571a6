"""The real GLUE files of ``../shared/assets`` load with their published row and label counts (GLUE's own
numbers, in ``glue/PROVENANCE.md``); skipped with a reason where the assets are absent."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from dfkd.assets import assets_dir
from dfkd.tasks import get_task, load_task

#: task -> split -> (rows, label counts by class index, or (mean score) for STS-B)
EXPECTED = {
    "sst2": {"train": (67349, {1: 37569, 0: 29780}), "dev": (872, {1: 444, 0: 428})},
    "cola": {"train": (8551, {1: 6023, 0: 2528}), "dev": (1043, {1: 721, 0: 322})},
    "mrpc": {"train": (3668, {1: 2474, 0: 1194}), "dev": (408, {1: 279, 0: 129})},
    "rte": {"train": (2490, {0: 1249, 1: 1241}), "dev": (277, {0: 146, 1: 131})},  # 0 = entailment
    "wnli": {"train": (635, {0: 323, 1: 312}), "dev": (71, {0: 40, 1: 31})},
    "stsb": {"train": (5749, 2.70100), "dev": (1500, 2.36391)},
}


@pytest.mark.parametrize("task", list(EXPECTED))
@pytest.mark.parametrize("split", ["train", "dev"])
def test_real_glue_file_counts(task, split):
    spec = get_task(task)
    folder = assets_dir() / "glue" / spec.glue_dir if assets_dir() else None
    if folder is None or not (folder / spec.files[split]).is_file():
        pytest.skip(f"glue/{spec.glue_dir} is not in the shared assets (set DFKD_ASSETS)")
    ds = load_task(spec, split, folder)
    rows, labels = EXPECTED[task][split]
    assert len(ds) == rows
    assert ds.column_names == (["text", "text_pair", "label"] if spec.pair else ["text", "label"])
    if spec.is_regression:
        scores = np.asarray(ds["label"])
        assert scores.min() >= 0 and scores.max() <= 5 and scores.mean() == pytest.approx(labels, abs=5e-6)
    else:
        assert dict(Counter(ds["label"])) == labels
    assert all(t.strip() for t in ds["text"])


def test_real_stsb_dev_genres_as_an_extra_column():
    spec = get_task("stsb")
    folder = assets_dir() / "glue" / spec.glue_dir if assets_dir() else None
    if folder is None or not (folder / spec.files["dev"]).is_file():
        pytest.skip(f"glue/{spec.glue_dir} is not in the shared assets (set DFKD_ASSETS)")
    ds = load_task(spec, "dev", folder, extra_columns=["genre"])
    assert ds.column_names == ["text", "text_pair", "label", "genre"]
    # STS-B's dev genres (GLUE's file; dev spells the forum genre main-forums, train main-forum)
    assert dict(Counter(ds["genre"])) == {"main-captions": 625, "main-forums": 375, "main-news": 500}
    assert load_task(spec, "dev", folder)["label"] == ds["label"]
