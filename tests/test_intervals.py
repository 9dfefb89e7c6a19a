"""Bootstrap intervals: the numbers every model comparison in docs/ rests on."""

import numpy as np
import pytest

from napari_nevseg.core.intervals import bootstrap_mean, paired_difference


def test_interval_brackets_the_mean_and_shrinks_with_more_images():
    rng = np.random.default_rng(3)
    small = bootstrap_mean(rng.normal(0.8, 0.1, 30))
    large = bootstrap_mean(rng.normal(0.8, 0.1, 1200))
    for interval in (small, large):
        assert interval.low < interval.mean < interval.high
    # the width goes as 1/sqrt(n): 40x the images, about 1/6.3 the width
    ratio = (small.high - small.low) / (large.high - large.low)
    assert 4.5 < ratio < 9.0
    # about 2 * 1.96 * sd / sqrt(n) for a normal mean
    assert (large.high - large.low) == pytest.approx(2 * 1.96 * 0.1 / np.sqrt(1200), rel=0.15)


def test_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = 0
    for i in range(200):
        interval = bootstrap_mean(rng.beta(8, 2, 60), resamples=2000, seed=i)
        hits += interval.low < 0.8 < interval.high
    assert 0.88 <= hits / 200 <= 0.99


def test_constant_scores_give_a_point_interval():
    interval = bootstrap_mean([0.9] * 10)
    assert (interval.low, interval.mean, interval.high) == pytest.approx((0.9, 0.9, 0.9))


def test_paired_difference_sees_a_small_consistent_gain_that_unpaired_intervals_hide():
    rng = np.random.default_rng(1)
    hardness = rng.uniform(0.5, 0.98, 40)  # images differ a lot in how hard they are
    better = np.clip(hardness + 0.01 + rng.normal(0, 0.003, 40), 0, 1)
    alone_a, alone_b = bootstrap_mean(better), bootstrap_mean(hardness)
    assert alone_a.low < alone_b.high  # the two intervals overlap...
    gain = paired_difference(better, hardness)
    assert gain.excludes_zero() and gain.low > 0  # ...but the paired one says which is better
    assert gain.mean == pytest.approx(np.mean(better - hardness))


def test_identical_models_differ_by_exactly_zero():
    scores = np.random.default_rng(2).uniform(0, 1, 25)
    gain = paired_difference(scores, scores)
    assert (gain.low, gain.mean, gain.high) == (0.0, 0.0, 0.0)
    assert not gain.excludes_zero()


def test_bad_input_says_what_is_wrong():
    with pytest.raises(ValueError, match="same images"):
        paired_difference([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_mean([])
    with pytest.raises(ValueError, match="level"):
        bootstrap_mean([0.5, 0.6], level=1.5)


def test_same_seed_same_interval():
    values = np.random.default_rng(4).uniform(size=50)
    assert bootstrap_mean(values, seed=7) == bootstrap_mean(values, seed=7)
