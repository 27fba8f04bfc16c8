"""Model machinery every workload shares.

- :mod:`~kindml.model.kit` -- :class:`ModelKit`, what travels with a model version (preprocessing, recipe, ONNX module, signature);
- :mod:`~kindml.model.recipe` -- :class:`TorchRecipe`, how a torch model is built, fed, trained and searched;
- :mod:`~kindml.model.train` -- time split, Ray Tune (ASHA) then Ray Train DDP over a recipe;
- :mod:`~kindml.model.mlp` -- a standardising MLP and its recipe, for tabular inputs;
- :mod:`~kindml.model.metrics` -- metric sets per task; :mod:`~kindml.model.gate` -- the promotion gate;
- :mod:`~kindml.model.export` -- ONNX export of any torch module, ONNX Runtime sessions and the parity check.
"""
