"""Feast operations on a workload's definitions: offline tables, apply, point-in-time retrieval, materialize (:mod:`kindml.features.store`)."""
