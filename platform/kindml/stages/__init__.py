"""The platform's stages as plain library functions, each parameterised by a workload.

Each stage reads its inputs from folders, writes its outputs to folders and
returns a small JSON-able dict. The KFP components in ``kindml.components``
are thin wrappers that map KFP artifacts to these folders; tests and the CLI
call the same functions.
"""
