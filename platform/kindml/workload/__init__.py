"""The workload contract: what a capstone (or a user's pipeline) gives the platform.

- :mod:`kindml.workload.contract` -- :class:`~kindml.workload.contract.Workload`, the base class a
  workload folder implements (data, Great Expectations suites, Feast definitions, a model kit,
  live traffic), and the small value types it returns;
- :mod:`kindml.workload.loader` -- turn a reference (``"module"`` or ``"module:Class"``, or a
  ``.py`` file) into a workload class, and build the effective config with its defaults.

The core (everything under ``kindml`` except ``kindml.pipelines`` and ``kindml.cli``)
never imports a workload module: it receives a reference string and loads it here.
"""
