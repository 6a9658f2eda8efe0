"""The agent's camera path: frame sources, per-frame labels, and clock sync.

sources.py  frames from a webcam, a video file or the simulated person (registry)
labeler.py  frame -> MediaPipe landmarks -> streaming IK -> one label frame
clock.py    puts camera frames on the EMG clock
streamer.py the camera thread: label every frame, spool label chunks, report health
frames.py   the label arrays (numpy only; the wire protocol imports it)

Nothing here is imported by the server except frames.py.
"""
