"""Running HAICBench against a model (the paper's section 4): the standard and the caption protocol."""
