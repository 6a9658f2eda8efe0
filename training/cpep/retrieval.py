"""Gesture classification from embeddings: zero-shot retrieval and linear probing.

Zero-shot (the seed's section 2.4): an EMG window's embedding retrieves its k most
cosine-similar pose embeddings from a labeled gallery of example poses; the
gesture is their majority vote (a tie goes to the tied gesture with the larger
summed similarity). No classifier is trained, so gestures can be added by adding
example poses. Linear probing trains a softmax linear classifier on frozen
embeddings. Accuracy is macro (the mean of per-gesture accuracies).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

K_NEIGHBOURS = 10


def unit_rows(embedding: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(embedding, axis=1, keepdims=True)
    return embedding / np.maximum(norms, 1e-12)


def knn_scores(
    queries: np.ndarray, gallery: np.ndarray, gallery_labels: np.ndarray,
    classes: list[str], k: int = K_NEIGHBOURS,
) -> np.ndarray:  # fmt: skip
    """(Q, G) votes: for each query, how many of its k nearest gallery embeddings
    (cosine) carry each class, plus their summed similarity / (k + 1) to break
    ties (it is below one vote)."""
    if len(gallery) == 0:
        raise ValueError("the gallery of example poses is empty")
    unknown = sorted(set(gallery_labels) - set(classes))
    if unknown:
        raise ValueError(f"gallery labels {unknown} are not among the classes")
    k = min(k, len(gallery))
    similarity = unit_rows(queries) @ unit_rows(gallery).T  # (Q, N)
    nearest = np.argsort(-similarity, axis=1)[:, :k]  # (Q, k)
    class_index = np.array([classes.index(label) for label in gallery_labels])
    scores = np.zeros((len(queries), len(classes)))
    rows = np.repeat(np.arange(len(queries)), k)
    neighbour = nearest.reshape(-1)
    np.add.at(scores, (rows, class_index[neighbour]), 1.0)
    tie_break = similarity[rows, neighbour] / (k + 1)  # |similarity| <= 1
    np.add.at(scores, (rows, class_index[neighbour]), tie_break)
    return scores


def knn_classify(
    queries: np.ndarray, gallery: np.ndarray, gallery_labels: np.ndarray,
    k: int = K_NEIGHBOURS,
) -> np.ndarray:  # fmt: skip
    """(Q,) predicted gesture per query embedding (Q, D), by k-NN majority vote
    over gallery embeddings (N, D) labeled `gallery_labels` (N,)."""
    classes = sorted(set(gallery_labels))
    scores = knn_scores(queries, gallery, np.asarray(gallery_labels), classes, k)
    return np.array(classes, dtype=object)[scores.argmax(axis=1)]


def macro_accuracy(true_labels: np.ndarray, predicted: np.ndarray) -> float:
    """Mean over the true classes of the fraction predicted right."""
    true_labels, predicted = np.asarray(true_labels), np.asarray(predicted)
    if len(true_labels) == 0 or len(true_labels) != len(predicted):
        raise ValueError(
            f"need equal, non-zero numbers of labels ({len(true_labels)}) and "
            f"predictions ({len(predicted)})"
        )
    per_class = [
        float(np.mean(predicted[true_labels == label] == label))
        for label in np.unique(true_labels)
    ]
    return float(np.mean(per_class))


class LinearProbe:
    """A softmax linear classifier on standardized frozen embeddings."""

    def __init__(self, classes: list[str], mean: np.ndarray, std: np.ndarray,
                 layer: torch.nn.Linear) -> None:  # fmt: skip
        self.classes, self.mean, self.std, self.layer = classes, mean, std, layer

    def scores(self, embedding: np.ndarray) -> np.ndarray:
        """(Q, D) -> (Q, G) class probabilities."""
        features = torch.from_numpy(
            ((embedding - self.mean) / self.std).astype(np.float32)
        )
        with torch.no_grad():
            return F.softmax(self.layer(features), dim=1).numpy()

    def predict(self, embedding: np.ndarray) -> np.ndarray:
        return np.array(self.classes, dtype=object)[
            self.scores(embedding).argmax(axis=1)
        ]


def fit_linear_probe(
    embedding: np.ndarray, labels: np.ndarray, weight_decay: float = 1e-3,
    steps: int = 200, seed: int = 0,
) -> LinearProbe:  # fmt: skip
    """Full-batch L-BFGS on cross-entropy, classes balanced (macro accuracy is the
    score), with a small L2 penalty."""
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError(f"a probe needs at least two gestures, got {classes}")
    mean = embedding.mean(axis=0)
    std = embedding.std(axis=0) + 1e-6
    features = torch.from_numpy(((embedding - mean) / std).astype(np.float32))
    targets = torch.tensor([classes.index(label) for label in labels])
    counts = torch.bincount(targets, minlength=len(classes)).float()
    class_weight = counts.sum() / (len(classes) * counts)
    torch.manual_seed(seed)
    layer = torch.nn.Linear(features.shape[1], len(classes))
    optimizer = torch.optim.LBFGS(
        layer.parameters(), max_iter=steps, line_search_fn="strong_wolfe"
    )

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(layer(features), targets, weight=class_weight)
        loss = loss + weight_decay * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return LinearProbe(classes, mean, std, layer)
