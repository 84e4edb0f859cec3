"""Analysis of trained and untrained sequence modules: why a GRU works, measured on the user's model."""
