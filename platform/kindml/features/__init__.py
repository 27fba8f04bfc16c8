"""Feast feature repo and feature engineering."""
