"""Modules: cells, the reference time loop, the shared base, GRU, the RNN/LSTM baselines, GRU-D,
gate traces and input validation. Everything a model is, below training and data."""
