import numpy as np
import pytest

from training.cpep.retrieval import (
    fit_linear_probe,
    knn_classify,
    knn_scores,
    macro_accuracy,
)


def separable_set(per_class=12, seed=0):
    """Three gestures whose embeddings point along three different axes."""
    rng = np.random.default_rng(seed)
    axes = {"fist": 0, "open": 1, "pinch": 2}
    embeddings, labels = [], []
    for gesture, axis in axes.items():
        points = 0.1 * rng.normal(size=(per_class, 8))
        points[:, axis] += 1.0
        embeddings.append(points)
        labels += [gesture] * per_class
    return np.concatenate(embeddings), np.array(labels, dtype=object)


def test_zero_shot_knn_is_right_on_every_query_of_a_separable_set():
    gallery, gallery_labels = separable_set(seed=0)
    queries, query_labels = separable_set(per_class=5, seed=1)
    predicted = knn_classify(queries * 7.0, gallery, gallery_labels, k=10)
    assert macro_accuracy(query_labels, predicted) == 1.0
    assert list(predicted) == list(query_labels)


def test_the_vote_counts_the_k_nearest_by_cosine():
    gallery = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 1.0], [0.2, 1.0]])
    labels = np.array(["a", "a", "b", "b", "b"], dtype=object)
    # k=2: both nearest are "a"; k=5: "b" has three votes of five
    assert knn_classify(np.array([[1.0, 0.05]]), gallery, labels, k=2)[0] == "a"
    assert knn_classify(np.array([[1.0, 0.05]]), gallery, labels, k=5)[0] == "b"
    # a 1-1 tie goes to the gesture whose neighbour is more similar
    scores = knn_scores(
        np.array([[1.0, 0.3]]), gallery[[0, 2]], labels[[0, 2]], ["a", "b"], k=2
    )
    assert scores[0, 0] > scores[0, 1] and scores[0].sum() < 3


def test_an_empty_gallery_or_unknown_labels_are_refused():
    with pytest.raises(ValueError, match="gallery .* empty"):
        knn_classify(np.ones((1, 2)), np.zeros((0, 2)), np.array([]))
    with pytest.raises(ValueError, match="not among the classes"):
        knn_scores(np.ones((1, 2)), np.ones((1, 2)), np.array(["x"]), ["a"])


def test_macro_accuracy_averages_per_gesture_accuracy():
    true = np.array(["a", "a", "a", "a", "b"])
    predicted = np.array(["a", "a", "a", "a", "a"])
    assert macro_accuracy(true, predicted) == pytest.approx(0.5)  # plain: 0.8
    with pytest.raises(ValueError, match="equal, non-zero"):
        macro_accuracy(true, predicted[:2])


def test_a_linear_probe_separates_a_separable_set():
    train, train_labels = separable_set(seed=2)
    test, test_labels = separable_set(per_class=6, seed=3)
    probe = fit_linear_probe(train, train_labels)
    assert macro_accuracy(test_labels, probe.predict(test)) == 1.0
    assert probe.scores(test).sum(axis=1) == pytest.approx(np.ones(len(test)))
    with pytest.raises(ValueError, match="two gestures"):
        fit_linear_probe(train[:3], train_labels[:3])
