"""CPEP: contrastive pose-EMG pre-training for gesture understanding (seed 002).

- encoders.py: linear patch tokenizers and transformer encoders (EMG and pose);
- mae.py: masked-autoencoder pre-training of either encoder;
- contrastive.py: symmetric InfoNCE alignment of EMG to a frozen pose encoder;
- retrieval.py: zero-shot kNN retrieval, linear probing, macro accuracy;
- optim.py: the minibatch loop (AdamW, cosine annealing with warm restarts);
- windows.py: paired EMG-pose windows and gesture-labeled windows from sessions;
- gesture_data.py: seen/unseen gestures on simulated subjects, split by role;
- emg2pose_gestures.py: the same task on emg2pose-layout files (stage = gesture);
- baselines.py: the supervised pose regressor (the seed's PoseT baseline);
- checkpoint.py: a CPEP model in one file, for live gestures
  (inference.cpep_gestures);
- bench.py: `python -m training cpep-bench`, seen vs unseen gestures end to end.
"""
