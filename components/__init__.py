"""Reusable, thin KFP v2 lightweight components of the platform (``kindml.components``).

Every component takes ``workload`` (a reference: ``pkg.module``, ``pkg.module:Class``
or a ``.py`` file beside the pipeline) and ``config_json`` (a kindml config, ``{}``
for the workload's defaults), maps KFP artifacts to folders and calls the stage
function in ``kindml.stages``. Compose them in a plain ``@dsl.pipeline``::

    from kindml.components import ingest, validate, features, train, evaluate, export, register, batch

One folder per component (component.py, metadata.yaml, README.md) in the style of
kubeflow/pipelines-components. Imports live inside the bodies because KFP ships
each function's source to the runtime image, where kindml is installed.
Numeric parameters left at their default (0, -1) take the config's value.
"""

from kindml.components.batch import batch
from kindml.components.deploy import deploy
from kindml.components.evaluate import evaluate
from kindml.components.export import export
from kindml.components.features import features
from kindml.components.ingest import ingest
from kindml.components.monitor import monitor
from kindml.components.register import register
from kindml.components.train import train
from kindml.components.validate import validate

__all__ = ["batch", "deploy", "evaluate", "export", "features", "ingest", "monitor", "register", "train", "validate"]
