"""The kind cluster target: pre-flight checks, the ``up``/``down`` plan and its
resumable executor, rendering of per-run objects (InferenceService with canary,
RayJob), the image list and offline bundle, and status.

Every external tool (``kind``, ``kubectl``, ``docker``) is called through
:mod:`kindml.cluster.proc`, the one subprocess boundary. Nothing runs at import
time.
"""
