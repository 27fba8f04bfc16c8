"""kindml: a Kubeflow-based local ML platform kit.

Importing this package does no work: no files are written, no servers are
started, no heavy libraries are imported. Everything happens when a command or
a library function is called.
"""

__version__ = "0.1.0"
