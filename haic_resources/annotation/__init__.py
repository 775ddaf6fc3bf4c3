"""The annotation tool of HAICBench's human steps (Label Studio)."""
