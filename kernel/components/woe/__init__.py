"""WOE: replaces binned features by their weight of evidence, at the promoter and the providers."""
