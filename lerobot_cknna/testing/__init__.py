"""Helpers for testing with real LeRobot parts and no network, as ``torch.testing`` is for torch.

Production runs never import this package: the demo, the offline study and the tests do.
"""
