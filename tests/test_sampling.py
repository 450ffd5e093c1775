"""genlib.sampling: the one seeding rule, eval_mode, batched sampling and classification, to_uint8.

Other modules' tests check that their callers follow these rules (the metrics' draws, the Trainer's
fixed noise, the latent tools); this file checks the rules themselves."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import genlib
from genlib.sampling import (classify_batched, eval_mode, prior_draw, sample_batched, seeded_generator,
                             seeded_subset, to_uint8, to_unit_float)


@pytest.fixture(scope="module")
def digits():
    return genlib.load_dataset("digits").subset(128, seed=0)


def _model(preset, data):
    torch.manual_seed(0)
    return genlib.make_model(preset, data, hidden=(32,), width=8)


def test_prior_draw_is_a_seeded_cpu_draw_with_the_models_latent_shape(digits):
    model = _model("gan", digits)
    z = prior_draw(model, 5, seed=3)
    assert z.shape == (5, *model.latent_shape) and z.device == model.device
    assert torch.equal(z, torch.randn(5, *model.latent_shape, generator=torch.Generator().manual_seed(3)))
    assert torch.equal(z, prior_draw(model, 5, seed=3)) and not torch.equal(z, prior_draw(model, 5, seed=4))
    before = torch.get_rng_state()
    prior_draw(model, 5, seed=3)
    assert torch.equal(torch.get_rng_state(), before)            # the global RNG is left alone


def test_seeded_subset_is_a_seeded_permutation():
    idx = seeded_subset(10, seed=2)
    assert sorted(idx.tolist()) == list(range(10)) and idx.dtype == torch.int64
    assert torch.equal(idx, torch.randperm(10, generator=seeded_generator(2)))
    assert torch.equal(seeded_subset(10, 4, seed=2), idx[:4])     # a smaller subset is a prefix
    assert len(seeded_subset(10, 50, seed=2)) == 10


class _Flagged(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Dropout()


def test_eval_mode_restores_each_modules_own_flag_also_on_error():
    a, b = _Flagged().train(), _Flagged().eval()
    a.inner.eval()                                               # a mixed module: its own flags come back
    with eval_mode(a, None, b):
        assert not a.training and not a.inner.training and not b.training
    assert a.training and not a.inner.training and not b.training
    with pytest.raises(RuntimeError), eval_mode(a):
        raise RuntimeError("inside")
    assert a.training


@pytest.mark.parametrize("preset", ["vae", "cgan"])
def test_sample_batched_equals_one_call(preset, digits):
    model = _model(preset, digits)
    z = prior_draw(model, 23, seed=1)
    labels = model.default_labels(23)
    whole = model.sample(23, labels=labels, z=z)
    torch.testing.assert_close(sample_batched(model, z, labels, batch_size=5), whole)   # matmul sizes differ


class _Classifier(nn.Module):
    """The interface classify_batched uses: features, head, device."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(64, 6), nn.Dropout(0.5))
        self.head = nn.Linear(6, 3)

    @property
    def device(self):
        return next(self.parameters()).device


def test_classify_batched_is_batch_size_free_in_eval_mode_and_restores_it(digits):
    clf = _Classifier().train()
    x = digits.x[:37]                                            # uint8
    feats, probs = classify_batched(clf, x, batch_size=8)
    assert feats.shape == (37, 6) and probs.shape == (37, 3) and feats.dtype == probs.dtype == "float64"
    f2, p2 = classify_batched(clf, x, batch_size=1000)
    assert abs(feats - f2).max() < 1e-6 and abs(probs - p2).max() < 1e-6   # eval mode: dropout off, batches agree
    assert abs(probs.sum(1) - 1).max() < 1e-6
    with torch.no_grad(), eval_mode(clf):
        by_hand = clf.features(x.float() / 255).double()
    assert abs(feats - by_hand.numpy()).max() < 1e-6
    assert clf.training                                          # put back as it was
    f0, p0 = classify_batched(clf, x[:0])
    assert f0.shape == p0.shape == (0, 0)


def test_to_uint8_and_to_unit_float():
    x = torch.tensor([[[[-0.5, 0.0, 0.5, 1.0, 1.5]]]])
    assert to_uint8(x).tolist() == [[[[0, 0, 128, 255, 255]]]] and to_uint8(x).dtype == torch.uint8
    points = torch.randn(4, 2)
    assert torch.equal(to_uint8(points), points)                 # 2-D points stay float
    assert torch.equal(to_unit_float(torch.tensor([0, 255], dtype=torch.uint8)), torch.tensor([0.0, 1.0]))
    assert torch.equal(to_unit_float(torch.tensor([-1.0, 0.25, 2.0])), torch.tensor([0.0, 0.25, 1.0]))
