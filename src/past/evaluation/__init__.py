"""Closed-book evaluation: generation backends, metrics, reports and plots."""
