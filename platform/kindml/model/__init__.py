"""The fraud model: feature assembly, the network, training, evaluation, export and registry."""
