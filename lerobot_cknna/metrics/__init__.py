"""Alignment metrics on features as given: CKNNA, mutual kNN, CKA, exact kNN search, nulls and intervals, feature prep.

Pure torch (and numpy / scipy): importing these modules loads neither LeRobot nor transformers.
"""
