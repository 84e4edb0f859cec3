"""Forecasting pieces below the tasks: forecast windows and their scaling, and the classical
baselines (seasonal naive, ETS). The `grukit forecast` pipeline itself is `grukit.app.forecast`."""
