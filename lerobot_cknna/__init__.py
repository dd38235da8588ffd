"""lerobot-cknna: how well does a LeRobot policy's condition embedding line up with proprioception?"""
