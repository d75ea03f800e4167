import numpy as np
import pytest

from imprint.tasks import build_task, label_map, task_classes

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


# The IMPRINT authors' fixed pool of 100 ImageNet classes for their "d in 1" remaps, as printed
# in their code (DATEXIS/IMPRINT, src/experiments/imagenet/prep.py, seed 420).
AUTHORS_POOL = [
    26, 689, 800, 373, 279, 412, 97, 782, 679, 694, 672, 116, 30, 534, 333, 496, 665, 18, 992,
    793, 639, 130, 559, 339, 441, 274, 126, 912, 940, 344, 278, 847, 149, 698, 109, 267, 503,
    188, 493, 683, 104, 253, 507, 9, 403, 624, 815, 84, 528, 32, 693, 956, 734, 566, 923, 882,
    518, 214, 594, 151, 306, 143, 540, 8, 823, 969, 757, 122, 430, 723, 24, 17, 699, 199, 808,
    532, 192, 402, 677, 478, 684, 210, 946, 447, 491, 775, 129, 47, 642, 564, 463, 462, 189,
    727, 473, 479, 213, 3, 885, 681,
]  # fmt: skip


def test_a_sampled_class_pool_is_the_papers_for_imagenet_and_seed_420():
    spec = {"classes": {"sample": 100, "seed": 420}}
    assert task_classes(spec, list(range(1000))) == AUTHORS_POOL
    assert task_classes(spec, list(reversed(range(1000)))) == AUTHORS_POOL  # from sorted ids
    every = {"classes": {"sample": 6, "seed": 1}}
    assert sorted(task_classes(every, CLASSES)) == CLASSES  # all of them is allowed
    with pytest.raises(ValueError, match="cannot sample 7 of 6 classes"):
        task_classes({"classes": {"sample": 7, "seed": 1}}, CLASSES)


def test_d_in_1_label_j_takes_d_consecutive_classes_of_block_j_of_the_shuffled_pool():
    pool = np.random.default_rng(5).permutation(CLASSES)  # the documented shuffle
    mapping = label_map({"d_in_1": 2, "n_labels": 2}, CLASSES, seed=5)  # stride 3
    assert mapping == {int(pool[0]): 0, int(pool[1]): 0, int(pool[3]): 1, int(pool[4]): 1}
    # without n_labels: as many labels as d-class blocks fit
    assert sorted(label_map({"d_in_1": 2}, CLASSES, seed=5).values()) == [0, 0, 1, 1, 2, 2]
    assert set(label_map({"d_in_1": 3, "n_labels": 1}, CLASSES, seed=5).values()) == {0}
    with pytest.raises(ValueError, match="with 0 labels needs 2 classes"):
        label_map({"d_in_1": 2, "n_labels": 0}, CLASSES, seed=5)


def test_n_shot_may_take_a_whole_class():
    task = build_task({"classes": [0, 1], "n_shot": 10}, TRAIN, TEST, CLASSES, seed=0)
    np.testing.assert_array_equal(task["train_index"], task["full_train_index"])


def test_a_task_label_without_test_or_train_samples_is_named():
    no_test = np.repeat(np.arange(5), 4)  # class 5 has no test sample
    with pytest.raises(ValueError, match=r"task labels \[1\] have no test samples"):
        build_task({"classes": [4, 5]}, TRAIN, no_test, CLASSES, seed=0)
    no_train = np.repeat(np.arange(5), 10)
    with pytest.raises(ValueError, match=r"task labels \[0\] have no train samples"):
        build_task({"classes": [5, 1]}, no_train, TEST, CLASSES, seed=0)


def test_a_task_file_holds_the_documented_arrays():
    task = build_task({"classes": [4, 1]}, TRAIN, TEST, CLASSES, seed=0)
    assert sorted(task) == [
        "full_train_index",
        "full_train_label",
        "original_class",
        "task_label",
        "test_index",
        "test_label",
        "train_index",
        "train_label",
    ]
    np.testing.assert_array_equal(task["test_label"], [1] * 4 + [0] * 4)
    np.testing.assert_array_equal(task["full_train_label"], [1] * 10 + [0] * 10)
    np.testing.assert_array_equal(task["original_class"], [1, 4])
    np.testing.assert_array_equal(task["task_label"], [1, 0])


def test_a_d_in_1_task_uses_the_remap_of_its_seed():
    spec = {"d_in_1": 2, "n_labels": 3}
    task = build_task(spec, TRAIN, TEST, CLASSES, seed=7)
    mapping = label_map(spec, CLASSES, seed=7)
    np.testing.assert_array_equal(task["original_class"], sorted(mapping))
    np.testing.assert_array_equal(task["task_label"], [mapping[c] for c in sorted(mapping)])
    again = build_task(spec, TRAIN, TEST, CLASSES, seed=7)
    assert all(np.array_equal(task[key], again[key]) for key in task)
