"""Calibration: targets as data, free parameters as data, the objective, search and ensemble."""
