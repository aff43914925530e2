"""FeatureSelection: drops features by IV, missing rate, variance and manual lists at every member."""
