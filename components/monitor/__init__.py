from kindml.components.monitor.component import monitor

__all__ = ["monitor"]
