"""DataSplit: train / validate / test parts by fractions, stratified on the label, the same ids at every member."""
