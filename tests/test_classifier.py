"""genlib.classifier: shapes, file round trip, a smoke train, and the shipped weights' accuracy."""
from __future__ import annotations

import pytest
import torch

from genlib import classifier as C
from genlib.data import load_dataset


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_shapes(shape):
    model = C.Classifier(C.default_config(shape, 10)).eval()
    x = torch.rand(4, *shape)
    assert model.features(x).shape == (4, 128)
    assert model(x).shape == (4, 10)
    assert torch.allclose(model.head(model.features(x)), model(x))   # eval: dropout off


@pytest.mark.hostile
def test_config_rejects_too_many_stages():
    with pytest.raises(ValueError, match="side"):
        C.ClassifierConfig(data_shape=(1, 8, 8), widths=(8, 8, 8, 8))


def test_save_load_round_trip(tmp_path):
    model = C.Classifier(C.default_config((1, 8, 8), 10)).eval()
    C.save_classifier(tmp_path / "c.pt", model, {"dataset": "digits"})
    loaded, card = C.read_classifier(tmp_path / "c.pt")
    x = torch.rand(3, 1, 8, 8)
    assert card == {"dataset": "digits"}
    assert torch.equal(loaded(x), model(x))
    payload = torch.load(tmp_path / "c.pt", weights_only=True)   # plain data only
    assert payload["format"] == "genlib-classifier"


@pytest.mark.hostile(2)
def test_read_rejects_other_files(tmp_path):
    torch.save({"format": "something-else"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a genlib classifier"):
        C.read_classifier(tmp_path / "x.pt")
    model = C.Classifier(C.default_config((1, 8, 8), 10))
    C.save_classifier(tmp_path / "bad.pt", model, {})
    payload = torch.load(tmp_path / "bad.pt", weights_only=True)
    payload["config"]["widths"] = [8, 8]
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="do not fit"):
        C.read_classifier(tmp_path / "bad.pt")


def test_smoke_train_learns_digits():
    train, test = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    model = C.Classifier(C.default_config(train.shape, 10))
    stats = C.train_classifier(model, train, epochs=3, batch_size=64)
    assert stats["steps"] == 3 * train.steps_per_epoch(64)
    assert C.accuracy(model, test) > 0.8     # chance is 0.1
    model.eval()
    with torch.no_grad():                    # accuracy is the logits' argmax, on the [0, 1] images
        by_hand = (model(test.get(torch.arange(len(test)))[0]).argmax(1) == test.y).float().mean()
    assert C.accuracy(model, test) == pytest.approx(float(by_hand))


def test_load_classifier_is_cached_and_carries_card():
    a, b = C.load_classifier("digits"), C.load_classifier("digits")
    assert a is b
    for key in ("dataset", "split", "images", "test_accuracy", "test_split", "epochs", "wall_time_s", "torch",
                "command"):
        assert key in a.card
    assert a.card["command"].startswith("python -m genlib.classifier build")
    with pytest.raises(FileNotFoundError, match="build"):
        C.load_classifier("cifar10")


@pytest.mark.parametrize("name", C.SHIPPED)
def test_shipped_file_is_small(name):
    assert C.classifier_path(name).stat().st_size < 1_000_000


def _check_recorded_accuracy(name: str, root, minimum: float) -> None:
    model = C.load_classifier(name)
    _, test, _, test_desc = C.classifier_splits(name, root)
    if test_desc != model.card["test_split"]:
        pytest.skip(f"this machine's {name} test split ({test_desc}) is not the one on the card "
                    f"({model.card['test_split']})")
    acc = C.accuracy(model, test)
    assert acc == pytest.approx(model.card["test_accuracy"], abs=2e-3)
    assert acc >= minimum


def test_shipped_digits_accuracy():
    _check_recorded_accuracy("digits", None, 0.95)


def test_shipped_mnist_accuracy(shared_data):
    _check_recorded_accuracy("mnist", shared_data, 0.98)      # on held-out MNIST test images 8000..9999


def test_shipped_fashion_accuracy(shared_data):
    _check_recorded_accuracy("fashion-mnist", shared_data, 0.90)
