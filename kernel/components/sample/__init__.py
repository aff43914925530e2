"""Sample: random or stratified sampling without replacement, the same ids at every member."""
