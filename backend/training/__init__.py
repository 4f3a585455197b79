"""Training entry points and losses.

- :mod:`backend.training.train_planner`: the learned planner (``python -m backend train planner``).
- :mod:`backend.training.losses`: trajectory cross-entropy, L2 on camera codes, CT-1's wavelet
  regulariser.
- :mod:`backend.training.cli`: the ``train`` command (heavy imports stay inside its functions).
"""
