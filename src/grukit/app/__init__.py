"""The `grukit` command line and what only it runs: the demo, the forecasting pipeline, benchmarks."""
