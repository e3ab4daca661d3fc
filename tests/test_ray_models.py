"""Ray workers re-create real models from their reference: torchvision weights by name and
a Hugging Face folder.

A :class:`~xai_core.evaluation.ModelRef` made from ``--arch r3d_18 --weights
KINETICS400_V1`` or ``--hf FOLDER`` holds names and paths, never the network: every Ray
worker loads the model itself, through torchvision's weights API or transformers. Nothing
is downloaded: ``TORCH_HOME`` points at a temporary folder holding random r3d_18 weights
under the exact file name torchvision expects (as ``test_pretrained.py`` does), the
Hugging Face model is a tiny random VideoMAE (``tiny_transformers.py``) read with
``HF_HUB_OFFLINE=1``. Both are set before the module's one local Ray starts, whose workers
inherit them. One synthetic clip per run, Grad-CAM only.
"""

from __future__ import annotations

import json
import pickle
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from helpers import evaluation_records, put_random_weights
from tiny_transformers import LABELS, save_hf

from xai_core.evaluation import ModelRef, run_evaluation, run_evaluation_ray, synthetic_items
from xai_core.evaluation.ray_engine import LOCAL_OBJECT_STORE, RayWorkerError
from xai_core.models.pretrained import resolve_weights, weights_file
from xai_core.models.registry import LoadedModel
from xai_core.predict import class_probabilities
from xai_core.video.clip import load_clip

ray = pytest.importorskip("ray")
pytest.importorskip("transformers")
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread"),
              pytest.mark.timeout(240)]

METHODS = ["gradcam"]
METRICS = ["selectivity", "motion_share"]
ITEMS = synthetic_items(1, size=32, num_frames=8)
KW = {"metrics": METRICS, "show_progress": False, "report": False}


@pytest.fixture(scope="module")
def offline_ray(tmp_path_factory) -> Iterator[Path]:
    """Random r3d_18 weights in a private torch hub cache, a tiny VideoMAE folder, no
    network, and a local Ray started afterwards (its workers inherit the environment);
    returns the folder holding the Hugging Face model."""
    root = tmp_path_factory.mktemp("ray-models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(root / "torch"))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)

        def no_network(url, dst, *args, **kwargs):
            raise urllib.error.URLError("no network (test)")

        mp.setattr(torch.hub, "download_url_to_file", no_network)
        put_random_weights("r3d_18", "KINETICS400_V1")
        save_hf(root, "videomae")
        ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False,
                 object_store_memory=LOCAL_OBJECT_STORE)
        try:
            yield root
        finally:
            ray.shutdown()


def _run_on_ray(ref: ModelRef, out: Path) -> tuple[LoadedModel, dict]:
    """One synthetic clip evaluated by one Ray worker; the model loaded here and the
    worker's record."""
    # the reference travels, not the network: a few hundred bytes of names and paths
    assert len(pickle.dumps(ref)) < 2000 and ref.spec is None
    model = ref.load(device="cpu")
    result = run_evaluation_ray(ref, ITEMS, METHODS, out, workers=1, model=model, **KW)
    assert (result.computed, result.failed) == (1, 0)
    settings = json.loads((out / "settings.json").read_text())
    assert settings["engine"] == "ray" and settings["model"] == ref.describe()
    (record,) = evaluation_records(out).values()
    return model, record


def test_ray_workers_load_torchvision_weights_by_name(offline_ray, tmp_path):
    ref = ModelRef.of(arch="r3d_18", weights="KINETICS400_V1")
    assert ref.describe() == {"arch": "r3d_18", "weights": "KINETICS400_V1"}
    model, record = _run_on_ray(ref, tmp_path / "ray")
    # the worker's network is this one: same weights, so the same prediction of the clip
    item = ITEMS[0].rebuilt()
    clip = load_clip(item.source, model.input, name=item.clip_id)
    probabilities = class_probabilities(model, clip.tensor)[0]
    assert record["predicted"] == int(probabilities.argmax())
    assert record["predicted_name"] == model.class_names[record["predicted"]] == \
        resolve_weights("r3d_18", "KINETICS400_V1").meta["categories"][record["predicted"]]
    assert record["target_probability"] == pytest.approx(float(probabilities.max()), abs=1e-5)


def test_ray_workers_load_a_hugging_face_folder(offline_ray, tmp_path, monkeypatch):
    monkeypatch.chdir(offline_ray)  # a relative folder is made absolute for the workers
    ref = ModelRef.of(hf="videomae")
    assert ref.hf == str(offline_ray / "videomae")
    model, record = _run_on_ray(ref, tmp_path / "ray")
    # the same record, number by number, as the in-process engine's
    run_evaluation(model, ITEMS, METHODS, tmp_path / "local", model_ref=ref, **KW)
    assert evaluation_records(tmp_path / "local") == {record["clip_id"]: record}
    assert record["predicted_name"] in LABELS


def test_a_worker_reads_the_weights_file_itself(offline_ray, tmp_path):
    """The model loaded here is not what workers get: with the weights file damaged after
    it was loaded, the worker's own load fails and the run stops naming the file."""
    ref = ModelRef.of(arch="r3d_18", weights="KINETICS400_V1")
    model = ref.load(device="cpu")
    path = weights_file(resolve_weights("r3d_18", "KINETICS400_V1"))
    good = path.read_bytes()
    try:
        path.write_bytes(b"not a checkpoint")
        with pytest.raises(RayWorkerError, match="could not load the model") as info:
            run_evaluation_ray(ref, ITEMS, METHODS, tmp_path / "ray", workers=1, model=model,
                               **KW)
        assert path.name in str(info.value)
    finally:
        path.write_bytes(good)
