"""Records from measurements mrv-ml did not take (CodeCarbon's emissions.csv)."""
