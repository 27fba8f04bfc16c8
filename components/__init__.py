"""Thin KFP v2 lightweight components of the capstone (``kindml.components``).

One folder per component (component.py, metadata.yaml, README.md) in the
style of kubeflow/pipelines-components. Each body only maps KFP artifacts to
folders and calls the stage function in ``kindml.stages``; imports live inside
the body because KFP ships the function source to the runtime image, where
kindml is installed.
"""
