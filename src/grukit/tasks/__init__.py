"""The literature's benchmarks and the articles' applications: dataset builders, metrics, baselines."""
