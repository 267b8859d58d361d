"""Spatial split, chip sampling and augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agrivision.segment.augment import augment
from agrivision.segment.config import AugmentConfig
from agrivision.segment.sampling import ChipSampler, corners
from agrivision.segment.split import block_split


def test_block_split_is_seeded_exact_and_buffered():
    shapes = [(100, 130), (64, 64)]
    a = block_split(shapes, block=32, val_fraction=0.25, buffer=3, seed=7)
    b = block_split(shapes, block=32, val_fraction=0.25, buffer=3, seed=7)
    c = block_split(shapes, block=32, val_fraction=0.25, buffer=3, seed=8)
    n_blocks = 4 * 5 + 2 * 2
    assert sum(map(len, a.val)) == round(0.25 * n_blocks)
    assert a.val == b.val and all((x == y).all() for x, y in zip(a.train, b.train, strict=True))
    assert a.val != c.val
    for train, boxes in zip(a.train, a.val, strict=True):
        for r0, r1, c0, c1 in boxes:
            # no training pixel inside a validation block or within 3 pixels of it
            assert not train[max(r0 - 3, 0) : r1 + 3, max(c0 - 3, 0) : c1 + 3].any()


@pytest.mark.parametrize("size", [3, 4, 8])
def test_corners_are_exactly_the_windows_inside(size):
    rng = np.random.default_rng(size)
    allowed = rng.random((30, 27)) > 0.03
    allowed[5:12, 4:9] = False
    got = {tuple(rc) for rc in corners(allowed, size).tolist()}
    brute = {
        (r, c)
        for r in range(30 - size + 1)
        for c in range(27 - size + 1)
        if allowed[r : r + size, c : c + size].all()
    }
    assert got == brute


def _sampler(seed=0):
    labels = np.zeros((64, 64), np.uint8)
    labels[40:44, 10:14] = 2  # a rare class: 16 of 4096 pixels
    labels[:, 32:] = 1
    allowed = np.ones((64, 64), bool)
    allowed[:, 48:] = False  # e.g. validation blocks
    return ChipSampler([labels], [allowed], 16, 3, seed=seed), labels, allowed


def test_random_chips_stay_in_the_training_part_and_are_reproducible():
    sampler, _, allowed = _sampler()
    chips = sampler.random(epoch=3, n=200, balance=True)
    assert chips == sampler.random(epoch=3, n=200, balance=True)
    assert chips != sampler.random(epoch=4, n=200, balance=True)
    for _, r, c in chips:
        assert allowed[r : r + 16, c : c + 16].all()


def test_balancing_shows_the_rare_class_more_often():
    sampler, labels, _ = _sampler()

    def rare_share(balance):
        chips = sampler.random(epoch=0, n=300, balance=balance)
        return np.mean([(labels[r : r + 16, c : c + 16] == 2).any() for _, r, c in chips])

    assert rare_share(True) > 0.25 > rare_share(False)


def test_grid_chips_do_not_overlap():
    sampler, _, allowed = _sampler()
    chips = sampler.grid()
    assert len(chips) == 4 * 3  # 16-pixel grid over 64 x 48 allowed columns
    cover = np.zeros((64, 64), int)
    for _, r, c in chips:
        cover[r : r + 16, c : c + 16] += 1
    assert cover.max() == 1 and not cover[~allowed].any()


def test_augment_moves_image_and_labels_together():
    y = torch.randint(0, 5, (64, 8, 8), dtype=torch.uint8)
    x = torch.stack([y.float(), -y.float()], dim=1)
    cfg = AugmentConfig(brightness=0, contrast=0)
    xa, ya = augment(x, y, cfg, torch.Generator().manual_seed(0))
    torch.testing.assert_close(xa[:, 0], ya.float())
    torch.testing.assert_close(xa[:, 1], -ya.float())
    changed = [(ya[i] != y[i]).any() for i in range(64)]
    assert 40 < sum(changed) < 64  # 7 of 8 flip/rotation combinations change a random chip


def test_jitter_is_gain_and_shift_within_bounds():
    x = torch.ones((200, 2, 4, 4))
    x[:, 1] = 2.0
    y = torch.zeros((200, 4, 4), dtype=torch.uint8)
    cfg = AugmentConfig(flips=False, rotate90=False, brightness=0.1, contrast=0.2)
    xa, _ = augment(x, y, cfg, torch.Generator().manual_seed(1))
    gain = xa[:, 1, 0, 0] - xa[:, 0, 0, 0]  # (2g + b) - (g + b)
    shift = xa[:, 0, 0, 0] - gain
    assert gain.min() >= 0.8 and gain.max() <= 1.2 and gain.std() > 0.05
    assert shift.abs().max() <= 0.1 + 1e-6 and shift.std() > 0.02
