"""The two ways features are gathered, built the same way: replay of a LeRobotDataset and LeRobot's own simulation loop.

Each gathers paired features (feat A, feat B) and ends in one call that scores and publishes them
(:func:`lerobot_cknna.results.publish.publish`).
"""
