import numpy as np
import pytest

from imprint.tasks import build_task, label_map

TRAIN = np.repeat(np.arange(6), 10)  # 6 classes, 10 train samples each
TEST = np.repeat(np.arange(6), 4)
CLASSES = list(range(6))


def test_class_subset_keeps_listed_classes_relabelled_in_list_order():
    task = build_task({"classes": [4, 1]}, TRAIN, TEST, CLASSES, seed=0)
    np.testing.assert_array_equal(TRAIN[task["train_index"]], [1] * 10 + [4] * 10)
    np.testing.assert_array_equal(task["train_label"], [1] * 10 + [0] * 10)
    assert len(task["test_index"]) == 8
    np.testing.assert_array_equal(task["full_train_index"], task["train_index"])


def test_d_in_1_merges_d_classes_per_label_from_a_seeded_shuffle():
    mapping = label_map({"d_in_1": 2, "n_labels": 3}, CLASSES, seed=0)
    assert sorted(mapping) == CLASSES
    assert sorted(mapping.values()) == [0, 0, 1, 1, 2, 2]
    assert mapping == label_map({"d_in_1": 2, "n_labels": 3}, CLASSES, seed=0)
    assert any(
        label_map({"d_in_1": 2, "n_labels": 3}, CLASSES, seed=s) != mapping for s in range(1, 5)
    )


def test_d_in_1_tasks_are_nested_in_d_for_one_seed():
    one = label_map({"d_in_1": 1, "n_labels": 2}, CLASSES, seed=3)
    three = label_map({"d_in_1": 3, "n_labels": 2}, CLASSES, seed=3)
    assert all(three[c] == label for c, label in one.items())


def test_d_in_1_needing_more_classes_than_exist_is_an_error():
    with pytest.raises(ValueError, match="needs 8 classes"):
        label_map({"d_in_1": 4, "n_labels": 2}, CLASSES[:6], seed=0)


def test_n_shot_draws_n_per_label_nested_across_n():
    five = build_task({"classes": [0, 1, 2], "n_shot": 5}, TRAIN, TEST, CLASSES, seed=1)
    two = build_task({"classes": [0, 1, 2], "n_shot": 2}, TRAIN, TEST, CLASSES, seed=1)
    assert np.bincount(five["train_label"]).tolist() == [5, 5, 5]
    assert set(two["train_index"]) <= set(five["train_index"])
    assert len(five["full_train_index"]) == 30  # NC1 uses the whole train split


def test_n_shot_larger_than_a_class_is_an_error():
    with pytest.raises(ValueError, match="n_shot 11 exceeds the 10 train samples"):
        build_task({"n_shot": 11}, TRAIN, TEST, CLASSES, seed=0)
