"""A/B, canary and shadow experiments between a champion and a challenger model: assignment and statistics.

A library (no HTTP, no Prometheus); the predictor and the pipeline call it.
Modules (import them directly; this package imports nothing):

- :mod:`kindml.experiments.spec` -- :class:`~kindml.experiments.spec.ExperimentSpec`, the typed
  description of an experiment (mode, split, metric, MDE, alpha, power, ...), and ``parse_spec``;
- :mod:`kindml.experiments.assignment` -- sticky, uniform, salt-independent assignment of entities
  (``assign``) and the route of one request (``route``: who answers, who scores, what is recorded);
- :mod:`kindml.experiments.design` -- the design shown up front: sample sizes, expected stopping
  sizes, power at a budget;
- :mod:`kindml.experiments.sequential` -- the running statistic of a rate, the group-sequential
  (alpha-spending) or mixture-SPRT rule, guardrails, the decision;
- :mod:`kindml.experiments.auc` -- AUC on labelled scores: bounded histograms, DeLong's test at the horizon;
- :mod:`kindml.experiments.boundaries` -- the numerics: crossing probabilities of a Brownian motion
  watched at looks, spending and mSPRT boundaries;
- :mod:`kindml.experiments.state` -- ``Outcomes`` (mergeable counters the workers ship) and
  ``Experiment`` (the evaluator: looks, path, decision; JSON);
- :mod:`kindml.experiments.simulate` -- the Monte Carlo check (``python -m kindml.experiments.simulate``).

See docs/experiments.md.
"""
