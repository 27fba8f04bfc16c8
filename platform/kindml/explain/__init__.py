"""Explanations of a served model: per-request feature attributions and a global importance per model version.

Both are **Shapley values** of the served ONNX model (exactly the graph the
predictor runs, INT8 or not), estimated by captum's
:class:`~captum.attr.ShapleyValueSampling` over *what a user sent*, not over
engineered inputs:

- tabular kits: each raw column (a request field or a looked-up feature, or a
  group of them the kit names) is one player; a player that is "absent" takes
  its values from a small background sample of training rows stored with the
  model version (``explain_background.parquet``): interventional SHAP;
- text kits: the words of the request's text are the players; an absent word
  is replaced by the kit's mask token (the other columns stay as requested).

Modules: :mod:`~kindml.explain.spec` (what a kit declares), :mod:`~kindml.explain.shapley`
(the estimator), :mod:`~kindml.explain.background` (the stored sample),
:mod:`~kindml.explain.explainer` (kit + ONNX session + background → attributions),
:mod:`~kindml.explain.importance` (the global importance stored as ``importance.json``
and compared between versions), :mod:`~kindml.explain.serve` (KServe's ``:explain`` route).
Nothing heavy is imported here: torch and captum load on the first explanation.
See ``docs/explanations.md``.
"""

from kindml.explain.spec import BACKGROUND_FILE, IMPORTANCE_FILE, ExplainSpec, ExplanationError

__all__ = ["BACKGROUND_FILE", "IMPORTANCE_FILE", "ExplainSpec", "ExplanationError"]
