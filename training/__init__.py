"""EMG -> hand-pose training: preprocessing, windowed datasets from session files
(and emg2pose HDF5 import), the model zoo, the training loop, metrics and
checkpoints. Pure Python + torch; never imports Django."""
